# The README's commands. `make demo` syncs every stream from the bundled sandbox; `make test` sets up what the
# tests need (idempotent) and runs every test. CI runs `bash .ci/run`, which runs `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: build demo test lint unit interop bench bench-quick bench-hot soak fuzz

build:
	mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/source-klaviyo ./cmd/source-klaviyo
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/klaviyo-sandbox ./cmd/klaviyo-sandbox

demo:
	bash scripts/demo.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

# Every Go test, the Docker image build included (scripts/container-test.sh installs buildah and podman itself).
unit:
	SOURCE_KLAVIYO_CONTAINER_TEST=1 $(GO) test -count=1 -timeout 45m ./...

test: lint unit

bench-hot:
	$(GO) test -run '^$$' -bench . -benchmem ./source/... ./acceptance-tests/sandbox/...
