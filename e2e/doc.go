// Package e2e holds end-to-end tests that run the demo cluster of
// deploy/compose (three etcd, two VictoriaMetrics, a relay, three agents)
// in Docker and break parts of it: a VictoriaMetrics, an agent's network,
// etcd members, agent restarts. The tests carry the build tag e2e, so that
// `go test ./...` leaves them out; `make e2e` starts the cluster, runs them
// and stops it again.
package e2e
