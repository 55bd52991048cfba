# ddcp in a container: `docker build -t ddcp .`, then
#   docker run -v $(pwd)/data:/data ddcp init
#   cat fixtures/cr_test_schema.sql | docker run -i -v $(pwd)/data:/data ddcp shell
#   docker compose -f deploy/docker-compose.yml up   (ddcp serve + Prometheus)
# Built, linted (hadolint) and run for real by scripts/test-container.sh (rootful podman); the
# stages run the same scripts as a developer does.

FROM rust:1-bookworm AS build
WORKDIR /src
# Debian's packages first (clang/libclang for cr-sqlite's bindgen, capnproto for the schema,
# npm to fetch cr-sqlite's source), in a layer of their own.
COPY scripts/install-deps.sh scripts/
RUN apt-get update && scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY patches patches
# The two scripts the build runs, not the folder: a change to another script (the tests')
# keeps the layers below cached.
COPY scripts/build-crsqlite.sh scripts/
RUN scripts/build-crsqlite.sh
COPY Cargo.toml Cargo.lock build.rs ./
COPY schema schema
COPY crates crates
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin ddcp \
 && mkdir -p /src/share/man1 \
 && target/release/ddcp completions bash >/src/share/ddcp.bash \
 && target/release/ddcp man --dir /src/share/man1 >/dev/null

FROM debian:bookworm-slim
# A fixed uid: the entrypoint hands /data to it, and hosts can match it.
RUN useradd --system --uid 999 --home-dir /data --shell /usr/sbin/nologin ddcp \
 && mkdir -p /data && chown 999:999 /data
COPY --from=build /src/target/release/ddcp /usr/local/bin/ddcp
COPY --from=build /src/share/ddcp.bash /usr/share/bash-completion/completions/ddcp
COPY --from=build /src/share/man1/ /usr/share/man/man1/
COPY deploy/entrypoint.sh /usr/local/bin/ddcp-entrypoint
COPY fixtures /usr/share/ddcp/fixtures
WORKDIR /data
VOLUME /data
ENV DDCP_DB_FILE=/data/ddcp.db DDCP_STATE_DIR=/data/.ddcp
# Veilid (UDP, TCP, WebSocket) and, with --metrics-addr 0.0.0.0:9100, the metrics.
EXPOSE 5150/tcp 5150/udp 9100/tcp
# Starts as root only to give a bind-mounted /data to uid 999, then runs ddcp as 999 (setpriv):
# `docker run -v $(pwd)/data:/data` works on a root-owned host folder.
ENTRYPOINT ["ddcp-entrypoint"]
CMD ["--help"]
