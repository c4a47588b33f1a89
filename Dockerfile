# Container image for the streamwatch server.
#
#   docker build -t streamwatch .
#   docker compose up --build        # with PostgreSQL, see docker-compose.yml
#
# Configuration comes from STREAMWATCH__SECTION__KEY environment variables
# (e.g. STREAMWATCH__DATABASE__URL, STREAMWATCH__AUTH__JWT_SECRET).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# No compile-time database access (migrations are embedded from ./migrations).
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY . .
# BuildKit cache mounts keep the registry and target/ between builds; the
# binary is copied out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin streamwatch \
    && install -D -m 0755 target/release/streamwatch /out/streamwatch

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 streamwatch \
    && useradd --system --uid 10001 --gid streamwatch --home-dir /var/lib/streamwatch \
        --create-home --shell /usr/sbin/nologin streamwatch
COPY --from=builder /out/streamwatch /usr/local/bin/streamwatch
ENV STREAMWATCH__HTTP__ADDR=0.0.0.0:8080
USER streamwatch:streamwatch
WORKDIR /var/lib/streamwatch
EXPOSE 8080
ENTRYPOINT ["streamwatch"]
CMD ["serve"]
