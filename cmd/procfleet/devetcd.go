//go:build !nodev

package main

import (
	"path/filepath"

	"github.com/procfleet/procfleet/internal/devetcd"
)

// startEmbeddedEtcd starts a single-node etcd in this process for `procfleet
// dev`, with its data under dir, and waits until it serves. Builds with
// -tags nodev (the image's) leave the etcd server out: see
// devetcd_nodev.go.
func startEmbeddedEtcd(clientAddr, dir string) (closer, error) {
	e, err := devetcd.Start("dev", clientAddr, dir, filepath.Join(filepath.Dir(dir), "etcd.log"))
	if err != nil {
		return nil, err
	}
	return e, nil
}
