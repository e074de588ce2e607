package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/config"
)

const etcdTimeout = 30 * time.Second

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change the cluster config in etcd",
		Long: `config reads and changes the cluster config at /procfleet/CLUSTER/config.
The config's etcd revision is its version. Every write is validated first and
is a compare-and-swap on the revision that was read, so that two editors never
overwrite each other silently.`,
	}
	cmd.AddCommand(newConfigGetCmd(), newConfigSetCmd(), newConfigValidateCmd(),
		newConfigHistoryCmd(), newConfigRollbackCmd(), newConfigEditCmd())
	return cmd
}

func newConfigGetCmd() *cobra.Command {
	var ef etcdFlags
	var rev int64
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print the cluster config (its revision goes to stderr)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				var v configstore.Version
				var err error
				if rev > 0 {
					v, err = st.Revision(ctx, rev)
				} else {
					v, err = st.Get(ctx)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "# cluster %q, config revision %d\n", ef.cluster, v.Revision)
				_, err = cmd.OutOrStdout().Write(v.Data)
				return err
			})
		},
	}
	ef.register(cmd, localEtcd)
	cmd.Flags().Int64Var(&rev, "revision", 0, "print this earlier revision instead")
	return cmd
}

func newConfigSetCmd() *cobra.Command {
	var ef etcdFlags
	var file string
	var expect int64
	cmd := &cobra.Command{
		Use:   "set -f FILE",
		Short: "Replace the cluster config with FILE (- for stdin), validated, compare-and-swap",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readCluster(cmd, file)
			if err != nil {
				return err
			}
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				if expect == 0 {
					cur, err := st.Get(ctx)
					if err != nil {
						return err
					}
					expect = cur.Revision
				}
				rev, err := st.Set(ctx, data, expect)
				if errors.Is(err, configstore.ErrConflict) {
					return fmt.Errorf("%w; read it again (procfleet config get) and retry", err)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "config revision %d written (was %d)\n", rev, expect)
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "config file to write; - reads stdin")
	cmd.Flags().Int64Var(&expect, "expect-revision", 0, "write only if the config is at this revision (default: the one read just before)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newConfigValidateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a cluster config file without writing it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := readCluster(cmd, file); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", file)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "config file to check; - reads stdin")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newConfigHistoryCmd() *cobra.Command {
	var ef etcdFlags
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the config's revisions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				versions, err := st.History(ctx)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%-10s %-8s %s\n", "REVISION", "BYTES", "UPSTREAMS")
				for _, v := range versions {
					summary := "(invalid document)"
					if c, err := config.ParseCluster(v.Data); err == nil {
						summary = strings.Join(c.UpstreamNames(), ",")
					}
					fmt.Fprintf(w, "%-10d %-8d %s\n", v.Revision, len(v.Data), summary)
				}
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	return cmd
}

func newConfigRollbackCmd() *cobra.Command {
	var ef etcdFlags
	cmd := &cobra.Command{
		Use:   "rollback REV",
		Short: "Write revision REV of the config back as the newest revision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || rev <= 0 {
				return usageError{fmt.Errorf("revision %q: want a positive number from `procfleet config history`", args[0])}
			}
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				cur, err := st.Get(ctx)
				if err != nil {
					return err
				}
				newRev, err := st.Rollback(ctx, rev, cur.Revision)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "config revision %d written with the content of revision %d (was %d)\n", newRev, rev, cur.Revision)
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	return cmd
}

// readCluster reads a cluster config from file (stdin for "-") and
// validates it; the error names the file.
func readCluster(cmd *cobra.Command, file string) ([]byte, error) {
	data, err := readInput(cmd, file)
	if err != nil {
		return nil, err
	}
	if _, err := config.ParseCluster(data); err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", file, err)}
	}
	return data, nil
}

// readInput reads file, or stdin for "-".
func readInput(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError{fmt.Errorf("cannot read config: %w", err)}
	}
	return data, nil
}
