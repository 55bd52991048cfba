# ddcp in a container: `docker build -t ddcp .`, then
#   docker run -v $(pwd)/data:/data ddcp init
#   cat fixtures/cr_test_schema.sql | docker run -i -v $(pwd)/data:/data ddcp shell
#   docker compose -f deploy/docker-compose.yml up   (ddcp serve + Prometheus)
# Not built here: the development machines have no Docker engine and no Dockerfile linter
# (hadolint is not packaged in Debian); the stages run the same scripts as a developer does.

FROM rust:1-bookworm AS build
WORKDIR /src
# Debian's packages first (clang/libclang for cr-sqlite's bindgen, capnproto for the schema,
# npm to fetch cr-sqlite's source), in a layer of their own.
COPY scripts/install-deps.sh scripts/
RUN apt-get update && scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY patches patches
COPY scripts scripts
RUN scripts/build-crsqlite.sh
COPY Cargo.toml Cargo.lock build.rs ./
COPY schema schema
COPY crates crates
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin ddcp

FROM debian:bookworm-slim
RUN useradd --system --home-dir /data --shell /usr/sbin/nologin ddcp \
 && mkdir -p /data && chown ddcp:ddcp /data
COPY --from=build /src/target/release/ddcp /usr/local/bin/ddcp
COPY fixtures /usr/share/ddcp/fixtures
USER ddcp
WORKDIR /data
VOLUME /data
ENV DB_FILE=/data/ddcp.db STATE_DIR=/data/.ddcp
# Veilid (UDP, TCP, WebSocket) and, with --metrics-addr 0.0.0.0:9100, the metrics.
EXPOSE 5150/tcp 5150/udp 9100/tcp
ENTRYPOINT ["ddcp"]
CMD ["--help"]
