package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/view"
	"github.com/procfleet/procfleet/config"
)

// clusterStatus is the JSON of `procfleet status -o json`.
type clusterStatus struct {
	Cluster        string           `json:"cluster"`
	ConfigRevision int64            `json:"config_revision"`
	Agents         []agentStatus    `json:"agents"`
	Relays         []agentStatus    `json:"relays"`
	Upstreams      []upstreamStatus `json:"upstreams"`
}

type agentStatus struct {
	Node                 string   `json:"node"`
	Address              string   `json:"address"` // the gossip's
	HTTP                 string   `json:"http"`    // the HTTP server's (/metrics); "" when none is known
	Version              string   `json:"version"`
	ConfigRevision       int64    `json:"config_revision"`
	Upstreams            []string `json:"upstreams"`
	BudgetBytesPerSecond int64    `json:"budget_bytes_per_second"`
	QueueBatches         int      `json:"queue_batches"` // for a relay: bodies in its log
	LastError            string   `json:"last_error"`
	Gossip               string   `json:"gossip,omitempty"`      // why the member's gossip does not run
	SavedState           string   `json:"saved_state,omitempty"` // set while it runs on its saved state
	Targets              *int     `json:"targets,omitempty"`     // scrape targets an agent scrapes; none for a relay
	ScrapeErrors         []string `json:"scrape_errors,omitempty"`
}

type upstreamStatus struct {
	Name                   string `json:"name"`
	URL                    string `json:"url"`
	CapacityBytesPerSecond int64  `json:"capacity_bytes_per_second"`
	Agents                 int    `json:"agents"`
	Relays                 int    `json:"relays"`
	BudgetBytesPerSecond   int64  `json:"budget_bytes_per_second"`
	Healthy                bool   `json:"healthy"`
}

func newStatusCmd() *cobra.Command {
	var ef etcdFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster as etcd and its members report it",
		Long: `status lists the cluster's agents and relays with the config revision they
applied, their upstreams (primary first) and budgets (and queue: batches in
memory and spool for an agent, bodies in the log for a relay), and the
upstreams with their capacity, how many agents and relays write there first,
the budgets given out there,
and whether the agents that sent there lately see it healthy (it is
unhealthy when most of them say so; healthy when none has an opinion).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("-o %q: want table or json", output)}
			}
			return ef.withStore(cmd, func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error {
				cur, err := st.Get(ctx)
				if err != nil {
					return err
				}
				c, err := config.ParseCluster(cur.Data)
				if err != nil {
					return fmt.Errorf("config revision %d is invalid: %w", cur.Revision, err)
				}
				s, err := readStatus(cmd, cli, ef.cluster, cur, c)
				if err != nil {
					return err
				}
				if output == "json" {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(s)
				}
				printStatus(cmd.OutOrStdout(), s)
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func readStatus(cmd *cobra.Command, cli *clientv3.Client, clusterName string, cur configstore.Version, c config.Cluster) (clusterStatus, error) {
	space, err := keys.New(clusterName)
	if err != nil {
		return clusterStatus{}, err
	}
	ctx, cancel := withTimeout(cmd.Context(), etcdTimeout)
	defer cancel()
	v, err := view.Read(ctx, cli, space, cur.Revision, c)
	if err != nil {
		return clusterStatus{}, err
	}
	out := clusterStatus{Cluster: clusterName, ConfigRevision: cur.Revision, Agents: membersStatus(v.Agents), Relays: membersStatus(v.Relays)}
	for _, u := range v.Upstreams {
		out.Upstreams = append(out.Upstreams, upstreamStatus{
			Name: u.Name, URL: u.URL, CapacityBytesPerSecond: u.CapacityBytesPerSecond, Agents: u.Agents, Relays: u.Relays,
			BudgetBytesPerSecond: u.BudgetBytesPerSecond, Healthy: u.Healthy,
		})
	}
	return out, nil
}

// membersStatus is the part of the members' view that status shows.
func membersStatus(ms []view.Member) []agentStatus {
	out := make([]agentStatus, 0, len(ms))
	for _, m := range ms {
		out = append(out, agentStatus{
			Node: m.Node, Address: m.Address, HTTP: m.HTTP, Version: m.Version, ConfigRevision: m.ConfigRevision,
			Upstreams: m.Upstreams, BudgetBytesPerSecond: m.BudgetBytesPerSecond,
			QueueBatches: m.QueueBatches, LastError: m.LastError, Gossip: m.Gossip, SavedState: m.SavedState,
			Targets: m.Targets, ScrapeErrors: m.ScrapeErrors,
		})
	}
	return out
}

func printStatus(w io.Writer, s clusterStatus) {
	fmt.Fprintf(w, "cluster %s, config revision %d, %s, %s\n\n", s.Cluster, s.ConfigRevision, plural(len(s.Agents), "agent"), plural(len(s.Relays), "relay"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tHEALTHY\tAGENTS\tRELAYS\tBUDGETS\tCAPACITY\tURL")
	for _, u := range s.Upstreams {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%s/s\t%s/s\t%s\n", u.Name, u.Healthy, u.Agents, u.Relays,
			config.FormatBytes(u.BudgetBytesPerSecond), config.FormatBytes(u.CapacityBytesPerSecond), u.URL)
	}
	tw.Flush()
	printMembers(w, "AGENT", s.Agents)
	if len(s.Relays) > 0 {
		printMembers(w, "RELAY", s.Relays)
	}
}

func printMembers(w io.Writer, kind string, ms []agentStatus) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, kind+"\tREVISION\tUPSTREAMS\tBUDGET\tQUEUE\tTARGETS\tLAST ERROR")
	for _, a := range ms {
		notes := a.LastError
		for _, n := range []string{a.SavedState, gossipNote(a.Gossip), scrapeNote(a.ScrapeErrors)} {
			if n != "" && notes != "" {
				notes += "; "
			}
			notes += n
		}
		targets := "-"
		if a.Targets != nil {
			targets = strconv.Itoa(*a.Targets)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s/s\t%d\t%s\t%s\n", a.Node, a.ConfigRevision, strings.Join(a.Upstreams, ","),
			config.FormatBytes(a.BudgetBytesPerSecond), a.QueueBatches, targets, notes)
	}
	tw.Flush()
}

// plural is "1 agent", "2 agents", "0 agents".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// gossipNote is what the table says of a member whose gossip does not run.
func gossipNote(why string) string {
	if why == "" {
		return ""
	}
	return "gossip " + why
}

// scrapeNote is what the table says of a member's scrape errors: the
// first, and how many more.
func scrapeNote(errs []string) string {
	switch len(errs) {
	case 0:
		return ""
	case 1:
		return "scrape: " + errs[0]
	}
	return fmt.Sprintf("scrape: %s (and %d more errors)", errs[0], len(errs)-1)
}
