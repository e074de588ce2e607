//go:build nodev

package main

import "errors"

// startEmbeddedEtcd is not in this build: -tags nodev leaves the etcd
// server out of the binary that runs on every host (it costs each agent
// about 6 MB of resident memory; see docs/performance.md).
func startEmbeddedEtcd(string, string) (closer, error) {
	return nil, errors.New("this procfleet was built without procfleet dev's embedded etcd (-tags nodev, as the container image is); " +
		"run `make run` in a checkout, or point procfleet agent at an etcd with --etcd")
}
