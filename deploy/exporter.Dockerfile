# syntax=docker/dockerfile:1
# The procscope exporter on an empty base: one static binary plus the CA
# bundle for pushing over HTTPS, nothing else to patch. Build from the
# repository root:
#   docker build -f deploy/exporter.Dockerfile -t ghcr.io/procscope/procscope-exporter .
# Run it with the host's PID namespace and network (see deploy/compose.yaml
# and deploy/kubernetes/exporter-daemonset.yaml): a container sees only its
# own processes otherwise.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so the download layer is cached across source changes.
COPY go.mod go.sum ./
RUN go mod download
# Only what the exporter imports: its own tree, the wire types and the
# command-line conventions it shares with the aggregator.
COPY aggregator/snapshot/ aggregator/snapshot/
COPY exporter/ exporter/
COPY internal/cli/ internal/cli/
# The build labels (version, revision, branch, date) come from the
# Makefile's LDFLAGS, their one definition: `make docker` passes them.
# Without it, the binary fills them itself (cli.FillVersion: "devel",
# "unknown"): never a made-up branch or version.
ARG LDFLAGS="-s -w"
RUN CGO_ENABLED=0 go build -trimpath -ldflags "${LDFLAGS}" -o /out/procscope-exporter ./exporter

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/procscope-exporter /usr/local/bin/procscope-exporter
# Root inside the container, but compose and Kubernetes drop every
# capability except CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (what reading
# other users' /proc entries needs) and mount the root file system read-only.
USER 0:0
EXPOSE 9717
VOLUME /var/lib/procscope-exporter
ENTRYPOINT ["/usr/local/bin/procscope-exporter"]
CMD ["--web.listen-address=:9717", "--state.dir=/var/lib/procscope-exporter"]
