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
		newConfigHistoryCmd(), newConfigDiffCmd(), newConfigRollbackCmd(), newConfigEditCmd())
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
					return storeError(err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "# cluster %q, config revision %d%s\n", ef.cluster, v.Revision, strings.ReplaceAll(metaNote(v.Meta), "\t", ", written "))
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
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "set -f FILE",
		Short: "Replace the cluster config with FILE (- for stdin), validated, compare-and-swap",
		Long: `set validates FILE and writes it as the cluster config, as a compare-and-swap
on the revision read just before (or --expect-revision). With --wait it then
follows the rollout: it prints how many live members applied the new revision
as that changes, and exits 0 once every one has, or 1 naming the members that
refused it (with their error) or had not applied it within the timeout.`,
		Args: cobra.NoArgs,
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
				rev, err := st.Set(ctx, data, expect, configstore.WithNote("config set"))
				if errors.Is(err, configstore.ErrConflict) {
					return fmt.Errorf("%w; read it again (procfleet config get) and retry", err)
				}
				if err != nil {
					return storeError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "config revision %d written (was %d)\n", rev, expect)
				return followRollout(cmd, cli, ef, rev, wait)
			})
		},
	}
	ef.register(cmd, localEtcd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "config file to write; - reads stdin")
	cmd.Flags().Int64Var(&expect, "expect-revision", 0, "write only if the config is at this revision (default: the one read just before)")
	addWaitFlag(cmd, &wait)
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// followRollout waits for the rollout of rev when --wait was given. It
// runs on the command's context, not on the bound of one etcd request.
func followRollout(cmd *cobra.Command, cli *clientv3.Client, ef etcdFlags, rev int64, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	return waitRollout(cmd.Context(), cmd.OutOrStdout(), cli, ef.cluster, rev, wait)
}

func newConfigValidateCmd() *cobra.Command {
	var ef etcdFlags
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a cluster config file without writing it",
		Long: `validate checks FILE as config set would, without etcd. Given --etcd or
--cluster on the command line, it also reads that cluster's current config and
says what FILE would change (the environment variables alone do not make it
talk to etcd, so that scripts can validate anywhere).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readCluster(cmd, file)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", file)
			if !cmd.Flags().Changed("etcd") && !cmd.Flags().Changed("cluster") {
				return nil
			}
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				cur, err := st.Get(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "against cluster %q at config revision %d: %s\n", ef.cluster, cur.Revision, changeSummary(cur.Data, data))
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "config file to check; - reads stdin")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newConfigRollbackCmd() *cobra.Command {
	var ef etcdFlags
	var wait time.Duration
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
					return storeError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "config revision %d written with the content of revision %d (was %d)\n", newRev, rev, cur.Revision)
				return followRollout(cmd, cli, ef, newRev, wait)
			})
		},
	}
	ef.register(cmd, localEtcd)
	addWaitFlag(cmd, &wait)
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
