package main

import (
	"path/filepath"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/procfleet/procfleet/internal/devetcd"
)

// startEtcd starts a single-node etcd in this process on clientAddr, data
// and log under dir, and waits until it serves.
func startEtcd(clientAddr, dir string) (*embed.Etcd, error) {
	return devetcd.Start("bench", clientAddr, filepath.Join(dir, "etcd"), filepath.Join(dir, "etcd.log"))
}
