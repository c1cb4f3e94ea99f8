# The local runner and the webhook test service, for docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin qubit-local --bin webhook-sink

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/qubit-local /src/target/release/webhook-sink /usr/local/bin/
USER nobody
EXPOSE 8080 9090
CMD ["qubit-local"]
