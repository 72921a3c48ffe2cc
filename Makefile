# The README's commands. `make demo` syncs every stream from the bundled sandbox; `make test` sets up what the
# tests need (idempotent) and runs every test. CI runs `bash .ci/run`, which runs `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: build demo test lint setup setup-interop setup-image unit race interop bench bench-quick bench-small bench-quiet bench-hot soak fuzz

build:
	mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/source-klaviyo ./cmd/source-klaviyo
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/klaviyo-sandbox ./cmd/klaviyo-sandbox

demo:
	bash scripts/demo.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

# What the tests need, installed when missing; idempotent. Installing system packages (PostgreSQL, python3-venv,
# buildah, podman...) needs root: as another user each script stops here, before any test runs, with one sentence
# saying what to install, and with everything installed the whole of make test runs rootless.
setup: setup-interop setup-image

# The interop clients (Meltano, Singer targets, PyAirbyte) from pinned requirements, and PostgreSQL.
setup-interop:
	bash acceptance-tests/interop/setup.sh

# The image build's tools (buildah, podman, skopeo, runc, jq, static busybox; for another user uidmap and subids).
setup-image:
	bash scripts/container-test.sh --setup

# Every Go test, the Docker image build included (scripts/container-test.sh, whose tools setup-image installed).
unit:
	SOURCE_KLAVIYO_CONTAINER_TEST=1 $(GO) test -count=1 -timeout 45m ./...

# The unit tests and the core end-to-end tests under the race detector (the binary built with -race too).
race:
	$(GO) test -count=1 -race ./source/...
	SOURCE_KLAVIYO_RACE=1 $(GO) test -count=1 -race -timeout 20m -run 'TestFullRefresh|TestIncremental|TestKill|TestSigterm' ./acceptance-tests

interop: setup-interop
	$(GO) test -count=1 -v ./acceptance-tests/interop/

test: lint setup race unit

bench-hot:
	$(GO) test -run '^$$' -bench . -benchmem ./source/... ./acceptance-tests/sandbox/...

# The long soak: many fault seeds and SIGKILLs (CI runs a few of each as part of `make test`).
soak:
	SOAK_SEEDS=$${SOAK_SEEDS:-50} SOAK_KILLS=$${SOAK_KILLS:-100} $(GO) test -count=1 -v -timeout 2h -run 'Fault|Kill|Sigterm' ./acceptance-tests

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$'    -fuzztime $${FUZZTIME:-30s} -parallel 1 ./source
	$(GO) test -run '^$$' -fuzz '^FuzzParseState$$'     -fuzztime $${FUZZTIME:-30s} -parallel 1 ./source/emit
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeDocument$$' -fuzztime $${FUZZTIME:-30s} -parallel 1 ./source/klaviyo
	$(GO) test -run '^$$' -fuzz '^FuzzSelectAirbyte$$'  -fuzztime $${FUZZTIME:-30s} -parallel 1 ./catalog
	$(GO) test -run '^$$' -fuzz '^FuzzSelectSinger$$'   -fuzztime $${FUZZTIME:-30s} -parallel 1 ./catalog

# Benchmark the built binary against the sandbox (about 27 min); prints a Markdown table (docs/benchmarks.md).
bench:
	$(GO) run ./acceptance-tests/bench

# The same at 1/20 size, about a minute: a smoke test, not figures to quote.
bench-quick:
	$(GO) run ./acceptance-tests/bench -quick

# Small syncs at Klaviyo's published limits against what the limits and latency allow (issue 12), seconds.
bench-small:
	$(GO) run ./acceptance-tests/bench -only small

# Issue 12's two-sync studies: an hourly sync of an unchanged account (quiet-demo, quiet-lists; each first sync waits
# on the Reporting API's 2 requests a minute, about 12 minutes) and a whole catalog against events alone.
bench-quiet:
	$(GO) run ./acceptance-tests/bench -only quiet,pair
