package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/config"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Create and manage a cluster in etcd"}
	cmd.AddCommand(newBootstrapCmd())
	return cmd
}

func newBootstrapCmd() *cobra.Command {
	var ef etcdFlags
	var file string
	var upstreams []string
	var capacity string
	var force, ifAbsent bool
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create a cluster's keyspace and first config in etcd",
		Long: `bootstrap writes the first cluster config under /procfleet/CLUSTER/config.
The config comes from --config FILE (see deploy/cluster.example.yaml), or is
made from --upstream URL (repeatable) with --capacity each. It refuses to
overwrite an existing cluster unless --force is given; the old config stays
in the history. With --if-absent an existing config is left as it is and
the command succeeds, for jobs that run it on every deploy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if force && ifAbsent {
				return usageError{errors.New("--force and --if-absent contradict each other; give one")}
			}
			data, err := bootstrapDoc(file, upstreams, capacity)
			if err != nil {
				return err
			}
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				rev, err := st.Bootstrap(ctx, data, force)
				if errors.Is(err, configstore.ErrExists) {
					if ifAbsent {
						fmt.Fprintf(cmd.OutOrStdout(), "cluster %q already has a config; left unchanged (--if-absent)\n", ef.cluster)
						return nil
					}
					return fmt.Errorf("cluster %q: %w", ef.cluster, err)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cluster %q bootstrapped: config revision %d at %s\n", ef.cluster, rev, st.Key())
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "cluster config file (YAML)")
	f.StringArrayVar(&upstreams, "upstream", nil, "import URL of an upstream (repeatable), when no --config is given")
	f.StringVar(&capacity, "capacity", "10MiB/s", "capacity of each --upstream")
	f.BoolVar(&force, "force", false, "replace an existing cluster config")
	f.BoolVar(&ifAbsent, "if-absent", false, "succeed without writing when the cluster already has a config")
	return cmd
}

// bootstrapDoc returns the first config document: the file, or one made
// from upstream URLs.
func bootstrapDoc(file string, upstreams []string, capacity string) ([]byte, error) {
	if file != "" {
		if len(upstreams) > 0 {
			return nil, usageError{errors.New("--config and --upstream exclude each other")}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError{fmt.Errorf("cannot read cluster config: %w", err)}
		}
		if _, err := config.ParseCluster(data); err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", file, err)}
		}
		return data, nil
	}
	if len(upstreams) == 0 {
		return nil, usageError{errors.New("want --config FILE or at least one --upstream URL")}
	}
	c := config.DefaultCluster()
	capBytes, err := config.ParseByteSize(trimRate(capacity))
	if err != nil || capBytes <= 0 {
		return nil, usageError{fmt.Errorf("--capacity %q: want a rate such as 10MiB/s", capacity)}
	}
	for i, u := range upstreams {
		c.Upstreams = append(c.Upstreams, config.Upstream{
			Name: fmt.Sprintf("up-%d", i+1), URL: u, Capacity: config.ByteRate(capBytes),
		})
	}
	c.Ring.Fallbacks = config.DefaultFallbacks(len(upstreams))
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return config.MarshalCluster(c)
}

func trimRate(s string) string {
	if len(s) > 2 && s[len(s)-2:] == "/s" {
		return s[:len(s)-2]
	}
	return s
}
