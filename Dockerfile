# syntax=docker/dockerfile:1
# Container image of the streamwatch server (`streamwatch serve`, and the other CLI commands).
#
#   docker build -t streamwatch .
#   docker compose up --build          # the whole stack: see docker-compose.yml
#
# Configuration comes from STREAMWATCH__SECTION__KEY environment variables (every key is in
# docs/OPERATIONS.md), e.g. STREAMWATCH__DATABASE__URL and STREAMWATCH__AUTH__JWT_SECRET.
# `serve` applies pending migrations at start; `docker run ... streamwatch migrate` applies
# them alone (a release step when several replicas run).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# No compile-time database access: queries are checked by the tests, and the migrations,
# templates and assets are embedded in the binary.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY . .
# BuildKit cache mounts keep the registry and target/ between builds; the binary is copied out
# of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p streamwatch --bin streamwatch \
    && install -D -m 0755 target/release/streamwatch /out/streamwatch

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: SMTP over TLS and HTTPS. No shell tools beyond the base image: the compose
# health check uses bash's /dev/tcp.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 streamwatch \
    && useradd --system --uid 10001 --gid streamwatch --home-dir /var/lib/streamwatch \
        --create-home --shell /usr/sbin/nologin streamwatch
COPY --from=builder /out/streamwatch /usr/local/bin/streamwatch
# Listen on every interface of the container (the default, 127.0.0.1, is unreachable from
# outside it).
ENV STREAMWATCH__HTTP__ADDR=0.0.0.0:8080
USER streamwatch:streamwatch
# The development mailbox folder (`mailbox/`, used only without SMTP outside production) lands
# here.
WORKDIR /var/lib/streamwatch
EXPOSE 8080
# SIGTERM (docker stop) finishes in-flight requests, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["streamwatch"]
CMD ["serve"]
