# syntax=docker/dockerfile:1
# Websentry images: static musl binaries on an empty (scratch) base, one image per program.
#   docker build --target producer -t websentry-producer:0.1.0 .
#   docker build --target consumer -t websentry-consumer:0.1.0 .
#   docker build --target status -t websentry-status:0.1.0 .
# No shell, no libc, no CA store in the images: rustls verifies sites against the Mozilla roots
# built into the binary (plus WEBSENTRY_PROBE_CAFILE), and Kafka and PostgreSQL against the CA files
# you mount. All three run as the numeric user 65532, so a runtime that demands a non-root user accepts
# them without an /etc/passwd.

ARG RUST_VERSION=1.95

# ------------------------------------------------------------------ build
FROM rust:${RUST_VERSION}-slim-bookworm AS build
# A failed build must fail the step, not hand an empty list to the copy after the pipe.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# musl-tools: the C compiler for ring, lz4, zstd, mimalloc and jemalloc (whose build runs make); the
# rustup target for the musl standard library.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools make \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# The same script as outside Docker (scripts/build-static); the caches make a rebuild incremental,
# and the binaries are copied out of the cached target folder before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    mkdir -p /out \
 && scripts/build-static | xargs -I{} install -m 0555 {} /out/

# ------------------------------------------------------------------ producer
FROM scratch AS producer
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="websentry-producer" \
      org.opencontainers.image.description="Probes websites and publishes one JSON report per probe to Kafka over mutual TLS" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/websentry"
COPY --from=build /out/websentry-producer /websentry-producer
USER 65532:65532
ENTRYPOINT ["/websentry-producer"]

# ------------------------------------------------------------------ consumer
FROM scratch AS consumer
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="websentry-consumer" \
      org.opencontainers.image.description="Archives Websentry reports from Kafka into PostgreSQL, exactly once" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/websentry"
COPY --from=build /out/websentry-consumer /websentry-consumer
USER 65532:65532
# WEBSENTRY_LISTEN: /healthz, /readyz, /metrics
EXPOSE 9187
ENTRYPOINT ["/websentry-consumer"]

# ------------------------------------------------------------------ status
FROM scratch AS status
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="websentry-status" \
      org.opencontainers.image.description="Serves Websentry's status page, JSON API and badges from the archive, read-only" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/websentry"
COPY --from=build /out/websentry-status /websentry-status
USER 65532:65532
# WEBSENTRY_STATUS_LISTEN (default 0.0.0.0:8080): the pages, /api/v1, /healthz, /readyz, /metrics.
# No HEALTHCHECK: a scratch image has no program to run one with; probe /healthz and /readyz from outside.
EXPOSE 8080
ENTRYPOINT ["/websentry-status"]
