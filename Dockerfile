# syntax=docker/dockerfile:1
#
# The Airbyte image of source-klaviyo: one static Go binary on a small busybox base.
# Build with an ordinary Docker engine:   docker build -t source-klaviyo/source-klaviyo:0.1.0 .
# Build with no daemon and no registry:   scripts/container-test.sh   (see docs/docker.md)

# The builder follows go.mod's go directive (major.minor); packaging_test.go checks they agree.
ARG GO_VERSION=1.26
ARG BUSYBOX_VERSION=1.37

# The builder runs on the build machine's platform and cross-compiles (GOOS/GOARCH below), so a
# multi-platform build needs no emulation. BuildKit fills BUILDPLATFORM, TARGETOS and TARGETARCH;
# builders that do not (buildah, the legacy docker builder) get the linux/amd64 fallbacks. The
# fallbacks are written as ${VAR:-default} at the point of use, not as ARG defaults, because some
# BuildKit versions let an ARG default win over the platform requested with --platform.
FROM --platform=${BUILDPLATFORM:-linux/amd64} docker.io/library/golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first, so editing source does not invalidate the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A static binary (no cgo) so the runtime stage needs no libc; -trimpath keeps build paths out of it.
# The version is not stamped with -X: it is the constant source.Version, compiled in like any other.
RUN CGO_ENABLED=0 GOOS="${TARGETOS:-linux}" GOARCH="${TARGETARCH:-amd64}" \
    go build -trimpath -buildvcs=false -ldflags "-s -w" -o /out/source-klaviyo ./cmd/source-klaviyo

# busybox, not scratch or distroless: Airbyte's wrappers need /bin/sh and printenv in the image.
FROM docker.io/library/busybox:${BUSYBOX_VERSION}
# A LABEL cannot ask the binary for its version, so the number is written here as a literal;
# packaging_test.go fails unless it equals source.Version and metadata.yaml's dockerImageTag.
LABEL io.airbyte.name="source-klaviyo/source-klaviyo" \
      io.airbyte.version="0.1.0"
# The airbyte user (uid 1000, as in Airbyte's own base images) owns /airbyte, where the platform
# mounts config, catalog and state files; /airbyte/bin stays root's, so the binary cannot be
# replaced from inside. Appending to passwd/group works on any busybox build.
RUN echo 'airbyte:x:1000:1000:airbyte:/airbyte:/bin/sh' >> /etc/passwd \
 && echo 'airbyte:x:1000:' >> /etc/group \
 && mkdir -p /airbyte/bin \
 && chown 1000:1000 /airbyte
# Klaviyo is reached over HTTPS; busybox carries no CA bundle of its own.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/source-klaviyo /airbyte/bin/source-klaviyo
# Airbyte requires AIRBYTE_ENTRYPOINT to equal the ENTRYPOINT, with absolute paths.
ENV AIRBYTE_ENTRYPOINT="/airbyte/bin/source-klaviyo"
WORKDIR /airbyte
USER airbyte
ENTRYPOINT ["/airbyte/bin/source-klaviyo"]
