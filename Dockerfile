# syntax=docker/dockerfile:1
# The deploylens image: the distribution built by ocb from builder-config.yaml, as a
# static binary on a distroless base, run as a non-root user.
#
#   docker build -t ghcr.io/deploylens/otelcol-deploylens:0.1.0 .
#   docker run --rm -p 4317:4317 -p 4318:4318 -p 8088:8088 -p 8089:8089 -p 13133:13133 \
#     ghcr.io/deploylens/otelcol-deploylens:0.1.0
#
# internal/packaging's tests check this file against the repository (Go and ocb versions, paths,
# exposed ports, .dockerignore) and build the binary the way the build stage does.

# --- build: ocb, the same version as the Makefile's OCB_VERSION ---------------------------
FROM golang:1.26 AS build
ARG OCB_VERSION=v0.165.0
# A static binary: no libc, so it runs on distroless/static (ocb also sets this by default).
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go install go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}
WORKDIR /src
COPY . .
# output_path ./_build and the replace ../ in builder-config.yaml resolve inside /src.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    builder --config builder-config.yaml

# --- runtime: no shell, no libc, uid 65532 -----------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/_build/otelcol-deploylens /otelcol-deploylens
# Listens on all interfaces (deploy/default-config.yaml, for `make run`, listens on localhost only).
COPY deploy/configs/container.yaml /etc/otelcol-deploylens/config.yaml
# Numeric, so that Kubernetes' runAsNonRoot can verify it (distroless's "nonroot" user).
USER 65532:65532
# OTLP gRPC, OTLP HTTP, deployment webhooks, rollout gate and status page, health check, own metrics.
EXPOSE 4317 4318 8088 8089 13133 8888
ENTRYPOINT ["/otelcol-deploylens"]
CMD ["--config", "/etc/otelcol-deploylens/config.yaml"]
