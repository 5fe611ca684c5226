// Package deploy is where procscope is packaged for running in production:
// systemd units (systemd/), container files (*.Dockerfile), a compose file
// with Prometheus and Grafana (compose.yaml), Kubernetes manifests
// (kubernetes/) and the Prometheus alert rules (prometheus/). With the
// top-level prometheus.yml and dashboards/ they are files other programs
// read, so nothing checks them at compile time.
//
// This package holds no code of its own; its tests are that check. They run
// the real tools over the files (promtool check config/rules/metrics,
// promtool test rules, systemd-analyze verify), cross-check every flag and
// path the files use against the binaries and the repository, and start a
// real Prometheus with the shipped prometheus.yml, scraping a real exporter
// and aggregator, to prove every dashboard query returns data and every
// alert expression evaluates.
package deploy
