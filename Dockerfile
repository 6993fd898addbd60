# syntax=docker/dockerfile:1
#
# The `contingent` binary in a small runtime image. Build: `docker build -t contingent .`
# (compose.yaml builds it for `docker compose up --build`). The image runs any subcommand:
# `serve` (the default), `project`, `token`, `verify`, ...

FROM rust:1-bookworm AS build

# rdkafka-sys builds librdkafka from source with its configure script and make (cmake when the
# `cmake-build` feature is on); librdkafka links the system zlib (`libz` feature) and, with the
# `ssl` feature, OpenSSL. python3 generates librdkafka's linker script. sqlx builds SQLite
# from source with the C compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config python3 zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin contingent \
 && install -m 0755 target/release/contingent /usr/local/bin/contingent

FROM debian:bookworm-slim

# ca-certificates: the trust store librdkafka reads for TLS to the brokers (rdkafka's `ssl`
# feature); curl: the container's health probe.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 contingent \
 && useradd --system --uid 10001 --gid contingent --home-dir /var/lib/contingent \
      --shell /usr/sbin/nologin contingent \
 && install -d -o contingent -g contingent -m 0750 /var/lib/contingent

COPY --from=build /usr/local/bin/contingent /usr/local/bin/contingent

# DATA holds the local token key (keys/) and, without --kafka and --database, the SQLite files.
ENV CONTINGENT_DATA=/var/lib/contingent \
    CONTINGENT_LISTEN=0.0.0.0:8080 \
    RUST_LOG=info

USER contingent:contingent
WORKDIR /var/lib/contingent
EXPOSE 8080
ENTRYPOINT ["contingent"]
CMD ["serve"]
