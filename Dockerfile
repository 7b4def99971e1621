# syntax=docker/dockerfile:1
# The Basalt server image: one static-ish binary on a slim Debian, run as a
# non-root user, with all state under the /var/lib/basalt volume.
#
#   docker build -t basalt .
#   docker run -p 8080:8080 -v basalt-data:/var/lib/basalt basalt
#
# The base images are build arguments so that the image can be built where
# Docker Hub is out of reach (scripts/image-check.sh builds it from bases made
# with debootstrap). The builder needs a Rust toolchain at or above the
# workspace's rust-version, a C compiler (ring, the bundled SQLite) and CA
# certificates (to fetch crates); the runtime needs glibc and apt.
# Keep BUILDER_IMAGE's Rust version in step with rust-toolchain.toml.
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
# Fixed cargo paths, whatever the builder image sets, so that the cache
# mounts below land where cargo looks. No incremental compilation: it only
# costs time and space in a release build.
ENV CARGO_HOME=/usr/local/cargo \
    CARGO_TARGET_DIR=/src/target \
    CARGO_INCREMENTAL=0 \
    CARGO_NET_RETRY=5 \
    CARGO_TERM_COLOR=never
# Only the manifests, the lock file and the crates (.dockerignore keeps the
# rest out), so that docs or deploy files changing do not rebuild anything.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The crate registry and the target folder are cache mounts: a rebuild after
# a source change downloads nothing and recompiles only the crates that
# changed (the dependencies stay compiled). The binary is copied out of the
# mount, which is not part of the layer.
RUN --mount=type=cache,id=basalt-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=basalt-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p basalt \
    && install -D -m 0755 /src/target/release/basalt /out/basalt

FROM ${RUNTIME_IMAGE} AS runtime
# A fixed UID/GID (outside the range distributions give to their own system
# users) so that volume ownership, Kubernetes' runAsUser and a host's chown
# agree. The data folder is created here, owned by that user, so that a new
# named volume copies its ownership.
ARG BASALT_UID=10001
# ca-certificates: for TLS to services that present public certificates
# (SMTP, an OTLP collector); nothing else is installed.
# DL3008 (pin apt versions) is ignored: the base is a build argument and
# Debian replaces a package's version on every point release and security
# update, so a pin would break the build instead of making it reproducible;
# the base image's digest is what pins the runtime.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log \
    && groupadd --system --gid "${BASALT_UID}" basalt \
    && useradd --system --uid "${BASALT_UID}" --gid basalt --no-create-home \
        --home-dir /var/lib/basalt --shell /usr/sbin/nologin basalt \
    && install -d -o basalt -g basalt -m 0750 /var/lib/basalt
COPY --from=builder /out/basalt /usr/local/bin/basalt

# Listen on every interface of the container (the default, 127.0.0.1, is
# unreachable through a published port), keep the SQLite database and any
# other local state in the volume, and log JSON lines for a log shipper.
# Everything else is configured with BASALT_* variables (and *_FILE for
# secrets) at run time.
ENV BASALT_LISTEN=0.0.0.0:8080 \
    BASALT_DATA_DIR=/var/lib/basalt \
    BASALT_LOG_FORMAT=json
VOLUME ["/var/lib/basalt"]
WORKDIR /var/lib/basalt
USER ${BASALT_UID}:${BASALT_UID}
EXPOSE 8080

# Basalt's graceful shutdown (basalt_platform::server::shutdown_signal)
# listens for SIGTERM and SIGINT: in-flight requests finish, the background
# work stops within the shutdown grace, and the process exits 0.
STOPSIGNAL SIGTERM
# Liveness through the real HTTP stack, by the binary itself (`basalt
# healthcheck` asks this node's /healthz on loopback, at the port of
# BASALT_LISTEN, over HTTPS when BASALT_TLS_* is set), so the runtime needs no
# shell, curl or wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["basalt", "healthcheck"]

ENTRYPOINT ["basalt"]
CMD ["serve"]

# Last, so that a new revision changes only the image's metadata. (Buildah
# 1.28 reuses a cached LABEL step whatever these arguments are, so
# scripts/image-check.sh passes both labels with --label as well.)
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="basalt" \
      org.opencontainers.image.description="Basalt: one Rust binary for identity, content, real time and commerce backends." \
      org.opencontainers.image.source="https://github.com/basalt-rs/basalt" \
      org.opencontainers.image.url="https://github.com/basalt-rs/basalt" \
      org.opencontainers.image.documentation="https://github.com/basalt-rs/basalt/blob/main/README.md" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.vendor="Basalt contributors" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
