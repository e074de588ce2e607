// Package devetcd starts a single-node etcd inside the calling process:
// `procfleet dev` and the scraping benchmark run their cluster on it. It
// links the etcd server; builds with -tags nodev leave its users out.
package devetcd

import (
	"fmt"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Start starts a single-node etcd named name, serving clients on
// clientAddr (host:port), with its data in dataDir and its warnings
// appended to logPath, and waits up to 30s until it serves.
func Start(name, clientAddr, dataDir, logPath string) (*embed.Etcd, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create etcd's data dir %s: %w", dataDir, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open etcd's log: %w", err)
	}
	cu := url.URL{Scheme: "http", Host: clientAddr}
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dataDir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = name + "=" + pu.String()
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
		return nil, fmt.Errorf("embedded etcd not ready within 30s; see %s", logPath)
	}
}
