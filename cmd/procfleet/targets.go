package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/targets"
)

// targetsOutput is the JSON of `procfleet targets -o json`.
type targetsOutput struct {
	Targets []targetRow `json:"targets"`
}

type targetRow struct {
	Job             string            `json:"job"`
	Target          string            `json:"target"`
	Labels          map[string]string `json:"labels,omitempty"`
	Owner           string            `json:"owner"`
	Health          string            `json:"health"`
	LastScrape      string            `json:"last_scrape"`
	DurationSeconds float64           `json:"duration_seconds"`
	Samples         int               `json:"samples"`
	// Weight is the target's weight class in ownership (the samples of
	// its last scrape rounded to three binary digits, as its scraper
	// published it), 0 when none is published.
	Weight    uint64 `json:"weight"`
	LastError string `json:"last_error"`
}

func newTargetsCmd() *cobra.Command {
	var ef etcdFlags
	var output, job string
	cmd := &cobra.Command{
		Use:   "targets",
		Short: "List the scrape targets, who scrapes them and how their last scrape went",
		Long: `targets lists every scrape target the members report (each member writes
the state of the targets it scrapes every few seconds), with its job, labels,
owner (the member that scrapes it), health (up, down, unknown before its first
scrape), the time and duration of its last scrape, the samples it returned,
its weight in ownership (the class of its samples its scraper published, "-"
before any) and its last error. A published target of a placement cluster job that no member
reports yet is listed with no owner and health unknown. A target being handed
over from one member to another is listed once for each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("-o %q: want table or json", output)}
			}
			return ef.withStore(cmd, func(ctx context.Context, _ *configstore.Store, cli *clientv3.Client) error {
				rows, err := readTargets(ctx, cli, ef.cluster, job)
				if err != nil {
					return err
				}
				if output == "json" {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(targetsOutput{Targets: rows})
				}
				printTargets(cmd.OutOrStdout(), rows)
				return nil
			})
		},
	}
	ef.register(cmd, localEtcd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().StringVar(&job, "job", "", "only the targets of this job")
	return cmd
}

// readTargets reads the members' reports and the published sets, of job
// only unless it is "".
func readTargets(ctx context.Context, cli *clientv3.Client, clusterName, job string) ([]targetRow, error) {
	space, err := keys.New(clusterName)
	if err != nil {
		return nil, usageError{err}
	}
	reports, err := cluster.ReadTargetReports(ctx, cli, space)
	if err != nil {
		return nil, err
	}
	pubs, err := cluster.ReadPublishedTargets(ctx, cli, space)
	if err != nil {
		return nil, err
	}
	weights, err := cluster.ReadTargetWeights(ctx, cli, space, 0)
	if err != nil {
		return nil, err
	}
	// The published targets by job and address, with their weights, for
	// the reported ones: a reported target is the published one whose
	// public labels it carries.
	type weighed struct {
		labels []targets.Label
		weight uint64
	}
	byAddr := map[string][]weighed{}
	for name, ts := range pubs {
		for _, t := range ts {
			k := name + "\x00" + t.Address
			byAddr[k] = append(byAddr[k], weighed{t.Labels, weights[targets.WeightKey(t.ID(name))]})
		}
	}
	weightOf := func(job, addr string, labels map[string]string) uint64 {
	next:
		for _, c := range byAddr[job+"\x00"+addr] {
			for _, l := range c.labels {
				if !strings.HasPrefix(l.Name, "__") && labels[l.Name] != l.Value {
					continue next
				}
			}
			return c.weight
		}
		return 0
	}
	rows := []targetRow{}
	seen := map[string]bool{}
	for node, r := range reports {
		for _, t := range r.Targets {
			if job != "" && t.Job != job {
				continue
			}
			row := targetRow{Job: t.Job, Target: t.Target, Labels: t.Labels, Owner: node, Health: t.Health,
				DurationSeconds: t.DurationSeconds, Samples: t.Samples, LastError: t.LastError,
				Weight: weightOf(t.Job, t.Target, t.Labels)}
			if t.LastScrape != nil {
				row.LastScrape = t.LastScrape.Format(time.RFC3339Nano)
			}
			rows = append(rows, row)
			seen[t.Job+"\x00"+t.Target] = true
		}
	}
	for name, ts := range pubs {
		if job != "" && name != job {
			continue
		}
		for _, t := range ts {
			if !seen[name+"\x00"+t.Address] {
				rows = append(rows, targetRow{Job: name, Target: t.Address, Health: "unknown",
					Weight: weights[targets.WeightKey(t.ID(name))]})
			}
		}
	}
	slices.SortFunc(rows, func(a, b targetRow) int {
		return strings.Compare(a.Job+"\x00"+a.Target+"\x00"+a.Owner, b.Job+"\x00"+b.Target+"\x00"+b.Owner)
	})
	return rows, nil
}

func printTargets(w io.Writer, rows []targetRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tTARGET\tOWNER\tHEALTH\tLAST SCRAPE\tDURATION\tSAMPLES\tWEIGHT\tLAST ERROR")
	for _, r := range rows {
		owner, last := r.Owner, r.LastScrape
		if owner == "" {
			owner = "-"
		}
		if last == "" {
			last = "-"
		}
		weight := "-"
		if r.Weight > 0 {
			weight = strconv.FormatUint(r.Weight, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3fs\t%d\t%s\t%s\n", r.Job, r.Target, owner, r.Health, last,
			r.DurationSeconds, r.Samples, weight, r.LastError)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", plural(len(rows), "target"))
}
