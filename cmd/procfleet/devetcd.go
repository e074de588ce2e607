//go:build !nodev

package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// startEmbeddedEtcd starts a single-node etcd in this process for `procfleet
// dev`, with its data under dir, and waits until it serves. Builds with
// -tags nodev (the image's) leave the etcd server out: see
// devetcd_nodev.go.
func startEmbeddedEtcd(clientAddr, dir string) (closer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create etcd data dir: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open etcd log: %w", err)
	}
	cu := url.URL{Scheme: "http", Host: clientAddr}
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg := embed.NewConfig()
	cfg.Name = "dev"
	cfg.Dir = dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = "dev=" + pu.String()
	cfg.LogLevel = "warn"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(zapcore.NewCore(
		zapcore.NewConsoleEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logf), zap.WarnLevel)))
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start embedded etcd on %s: %w", clientAddr, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(30 * time.Second):
		e.Close()
		logf.Close()
		return nil, fmt.Errorf("embedded etcd not ready within 30s; see %s", logf.Name())
	}
}
