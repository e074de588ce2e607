// Package prom is the root of procfleet's Prometheus-compatible data-model
// code: label sets (prom/labels), relabeling (prom/relabel) and the text
// exposition format (prom/promtext: the relay's import check and the
// scraper's parser), shared by the agent's scraper, the relay and the
// cluster's target discovery. The
// packages under it follow Prometheus' semantics exactly, and a nested
// test-only module (internal/promoracle) checks them against Prometheus
// itself, so that the main module does not depend on Prometheus.
package prom
