#!/usr/bin/env bash
# container-test.sh builds the Airbyte image from the real Dockerfile on a machine with no Docker
# daemon and no registry (buildah/podman, vfs storage, runc), then runs and inspects it:
#   1. installs buildah, podman, skopeo, runc, busybox-static and jq with apt when missing (root only; another
#      user is told in one sentence what to install, and also needs uidmap and subordinate ids for a rootless
#      build);
#   2. makes local stand-ins for the Dockerfile's base images from the host Go toolchain and busybox;
#   3. builds offline (--pull-never, --network none, host module cache mounted read-only, and a
#      Go build cache kept in the scratch folder so re-runs compile only what changed);
#   4. checks entrypoint, environment, user and labels against metadata.yaml, /bin/sh, printenv and a
#      writable /airbyte, --version, `spec`, and `check` against the sandbox (good and bad key);
#   5. prints the build time and the image size.
# It exits non-zero with a one-line reason on the first failure. It is safe to re-run: stand-ins are
# rebuilt only when the host toolchain changes, and runs sharing a scratch folder take turns.
# `container-test.sh --setup` does step 1 only (make setup runs it, so a missing tool stops make test early).
#
# Environment: CONTAINER_TEST_DIR (scratch folder, default /tmp/source-klaviyo-containers for root and
# /tmp/source-klaviyo-containers-<uid> for any other user: a store, its stand-ins and its lock belong to one
# user), CONTAINER_TEST_IMAGE (tag to build, default localhost/source-klaviyo:test).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
default_work=/tmp/source-klaviyo-containers
[[ $(id -u) -eq 0 ]] || default_work+="-$(id -u)"
work=${CONTAINER_TEST_DIR:-$default_work}
image=${CONTAINER_TEST_IMAGE:-localhost/source-klaviyo:test}
# Bump when the stand-in recipe below changes, so old stand-ins are replaced.
standin_recipe=2

say() { printf 'container-test: %s\n' "$*"; }
fail() {
	printf 'container-test: FAIL: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------

install_tools() {
	local missing=()
	command -v buildah >/dev/null || missing+=(buildah)
	command -v podman >/dev/null || missing+=(podman)
	command -v skopeo >/dev/null || missing+=(skopeo)
	command -v runc >/dev/null || missing+=(runc)
	command -v jq >/dev/null || missing+=(jq)
	[[ -x /bin/busybox ]] && is_static /bin/busybox || missing+=(busybox-static)
	if [[ $(id -u) -ne 0 ]]; then
		# A rootless build maps the image's users onto the caller's subordinate ids with these setuid helpers.
		command -v newuidmap >/dev/null && command -v newgidmap >/dev/null || missing+=(uidmap)
	fi
	if ((${#missing[@]} > 0)); then
		[[ $(id -u) -eq 0 ]] ||
			fail "missing ${missing[*]}, and installing needs root: run \`sudo apt-get install -y ${missing[*]}\` (or run this as root), then run this again"
		apt_install "${missing[@]}"
	fi
	local free
	if [[ $(id -u) -ne 0 ]] && ! has_subids; then
		free=$(free_subids)
		fail "user $(id -un) has no subordinate ids, which a rootless build needs: run \`sudo usermod --add-subuids $free --add-subgids $free $(id -un)\` (or run this as root), then run this again"
	fi
}

# free_subids prints a range of 65536 ids past every range /etc/subuid and /etc/subgid already hand out, so
# the suggested usermod gives the caller ids no other user shares.
free_subids() {
	local start
	start=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: '$2 + $3 > max { max = $2 + $3 } END { print (max > 100000 ? max : 100000) }')
	printf '%d-%d' "$start" $((start + 65535))
}

# has_subids succeeds when /etc/subuid and /etc/subgid give the caller a range (by name or by uid).
has_subids() {
	local f
	for f in /etc/subuid /etc/subgid; do
		grep -qE "^($(id -un)|$(id -u)):" "$f" 2>/dev/null || return 1
	done
}

# apt_install PACKAGE... installs the packages as root, without questions.
apt_install() {
	command -v apt-get >/dev/null || fail "missing $* and apt-get is not available to install them"
	say "installing $* with apt"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null >/dev/null || fail "apt-get update failed"
	apt-get install -y -qq "$@" </dev/null >/dev/null || fail "apt-get install $* failed"
	is_static /bin/busybox || fail "/bin/busybox is not a static binary (install busybox-static)"
}

# is_static succeeds when the ELF file has no program interpreter, i.e. runs in an empty image.
is_static() {
	! LC_ALL=C ldd "$1" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# Scratch settings: vfs storage and runc, all under $work, nothing in /etc touched.
# ---------------------------------------------------------------------------------------------

configure() {
	mkdir -p "$work"/{run,storage,rootfs,bin,secrets,gocache}
	cat >"$work/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$work/run"
graphroot = "$work/storage"
EOF
	# crun (podman's default) fails without CAP_SYS_RESOURCE; runc with explicit ulimits works.
	cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
	# Every name is fully qualified and nothing is pulled, so no registry is ever searched.
	cat >"$work/registries.conf" <<'EOF'
unqualified-search-registries = []
short-name-mode = "enforcing"
EOF
	# Images only move between local stores, so signatures are not required.
	cat >"$work/policy.json" <<'EOF'
{"default": [{"type": "insecureAcceptAnything"}]}
EOF
	export CONTAINERS_STORAGE_CONF="$work/storage.conf"
	export CONTAINERS_CONF="$work/containers.conf"
	export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
	export BUILDAH_ISOLATION=oci
}

# ---------------------------------------------------------------------------------------------
# Base-image stand-ins, named exactly as the Dockerfile's FROM lines resolve.
# ---------------------------------------------------------------------------------------------

# dockerfile_arg NAME prints the default of a global ARG in the Dockerfile.
dockerfile_arg() {
	local value
	value=$(sed -n "s/^ARG $1=\\(.*\\)$/\\1/p" "$repo/Dockerfile" | head -n 1)
	[[ -n $value ]] || fail "Dockerfile has no 'ARG $1=<default>'"
	printf '%s' "$value"
}

# standin_key IMAGE prints the file recording which inputs IMAGE's stand-in was made from. The key
# lives beside the store rather than in a label, because labels would leak into the built image.
standin_key() {
	printf '%s/standin-%s.key' "$work" "$(tr -c 'A-Za-z0-9.\n' _ <<<"$1")"
}

# standin_current IMAGE KEY succeeds when IMAGE exists and was made from the same inputs.
standin_current() {
	buildah inspect --type image "$1" >/dev/null 2>&1 || return 1
	[[ -f $(standin_key "$1") && $(cat "$(standin_key "$1")") == "$2" ]]
}

# busybox_rootfs DIR lays out a minimal root: busybox with all applet links, passwd, group, /tmp.
busybox_rootfs() {
	local dir=$1 applet
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,etc,root,tmp}
	chmod 1777 "$dir/tmp"
	cp /bin/busybox "$dir/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[[ -e $dir/bin/$applet ]] || ln -s busybox "$dir/bin/$applet"
	done
	# Debian's busybox-static lacks the printenv applet that the real busybox image has (and that
	# Airbyte uses), so the stand-in gets a small equivalent rather than the probe below being dropped.
	cat >"$dir/bin/printenv" <<'EOF'
#!/bin/sh
[ $# -eq 0 ] && exec env
exec awk 'BEGIN { rc = 0; for (i = 1; i < ARGC; i++) if (ARGV[i] in ENVIRON) print ENVIRON[ARGV[i]]; else rc = 1; exit rc }' "$@"
EOF
	chmod 0755 "$dir/bin/printenv"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
}

# commit_standin CONTAINER NAME KEY commits a working container as a stand-in image.
commit_standin() {
	rm -f "$(standin_key "$2")"
	buildah commit --quiet --rm --signature-policy "$work/policy.json" "$1" "$2" >/dev/null ||
		fail "could not commit stand-in $2"
	printf '%s' "$3" >"$(standin_key "$2")"
}

make_standins() {
	local go_tag busybox_tag go_image busybox_image go_key busybox_key ctr host_go
	go_tag=$(dockerfile_arg GO_VERSION)
	busybox_tag=$(dockerfile_arg BUSYBOX_VERSION)
	go_image="docker.io/library/golang:$go_tag"
	busybox_image="docker.io/library/busybox:$busybox_tag"
	host_go=$(go env GOVERSION)
	[[ $host_go == "go$go_tag" || $host_go == go"$go_tag".* ]] ||
		fail "host Go is $host_go but the Dockerfile builds with golang:$go_tag; install Go $go_tag.x"

	busybox_key="recipe=$standin_recipe busybox=$(sha256sum /bin/busybox | cut -c1-16)"
	go_key="$busybox_key go=$host_go"

	if standin_current "$busybox_image" "$busybox_key"; then
		say "stand-in $busybox_image is up to date"
	else
		say "making stand-in $busybox_image from the host's busybox"
		busybox_rootfs "$work/rootfs/busybox"
		ctr=$(buildah from --quiet --signature-policy "$work/policy.json" scratch)
		buildah copy --quiet "$ctr" "$work/rootfs/busybox" / >/dev/null
		buildah config --env PATH=/bin --cmd /bin/sh "$ctr"
		commit_standin "$ctr" "$busybox_image" "$busybox_key"
	fi

	if standin_current "$go_image" "$go_key"; then
		say "stand-in $go_image is up to date"
	else
		say "making stand-in $go_image from the host's $host_go"
		busybox_rootfs "$work/rootfs/golang"
		mkdir -p "$work/rootfs/golang/etc/ssl/certs" "$work/rootfs/golang/go"
		cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/golang/etc/ssl/certs/" ||
			fail "no /etc/ssl/certs/ca-certificates.crt on the host (install ca-certificates)"
		ctr=$(buildah from --quiet --signature-policy "$work/policy.json" scratch)
		buildah copy --quiet "$ctr" "$work/rootfs/golang" / >/dev/null
		buildah copy --quiet "$ctr" "$(go env GOROOT)" /usr/local/go >/dev/null
		# The same settings as the official image, plus no network and no toolchain switching:
		# modules come only from the host cache mounted at /go/pkg/mod.
		buildah config \
			--env PATH=/go/bin:/usr/local/go/bin:/bin \
			--env GOPATH=/go --env HOME=/root \
			--env GOTOOLCHAIN=local --env GOPROXY=off \
			--workingdir /go "$ctr"
		commit_standin "$ctr" "$go_image" "$go_key"
	fi
}

# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------

build_image() {
	local modcache arch start
	say "go mod download (fills the host module cache the build mounts)"
	(cd "$repo" && go mod download) || fail "go mod download failed"
	modcache=$(go env GOMODCACHE)
	arch=$(go env GOARCH)
	# Working containers left by an interrupted run would each hold a full copy of a root file
	# system (vfs); this store is ours alone while we hold the lock, so clear them.
	buildah rm --all >/dev/null 2>&1 || true
	say "building $image from $repo/Dockerfile"
	start=$SECONDS
	buildah bud --quiet --pull-never --isolation oci --network none \
		--signature-policy "$work/policy.json" \
		--build-arg BUILDPLATFORM="linux/$arch" --build-arg TARGETOS=linux --build-arg TARGETARCH="$arch" \
		-v "$modcache:/go/pkg/mod:ro" -v "$work/gocache:/root/.cache/go-build" \
		-f "$repo/Dockerfile" -t "$image" "$repo" </dev/null ||
		fail "buildah bud failed (see the output above)"
	build_seconds=$((SECONDS - start))
	say "built $image in ${build_seconds}s"
	# Drop the image the previous run tagged, so re-runs do not grow the vfs store.
	buildah rmi --prune >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

# metadata KEY prints data.KEY from metadata.yaml (a plain scalar on its own line).
metadata() {
	local value
	value=$(sed -n "s/^  $1:[[:space:]]*//p" "$repo/metadata.yaml" | head -n 1)
	value=${value%\"}
	value=${value#\"}
	[[ -n $value ]] || fail "metadata.yaml has no data.$1"
	printf '%s' "$value"
}

# run_image NETWORK ARGS... runs a throwaway container on the given podman network (none or host),
# without stdin, as Airbyte's spec and check do.
run_image() {
	local network=$1
	shift
	podman run --rm --network "$network" "$@" </dev/null
}

check_config() {
	local config repo_name tag want
	config=$(podman image inspect --format '{{json .Config}}' "$image") || fail "podman image inspect $image failed"
	repo_name=$(metadata dockerRepository)
	tag=$(metadata dockerImageTag)

	want='["/airbyte/bin/source-klaviyo"]'
	[[ $(jq -c '.Entrypoint' <<<"$config") == "$want" ]] ||
		fail "ENTRYPOINT is $(jq -c '.Entrypoint' <<<"$config"), want $want"
	[[ $(jq -r '.Env[] | select(startswith("AIRBYTE_ENTRYPOINT=")) | sub("^AIRBYTE_ENTRYPOINT="; "")' <<<"$config") == \
		"$(jq -r '.Entrypoint | join(" ")' <<<"$config")" ]] ||
		fail "AIRBYTE_ENTRYPOINT does not equal the ENTRYPOINT: $(jq -c '.Env' <<<"$config")"
	[[ $(jq -r '.User' <<<"$config") == airbyte ]] || fail "USER is '$(jq -r '.User' <<<"$config")', want airbyte"
	[[ $(jq -r '.Labels["io.airbyte.name"]' <<<"$config") == "$repo_name" ]] ||
		fail "label io.airbyte.name is '$(jq -r '.Labels["io.airbyte.name"]' <<<"$config")', metadata.yaml says '$repo_name'"
	[[ $(jq -r '.Labels["io.airbyte.version"]' <<<"$config") == "$tag" ]] ||
		fail "label io.airbyte.version is '$(jq -r '.Labels["io.airbyte.version"]' <<<"$config")', metadata.yaml says '$tag'"
	say "ok: entrypoint, AIRBYTE_ENTRYPOINT, user airbyte, labels $repo_name:$tag"

	# What Airbyte's wrappers do inside the container: a shell, printenv, and writes under /airbyte.
	local out
	out=$(run_image none --entrypoint /bin/sh "$image" -c \
		'printenv AIRBYTE_ENTRYPOINT && id -un && touch /airbyte/.write-test && rm /airbyte/.write-test && echo writable') ||
		fail "the image cannot run /bin/sh, printenv, or write to /airbyte as its user: $out"
	[[ $out == $'/airbyte/bin/source-klaviyo\nairbyte\nwritable' ]] ||
		fail "shell probe printed '$out', want the entrypoint, 'airbyte' and 'writable'"
	say "ok: /bin/sh, printenv, user airbyte can write /airbyte"

	out=$(run_image none "$image" --version 2>&1) || fail "--version failed: $out"
	[[ $out == *"$tag"* ]] || fail "--version printed '$out', which does not contain the image version $tag"
	say "ok: --version prints $tag"
}

# check_lines OUTPUT COMMAND fails unless every non-empty line COMMAND wrote is a JSON object.
check_lines() {
	local line
	while IFS= read -r line; do
		[[ -z $line ]] && continue
		jq -e 'type == "object"' <<<"$line" >/dev/null 2>&1 || fail "$2 wrote a line that is not a JSON object: $line"
	done <<<"$1"
}

check_spec() {
	local out count
	out=$(run_image none "$image" spec) || fail "spec exited non-zero: $out"
	check_lines "$out" spec
	count=$(jq -c 'select(.type == "SPEC")' <<<"$out" | wc -l)
	[[ $count -eq 1 ]] || fail "spec wrote $count SPEC messages, want exactly 1"
	jq -e 'select(.type == "SPEC") | .spec.connectionSpecification | type == "object"' <<<"$out" >/dev/null ||
		fail "the SPEC message has no connectionSpecification object"
	say "ok: spec writes one SPEC message"
}

start_sandbox() {
	say "building and starting the sandbox"
	(cd "$repo" && go build -o "$work/bin/klaviyo-sandbox" ./cmd/klaviyo-sandbox) || fail "could not build cmd/klaviyo-sandbox"
	: >"$work/sandbox.out"
	"$work/bin/klaviyo-sandbox" --addr 127.0.0.1:0 --api-key "$api_key" >"$work/sandbox.out" 2>"$work/sandbox.err" </dev/null &
	sandbox_pid=$!
	local i
	for ((i = 0; i < 300; i++)); do
		sandbox_url=$(head -n 1 "$work/sandbox.out")
		[[ -n $sandbox_url && $(wc -l <"$work/sandbox.out") -ge 1 ]] && break
		kill -0 "$sandbox_pid" 2>/dev/null || fail "the sandbox exited early: $(cat "$work/sandbox.err")"
		sleep 0.2
	done
	[[ $sandbox_url == http://* ]] || fail "the sandbox did not print its base URL within a minute (got '$sandbox_url')"
	say "sandbox at $sandbox_url"
}

stop_sandbox() {
	if [[ -n ${sandbox_pid:-} ]]; then
		kill "$sandbox_pid" 2>/dev/null || true
		wait "$sandbox_pid" 2>/dev/null || true
		sandbox_pid=
	fi
}

# run_check KEY WANT WHAT runs `check` in the container with the given API key (described by WHAT)
# and expects connection status WANT.
run_check() {
	local key=$1 want=$2 what=$3 out status rc=0
	jq -n --arg k "$key" --arg u "$sandbox_url" '{api_key: $k, base_url: $u}' >"$work/secrets/config.json"
	# The container runs as uid 1000, which must be able to read the mounted config.
	chmod 0755 "$work/secrets"
	chmod 0644 "$work/secrets/config.json"
	out=$(run_image host -v "$work/secrets:/airbyte/secrets:ro" "$image" \
		check --config /airbyte/secrets/config.json 2>"$work/check.err") || rc=$?
	# Before anything is echoed: the key must not appear in any byte the connector wrote.
	[[ $out != *"$key"* ]] || fail "check with $what wrote the API key to stdout"
	! grep -qF -- "$key" "$work/check.err" || fail "check with $what wrote the API key to stderr"
	((rc == 0)) || fail "check with $what exited $rc (Airbyte expects exit 0 and a status): $out $(cat "$work/check.err")"
	check_lines "$out" check
	status=$(jq -r 'select(.type == "CONNECTION_STATUS") | .connectionStatus.status' <<<"$out")
	[[ $status == "$want" ]] || fail "check with $what reported '${status:-no CONNECTION_STATUS}', want $want: $out"
	say "ok: check with $what reports $want"
}

main() {
	local mode=${1:-build}
	[[ $mode == build || $mode == --setup ]] || fail "unknown argument '$mode' (the only one is --setup)"
	cd "$repo"
	install_tools
	command -v go >/dev/null || fail "go is not on PATH"
	if [[ $mode == --setup ]]; then
		say "ok: buildah, podman, skopeo, runc, jq and a static busybox are installed$([[ $(id -u) -eq 0 ]] || echo ', with uidmap and subordinate ids for a rootless build')"
		return 0
	fi
	# One run at a time per scratch folder: buildah and the stand-in names are shared state. The folder must be
	# the caller's: another user's store and lock can be neither used nor shared.
	mkdir -p "$work" 2>/dev/null || fail "cannot create the scratch folder $work: set CONTAINER_TEST_DIR to a folder you can write"
	[[ -O $work && -w $work ]] ||
		fail "the scratch folder $work belongs to another user: set CONTAINER_TEST_DIR to a folder of your own"
	exec 9>"$work/lock"
	flock 9
	configure

	build_seconds=0
	sandbox_pid=
	api_key="pk_containertest_$$"
	trap stop_sandbox EXIT
	# Turn a termination signal into an ordinary exit, so the EXIT trap stops the sandbox.
	trap 'exit 143' TERM INT

	make_standins
	build_image
	check_config
	check_spec
	start_sandbox
	run_check "$api_key" SUCCEEDED "the sandbox's key"
	run_check "pk_wrong_$$" FAILED "a wrong key"
	stop_sandbox

	local size
	size=$(podman image inspect --format '{{.Size}}' "$image")
	say "PASS: $image built in ${build_seconds}s; image size $(numfmt --to=iec --suffix=B "$size") ($size bytes)"
}

main "$@"
