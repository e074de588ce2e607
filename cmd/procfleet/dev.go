package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/agent"
	"github.com/procfleet/procfleet/cluster/configstore"
)

func newDevCmd() *cobra.Command {
	var af agentFlags
	var mf memberFlags
	var vmBin, vmAddr, etcdAddr, dataDir, clusterName, uiAddr string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system on this host: etcd, VictoriaMetrics, a cluster and an agent",
		Long: `dev starts an embedded single-node etcd, the pinned VictoriaMetrics
single-node server on loopback, bootstraps a cluster whose one upstream is
that VictoriaMetrics (kept if it exists), and runs an agent for this host in
that cluster. It prints where to look and stops everything cleanly on Ctrl-C.
Try procfleet status and procfleet config edit against it meanwhile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := af.load(cmd)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("spool-dir") && cfg.Spool.Dir == "" {
				cfg.Spool.Dir = filepath.Join(dataDir, "spool")
			}
			ctx := cmd.Context()
			e, err := startEmbeddedEtcd(etcdAddr, filepath.Join(dataDir, "etcd"))
			if err != nil {
				return err
			}
			defer e.Close()
			vm, err := startVM(ctx, vmBin, vmAddr, dataDir)
			if err != nil {
				return err
			}
			defer vm.stop()
			ef := etcdFlags{endpoints: "http://" + etcdAddr, cluster: clusterName, dialTimeout: 5 * time.Second}
			doc, err := bootstrapDoc("", []string{"http://" + vmAddr + "/api/v1/import/prometheus"}, "100MiB/s")
			if err != nil {
				return err
			}
			st, cli, err := ef.store()
			if err != nil {
				return err
			}
			_, err = st.Bootstrap(ctx, doc, false)
			cli.Close()
			if err != nil && !errors.Is(err, configstore.ErrExists) {
				return err
			}
			logger := newLogger(cfg.Log)
			uiURL, uiPage := "off (--ui-listen)", ""
			if uiAddr != "" {
				url, stopUI, err := startDevUI(ctx, ef, uiAddr, !cmd.Flags().Changed("ui-listen"), logger)
				if err != nil {
					return err
				}
				defer stopUI()
				uiURL, uiPage = url, url
			}
			fmt.Printf(`procfleet dev is starting.
  cluster page:         %[7]s
  etcd:                 http://%[1]s  (cluster %[4]q: %[6]s status --etcd http://%[1]s --cluster %[4]s)
  VictoriaMetrics UI:   http://%[2]s/vmui  (try: node_load1, rate(node_cpu_seconds_total[1m]), proc_pid_info)
  agent self-metrics:   http://%[3]s/metrics  (profiles: add --pprof-listen 127.0.0.1:6060)
  data and logs:        %[5]s
Press Ctrl-C to stop.
`, etcdAddr, vmAddr, cfg.Listen, clusterName, dataDir, selfCommand(), uiURL)
			return runClustered(ctx, cfg, ef, mf, logger, agent.WithClusterPage(uiPage))
		},
	}
	af.register(cmd)
	mf.register(cmd)
	f := cmd.Flags()
	// One host: the gossip need not be reachable from others, nor take
	// the port a clustered agent on this host would.
	_ = f.Set("gossip-listen", devGossipListen)
	f.Lookup("gossip-listen").DefValue = devGossipListen
	f.Lookup("gossip-listen").Changed = false
	// The cluster gives dev's agent its upstream: the dev VictoriaMetrics.
	_ = f.MarkHidden("upstream")
	_ = f.MarkHidden("remote-write")
	f.StringVar(&vmBin, "victoria-metrics", "bin/victoria-metrics", "VictoriaMetrics single-node binary (make run builds the pinned one)")
	f.StringVar(&vmAddr, "vm-listen", "127.0.0.1:8428", "address VictoriaMetrics listens on")
	f.StringVar(&etcdAddr, "etcd-listen", "127.0.0.1:2379", "client address of the embedded etcd")
	f.StringVar(&clusterName, "cluster", "dev", "cluster name")
	f.StringVar(&dataDir, "data-dir", "tmp/dev", "where dev keeps etcd and VictoriaMetrics data and logs")
	f.StringVar(&uiAddr, "ui-listen", "127.0.0.1:9480", "address of the cluster page (procfleet ui); empty for none")
	return cmd
}

// devGossipListen is dev's --gossip-listen default.
const devGossipListen = "127.0.0.1:0"

// selfCommand is how to run this binary again from the current directory,
// for the commands dev suggests: "procfleet" when that is what the PATH
// finds, else its path, relative when under the current directory (as
// bin/procfleet in a checkout).
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "procfleet"
	}
	if onPath, err := exec.LookPath("procfleet"); err == nil {
		if a, err := filepath.EvalSymlinks(onPath); err == nil {
			if b, err := filepath.EvalSymlinks(exe); err == nil && a == b {
				return "procfleet"
			}
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return exe
}

type vmProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startVM starts VictoriaMetrics and waits until it answers /health.
func startVM(ctx context.Context, bin, addr, dataDir string) (*vmProcess, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("victoria-metrics binary %s: %w (make run builds it into bin/)", bin, err)
	}
	storage := filepath.Join(dataDir, "victoria-metrics")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	logf, err := os.Create(filepath.Join(dataDir, "victoria-metrics.log"))
	if err != nil {
		return nil, fmt.Errorf("cannot create VictoriaMetrics log: %w", err)
	}
	cmd := exec.Command(bin, "-httpListenAddr="+addr, "-storageDataPath="+storage,
		"-retentionPeriod=7d", "-search.latencyOffset=0s")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start %s: %w", bin, err)
	}
	vm := &vmProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(vm.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return vm, nil
			}
		}
		select {
		case <-vm.done:
			return nil, fmt.Errorf("VictoriaMetrics exited at start; see %s", logf.Name())
		case <-ctx.Done():
			vm.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			vm.stop()
			return nil, errors.New("VictoriaMetrics did not answer /health within 30s")
		}
	}
}

// stop asks VictoriaMetrics to stop and kills it after 10 s.
func (vm *vmProcess) stop() {
	_ = vm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-vm.done:
	case <-time.After(10 * time.Second):
		_ = vm.cmd.Process.Kill()
		<-vm.done
	}
}

// closer is what procfleet dev keeps of its embedded etcd: a way to stop it.
type closer interface{ Close() }
