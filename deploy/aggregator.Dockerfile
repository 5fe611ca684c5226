# syntax=docker/dockerfile:1
# The procscope aggregator. It uses SQLite through cgo, so it is linked
# against glibc and runs on a slim Debian 12 (bookworm), the release the builder is based on.
# Build from the repository root:
#   docker build -f deploy/aggregator.Dockerfile -t ghcr.io/procscope/procscope-aggregator .

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# The aggregator's tree, the web UI it embeds and the command-line
# conventions it shares with the exporter.
COPY aggregator/ aggregator/
COPY web/ web/
COPY internal/cli/ internal/cli/
# The build labels (version, revision, branch, date) come from the
# Makefile's LDFLAGS, their one definition: `make docker` passes them.
# Without it, the binary fills them itself (cli.FillVersion: "devel",
# "unknown"): never a made-up branch or version.
ARG LDFLAGS="-s -w"
RUN CGO_ENABLED=1 go build -trimpath -ldflags "${LDFLAGS}" -o /out/procscope-aggregator ./aggregator

FROM debian:12.12-slim
# libdeflate0: ingest's fast gunzip, loaded at run time (without it ingest
# falls back to Go's streaming gunzip at ~2.5x the CPU).
RUN apt-get update && apt-get install -y --no-install-recommends libdeflate0 \
    && rm -rf /var/lib/apt/lists/*
# The data directory belongs to the unprivileged user the server runs as.
RUN install -d -o 65532 -g 65532 -m 0700 /var/lib/procscope
COPY --from=build /out/procscope-aggregator /usr/local/bin/procscope-aggregator
USER 65532:65532
EXPOSE 8000
VOLUME /var/lib/procscope
ENTRYPOINT ["/usr/local/bin/procscope-aggregator"]
CMD ["--web.listen-address=:8000", "--storage.path=/var/lib/procscope"]
