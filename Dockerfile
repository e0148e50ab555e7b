# syntax=docker/dockerfile:1
# Multi-stage build: cargo-chef caches the dependency layer, the runtime image is distroless
# (no shell, no package manager) and runs as a non-root user. docs/operations.md#container

FROM docker.io/lukemathwalker/cargo-chef:latest-rust-1-bookworm AS chef
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# The dependencies alone: rebuilt only when Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin calltrail \
 && mkdir -p /data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="calltrail" \
      org.opencontainers.image.description="Receives voice-gateway call-status notifications, stores them durably and serves call history and outcomes." \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
WORKDIR /app
COPY --from=builder /app/target/release/calltrail /app/calltrail
# The SQLite default lives on a volume owned by the runtime user (nonroot, 65532), which a
# new named volume takes over; with PostgreSQL this directory stays empty.
COPY --from=builder --chown=65532:65532 /data /data
VOLUME ["/data"]
ENV CALLTRAIL__SERVER__BIND=0.0.0.0:8080 \
    CALLTRAIL__DATABASE__URL=sqlite:///data/calltrail.db \
    CALLTRAIL__SPOOL__PATH=/data/calltrail-spool.db \
    CALLTRAIL__LOG__FORMAT=json
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 \
  CMD ["/app/calltrail", "healthcheck"]
ENTRYPOINT ["/app/calltrail"]
CMD ["serve"]
