// Package promoracle checks procfleet's Prometheus-compatible code
// (prom/relabel, prom/labels, config's Prometheus durations and sizes)
// against Prometheus itself: its tests run the same cases, and random
// ones, through both and compare.
//
// It is a nested, test-only module, so that the main module never depends
// on Prometheus: `go test ./...` at the repository's root skips it, and
// `make test` runs it (cd internal/promoracle && go test ./...). It
// requires the main module through a replace directive to ../.. .
package promoracle
