# hallpass in a container: static binaries (CGO_ENABLED=0, -trimpath) on
# distroless/static, which holds CA certificates, tzdata and a non-root user
# (65532) and nothing else: no shell, no package manager, no curl. The
# health check is `hallpass health URL`. docs/deploy.md explains the
# images and docker-compose.yml, which builds all three:
#
#   docker build -t hallpass/hallpass:local .                          # hallpass serve | gateway | keys | admin ...
#   docker build --target upstream -t hallpass/upstream:local .        # the example application behind the gateway
#   docker build --target socketio -t hallpass/socketio:local .        # the socket.io example (nested module socketio/)

ARG GO_VERSION=1.26

# --- build: the root module (hallpass, the example upstream) -------------
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same recipe as on a workstation: `make build` is static and -trimpath.
RUN make build \
 && go build -trimpath -o /out/upstream ./deploy/upstream/cmd/upstream \
 && mkdir -p /out/data

# --- build-socketio: the nested module, its own stage (socket.io and its ---
# --- QUIC stack stay out of the hallpass image) ---------------------------
FROM build AS build-socketio
RUN go -C socketio build -trimpath -o /out/socketio ./example

# --- upstream: the example application behind the gateway -----------------
FROM gcr.io/distroless/static-debian12:nonroot AS upstream
COPY --from=build /out/upstream /usr/local/bin/upstream
USER 65532:65532
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/upstream"]
CMD ["--listen", "0.0.0.0:3000"]

# --- socketio: the socket.io example --------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS socketio
COPY --from=build-socketio /out/socketio /usr/local/bin/socketio
# hallpass health, for the container's health check (no curl here).
COPY --from=build /src/bin/hallpass /usr/local/bin/hallpass
USER 65532:65532
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/socketio"]

# --- hallpass: the default image (last stage) -----------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS hallpass
COPY --from=build /src/bin/hallpass /usr/local/bin/hallpass
# /data: the data directory (bbolt store, key ring files, the Redis ring's
# rollback state), owned by the image's user; mount a volume on it.
COPY --from=build --chown=65532:65532 /out/data /data
ENV HALLPASS_LISTEN=0.0.0.0:8080 \
    HALLPASS_DATA=/data
VOLUME ["/data"]
USER 65532:65532
EXPOSE 8080
# /healthz: the process answers (serve on its default listener).
# docker-compose.yml probes the issuers' /readyz instead (key loaded, store
# and revocation mirror fresh), and the gateway's ops listener
# (127.0.0.1:9101/readyz by default): a gateway started with plain
# `docker run` needs the same, e.g. --health-cmd '/usr/local/bin/hallpass
# health --timeout 4s http://127.0.0.1:9101/readyz', or it shows unhealthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/hallpass", "health", "--timeout", "4s", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/hallpass"]
CMD ["serve"]
