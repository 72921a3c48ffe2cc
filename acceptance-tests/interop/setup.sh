#!/usr/bin/env bash
# Installs the real clients the interop tests run source-klaviyo with, at the versions pinned in requirements/:
# Meltano, target-jsonl, target-csv, target-postgres, target-duckdb, PyAirbyte and airbyte-protocol-models, each in
# its own venv under .venv-interop/ at the repository root (their dependencies conflict), plus PostgreSQL's server
# programs.
#
# Idempotent: a venv whose requirements file and interpreter have not changed since it was built is left alone, and
# apt runs only when something is missing. Works as root on a fresh Debian machine with CI=true and no stdin; as
# another user it works when PostgreSQL and python3 with venv are already installed, and otherwise stops before
# touching anything, with one sentence naming the packages to install.
#
# Environment: INTEROP_VENV (default <repo>/.venv-interop), INTEROP_PYTHON (default python3.11, else python3).
# Afterwards the tests find everything by themselves; `source .venv-interop/env.sh` exports the same paths.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venvs="${INTEROP_VENV:-$root/.venv-interop}"
reqs="$here/requirements"
export DEBIAN_FRONTEND=noninteractive PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
start=$SECONDS

say() { printf 'interop setup: %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------------------------------
apt_updated=""
need_root() { # need_root PACKAGE...: stops, saying what to do, unless this process may install the packages
  if [ "$(id -u)" != 0 ]; then
    say "missing $*, and installing needs root: run \`sudo apt-get install -y $*\` (or run this as root), then run this again" >&2
    exit 1
  fi
}
apt_install() {
  need_root "$@"
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null
}

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
  return 0
}

if [ -z "$(pg_bin)" ]; then
  need_root postgresql
  # The tests start their own throwaway cluster; Debian's default "main" cluster would only sit on port 5432.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/interop-no-main-cluster.conf
  apt_install postgresql
fi
pgbin="$(pg_bin)"
[ -n "$pgbin" ] || { say "PostgreSQL's initdb is still missing after apt-get install postgresql" >&2; exit 1; }
say "PostgreSQL: $("$pgbin/postgres" --version 2>/dev/null || echo "$pgbin")"

python="${INTEROP_PYTHON:-}"
if [ -z "$python" ]; then
  python="$(command -v python3.11 || command -v python3 || true)"
fi
if [ -z "$python" ]; then
  apt_install python3 python3-venv
  python="$(command -v python3)"
fi
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  # Debian ships ensurepip separately; without it `python -m venv` cannot put pip into a venv.
  apt_install python3-venv
fi
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
say "Python: $python ($pyver)"
case "$pyver" in
  3.11.*) ;;
  *) say "warning: the pins were verified on Python 3.11; $pyver may lack some of these versions" >&2 ;;
esac

# --- venvs -----------------------------------------------------------------------------------------------------
mkdir -p "$venvs"
stamp_of() { # what a venv was built from: the interpreter and the requirements file's content
  printf '%s %s\n' "$python" "$pyver"
  sha256sum "$reqs/$1.txt" | cut -d' ' -f1
}

build_venv() { # name: builds $venvs/name from requirements/name.txt unless it is already up to date
  local name="$1" dir="$venvs/$1" log="$venvs/$1.log"
  if [ -f "$dir/.interop-stamp" ] && [ "$(cat "$dir/.interop-stamp")" = "$(stamp_of "$name")" ]; then
    echo "up to date"
    return 0
  fi
  rm -rf "$dir"
  {
    "$python" -m venv "$dir" &&
      # --no-deps: the files pin every transitive package, so nothing is resolved afresh; pip check then proves
      # the set is complete and consistent.
      "$dir/bin/python" -m pip install --quiet --progress-bar off --no-deps -r "$reqs/$name.txt" &&
      "$dir/bin/python" -m pip check
  } >"$log" 2>&1 || { echo "FAILED (log: $log)"; return 1; }
  stamp_of "$name" >"$dir/.interop-stamp"
  echo "installed $(grep -c '==' "$reqs/$name.txt") pinned packages"
}

names=(meltano target-jsonl target-csv target-postgres target-duckdb pyairbyte protocol-models)
# Two at a time: downloads overlap, and the 2-core machine is not swamped by unpacking.
pids=()
for name in "${names[@]}"; do
  ( t0=$SECONDS; rc=0; res="$(build_venv "$name")" || rc=$?; say "venv $name: $res ($((SECONDS - t0))s)"; exit $rc ) &
  pids+=($!)
  if [ "${#pids[@]}" -ge 2 ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ -n "${failed:-}" ]; then
  for name in "${names[@]}"; do
    [ -f "$venvs/$name/.interop-stamp" ] || { say "--- $venvs/$name.log:" >&2; tail -n 30 "$venvs/$name.log" >&2 || true; }
  done
  say "failed" >&2
  exit 1
fi

cat >"$venvs/env.sh" <<EOF
# Written by acceptance-tests/interop/setup.sh: where the interop tests find their clients.
export INTEROP_VENV="$venvs"
export INTEROP_PG_BIN="$pgbin"
EOF

pin() { # pin FILE PACKAGE: the pinned version, whatever spelling (- or _, case) pip froze the name in
  grep -iE "^$(echo "$2" | sed 's/[-_]/[-_]/g')==" "$reqs/$1.txt" | cut -d= -f3
}
say "clients: meltano $(pin meltano meltano), target-jsonl $(pin target-jsonl target-jsonl)," \
  "target-csv $(pin target-csv meltanolabs-target-csv), target-postgres $(pin target-postgres meltanolabs-target-postgres)," \
  "target-duckdb $(pin target-duckdb target-duckdb) with duckdb $(pin target-duckdb duckdb)," \
  "PyAirbyte (airbyte) $(pin pyairbyte airbyte), airbyte-protocol-models $(pin protocol-models airbyte-protocol-models)"
say "venvs in $venvs (source $venvs/env.sh to export INTEROP_VENV, INTEROP_PG_BIN); done in $((SECONDS - start))s"
