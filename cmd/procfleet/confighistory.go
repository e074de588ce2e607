package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/configstore"
)

func newConfigHistoryCmd() *cobra.Command {
	var ef etcdFlags
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the config's revisions, newest first: when, by whom, what changed",
		Long: `history lists the config's current revision and the earlier ones kept (the
last 100), newest first: when each was written and by whom (the etcd user
the writer authenticated as, else user@host of the command that wrote it;
"-" for a version written by another tool or an older procfleet), how
(set, edit, rollback, bootstrap), and a one-line summary of what it changed
from the revision listed below it. procfleet config diff REV shows a change
in full; procfleet config rollback REV writes an old revision back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				versions, err := st.History(ctx)
				if err != nil {
					return err
				}
				printHistory(cmd.OutOrStdout(), versions)
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	return cmd
}

// printHistory prints versions, newest first, each with what it changed
// from the next (older) one.
func printHistory(w io.Writer, versions []configstore.Version) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tWRITTEN\tBY\tHOW\tCHANGE")
	for i, v := range versions {
		when, by, how := "-", "-", "-"
		if m := v.Meta; m != nil {
			if !m.Time.IsZero() {
				when = m.Time.UTC().Format(time.RFC3339)
			}
			if m.Writer() != "" {
				by = m.Writer()
			}
			if m.Note != "" {
				how = strings.TrimPrefix(m.Note, "config ")
			}
		}
		change := "(the oldest kept)"
		if i+1 < len(versions) {
			change = changeSummary(versions[i+1].Data, v.Data)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", v.Revision, when, by, how, change)
	}
	tw.Flush()
}

func newConfigDiffCmd() *cobra.Command {
	var ef etcdFlags
	cmd := &cobra.Command{
		Use:   "diff REV [REV2]",
		Short: "Show the change from revision REV to the current config, or to REV2, as a unified diff",
		Long: `diff prints a unified diff between two revisions of the config: from REV
to the current one, or from REV to REV2. Revisions are those of procfleet
config history (the current one, the kept ones, and older ones while etcd
has not compacted them). It prints nothing when they are the same.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var revs []int64
			for _, a := range args {
				rev, err := strconv.ParseInt(a, 10, 64)
				if err != nil || rev <= 0 {
					return usageError{fmt.Errorf("revision %q: want a positive number from `procfleet config history`", a)}
				}
				revs = append(revs, rev)
			}
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				from, err := st.Revision(ctx, revs[0])
				if err != nil {
					return storeError(err)
				}
				var to configstore.Version
				if len(revs) == 2 {
					to, err = st.Revision(ctx, revs[1])
				} else {
					to, err = st.Get(ctx)
				}
				if err != nil {
					return storeError(err)
				}
				d := lineDiff(from.Data, to.Data)
				if len(d) == 0 {
					return nil
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "--- config revision %d%s\n+++ config revision %d%s\n", from.Revision, metaNote(from.Meta), to.Revision, metaNote(to.Meta))
				_, err = w.Write(d)
				return err
			})
		},
	}
	ef.register(cmd, localEtcd)
	return cmd
}

// metaNote is "\t(TIME by WHO)" for a diff header, "" when not recorded.
func metaNote(m *configstore.Meta) string {
	if m == nil || m.Time.IsZero() {
		return ""
	}
	by := ""
	if w := m.Writer(); w != "" {
		by = " by " + w
	}
	return "\t" + m.Time.UTC().Format(time.RFC3339) + by
}

// author is who this process writes the config as: the operating-system
// user and host, and the etcd user when etcd authenticates it.
func (ef *etcdFlags) author() configstore.Author {
	a := configstore.Author{EtcdUser: ef.username}
	if u, err := user.Current(); err == nil {
		a.User = u.Username
	} else {
		a.User = os.Getenv("USER")
	}
	a.Host, _ = os.Hostname()
	return a
}
