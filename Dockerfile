# syntax=docker/dockerfile:1.7
#
# The `streamhub` binary in a small Debian image: one image for every role
# (up, admin, producer, consumer, broker); the command line picks the role.
#
#   DOCKER_BUILDKIT=1 docker build -t streamhub:local .
#   docker run --rm -p 127.0.0.1:5000:5000 -p 127.0.0.1:9092:9092 -v streamhub-data:/data streamhub:local
#
# See deploy/README.md (compose, several machines, systemd). Written, not run here:
# the project's build machine has no container engine.

# ---------------------------------------------------------------------------
# Build: the Rust toolchain the workspace declares (rust-version 1.95), Debian 12.
FROM rust:1.95-bookworm AS builder

# rdkafka-sys builds librdkafka from source with its own configure script and make
# (C and C++ compilers, pkg-config; python3 is probed), against the system OpenSSL
# (feature `ssl`) and zlib. libsql and aws-lc build their C sources with cc; cmake is
# the fallback aws-lc builder. No libclang: libsql ships pre-generated bindings.
# Package versions are not pinned: bookworm's point releases bring security fixes, and
# exact Debian versions disappear from the archive.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config python3 libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# A workspace of several crates cannot cheaply build its dependencies from manifests
# alone; the cache mounts keep the crate registry and the compiled dependencies
# between builds instead, so a source change recompiles only the workspace crates.
COPY . .
# The target directory is a cache mount (absent from the image): the binary is copied
# out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p streamhub \
 && install -D -m 0755 target/release/streamhub /out/streamhub

# ---------------------------------------------------------------------------
# Runtime: glibc from the base image; libssl3 for librdkafka's TLS (libcrypto comes
# with it); zlib1g and libgcc-s1 are part of bookworm-slim; CA certificates for
# `--security-protocol ssl|sasl_ssl` against brokers with public certificates.
FROM debian:bookworm-slim

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid, so a bind-mounted /data can be chowned to it (10001:10001).
RUN groupadd --system --gid 10001 streamhub \
 && useradd --system --uid 10001 --gid streamhub --home-dir /data \
        --no-create-home --shell /usr/sbin/nologin streamhub \
 && install -d -o streamhub -g streamhub -m 0750 /data

COPY --from=builder /out/streamhub /usr/local/bin/streamhub
# No HEALTHCHECK in the image: the same image runs the producer and the consumer,
# which serve no HTTP, and an image-wide check would mark them unhealthy. The check
# lives where the role is known (compose.yaml, `docker run --health-cmd`); this
# script does it with bash's /dev/tcp, so neither curl nor wget is installed.
COPY --chmod=0755 deploy/docker/healthcheck /usr/local/bin/streamhub-healthcheck

# Embedded broker log, SQLite metadata store and the generated admin password.
ENV STREAMHUB_DATA_DIR=/data
VOLUME ["/data"]
WORKDIR /data
# Numeric, so `runAsNonRoot` checks (Kubernetes) can verify it without /etc/passwd.
USER 10001:10001

# 5000: admin service and dashboard. 9092: embedded broker (`up`, `broker`).
EXPOSE 5000 9092
# streamhub stops cleanly on SIGTERM (docker stop): the producer flushes first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["streamhub"]
# `up` offers no advertised-listener flag: listening on 0.0.0.0 it advertises
# 127.0.0.1:9092, so its broker serves Kafka clients inside this container and on the
# Docker host through `-p 127.0.0.1:9092:9092` (same port) only. For other machines
# run `broker --advertised-listener HOST:9092` and `admin`/`producer` separately.
CMD ["up", "--listen", "0.0.0.0:5000", "--broker-listen", "0.0.0.0:9092"]
