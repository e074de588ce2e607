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

// startEtcd starts a single-node etcd in this process on clientAddr, data
// and log under dir, and waits until it serves.
func startEtcd(clientAddr, dir string) (*embed.Etcd, error) {
	data := filepath.Join(dir, "etcd")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create etcd's data dir %s: %w", data, err)
	}
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, fmt.Errorf("cannot create etcd's log: %w", err)
	}
	cu := url.URL{Scheme: "http", Host: clientAddr}
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg := embed.NewConfig()
	cfg.Name = "bench"
	cfg.Dir = data
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = "bench=" + pu.String()
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
