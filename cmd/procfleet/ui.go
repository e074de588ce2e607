package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/ui"
)

func newUICmd() *cobra.Command {
	var ef etcdFlags
	var listen, logLevel string
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the cluster as a live web page",
		Long: `ui serves one web page that draws the cluster as the ring sees it: the
upstreams (and relays) with their capacity and the budgets given out there,
the agents grouped under the upstream they write to first, each upstream's
health as the members report it, the config revision each member applied
(the rollout), queues and last errors. It follows etcd with watches and
pushes each change to the open pages (server-sent events), within 2 s.
The page's files are in the binary; it loads nothing from elsewhere.
--listen stays on loopback by default: the page shows the cluster's layout
and errors to whoever can reach it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)}
			}
			if err := ef.validate(); err != nil {
				return err
			}
			cfg := ui.DefaultConfig()
			cfg.Cluster, cfg.Listen = ef.cluster, listen
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			cli, err := ef.client()
			if err != nil {
				return err
			}
			defer cli.Close()
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "ui")
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("cannot listen on --listen %s: %w", cfg.Listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "procfleet ui: cluster %q at http://%s/ (Ctrl-C stops it)\n", ef.cluster, ln.Addr())
			return serveUI(cmd.Context(), cfg, cli, ln, log)
		},
	}
	ef.register(cmd, localEtcd)
	cmd.Flags().StringVar(&listen, "listen", ui.DefaultConfig().Listen, "address the page is served on (host:port)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// serveUI serves cfg.Cluster's page on ln until ctx ends.
func serveUI(ctx context.Context, cfg ui.Config, cli *clientv3.Client, ln net.Listener, log *slog.Logger) error {
	s, err := ui.New(cfg, cli, log)
	if err != nil {
		ln.Close()
		return err
	}
	return s.Serve(ctx, ln)
}

// startDevUI serves the dev cluster's page on addr in the background, with
// its own etcd client, and returns its URL and a function that stops it
// and waits for it. With anyPort (--ui-listen not given) a taken port
// gives way to one the system picks, so that a second dev or a running
// procfleet ui does not stop dev; a port asked for must be free.
func startDevUI(ctx context.Context, ef etcdFlags, addr string, anyPort bool, log *slog.Logger) (string, func(), error) {
	cfg := ui.DefaultConfig()
	cfg.Cluster, cfg.Listen = ef.cluster, addr
	if err := cfg.Validate(); err != nil {
		return "", nil, usageError{err}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && anyPort {
		if host, _, serr := net.SplitHostPort(addr); serr == nil {
			ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("cannot listen on --ui-listen %s for the cluster page: %w (pick another port, or --ui-listen=\"\" for none)", addr, err)
	}
	cli, err := ef.client()
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	log = log.With("component", "ui")
	go func() {
		defer close(done)
		if err := serveUI(ctx, cfg, cli, ln, log); err != nil {
			log.Error("the cluster page stopped", "err", err)
		}
	}()
	return "http://" + ln.Addr().String() + "/", func() { cancel(); <-done; cli.Close() }, nil
}
