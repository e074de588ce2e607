//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const clusterID = "demo"

// project is the compose project of the cluster under test:
// $COMPOSE_PROJECT_NAME, which the Makefile names after the checkout.
// Every container the tests touch is one of its own.
var (
	project = cmp.Or(os.Getenv("COMPOSE_PROJECT_NAME"), "procfleet")
	network = project + "_fleet"
)

// vmNames are the upstreams of deploy/compose/cluster.yaml that are
// VictoriaMetrics, and the compose services that run them.
var vmNames = []string{"vm1", "vm2"}

// published returns the host address (127.0.0.1:PORT) where Docker
// publishes port of service's container. make e2e lets Docker pick the
// ports, and a container that is stopped and started again may get
// another, so it is asked each time.
func published(service string, port int) (string, error) {
	out, err := run(20*time.Second, "docker", "port", container(service), fmt.Sprintf("%d/tcp", port))
	if err != nil {
		return "", err
	}
	for _, addr := range strings.Fields(out) {
		for _, host := range []string{"127.0.0.1:", "0.0.0.0:"} {
			if p, ok := strings.CutPrefix(addr, host); ok {
				return "127.0.0.1:" + p, nil
			}
		}
	}
	return "", fmt.Errorf("%s publishes no IPv4 address for %d/tcp: %q", container(service), port, out)
}

// etcdURL is the client URL of etcd1, the etcd member published on the
// host.
func etcdURL() (string, error) {
	addr, err := published("etcd1", 2379)
	return "http://" + addr, err
}

// vmURL is the base URL of the VictoriaMetrics of the upstream name.
func vmURL(name string) (string, error) {
	addr, err := published(name, 8428)
	return "http://" + addr, err
}

var agents = []string{"agent1", "agent2", "agent3"}

// container is the name docker-compose v1 gives a service's container.
func container(service string) string { return project + "_" + service + "_1" }

// run runs a command with a bound on its time and returns its stdout.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// docker runs a docker command and fails the test if it fails.
func docker(t *testing.T, args ...string) {
	t.Helper()
	if _, err := run(time.Minute, "docker", args...); err != nil {
		t.Fatal(err)
	}
}

// eventually polls f every 500ms until it returns nil or timeout passes,
// and returns how long that took or the last error.
func eventually(timeout time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("after %v: %w", timeout.Round(time.Second), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// procfleetBin is the CLI that buildCLI built, into a test's temp dir:
// each test that runs it builds it again when an earlier test's is gone.
var procfleetBin string

func buildCLI(dir string) error {
	procfleetBin = filepath.Join(dir, "procfleet")
	_, err := run(5*time.Minute, "go", "build", "-o", procfleetBin, "github.com/procfleet/procfleet/cmd/procfleet")
	return err
}

// clusterStatus is the part of `procfleet status -o json` the tests read.
type clusterStatus struct {
	ConfigRevision int64          `json:"config_revision"`
	Agents         []memberStatus `json:"agents"`
	Relays         []memberStatus `json:"relays"`
	Upstreams      []struct {
		Name                   string `json:"name"`
		Agents                 int    `json:"agents"`
		Relays                 int    `json:"relays"`
		BudgetBytesPerSecond   int64  `json:"budget_bytes_per_second"`
		CapacityBytesPerSecond int64  `json:"capacity_bytes_per_second"`
		Healthy                bool   `json:"healthy"`
	} `json:"upstreams"`
}

type memberStatus struct {
	Node                 string   `json:"node"`
	Version              string   `json:"version"`
	ConfigRevision       int64    `json:"config_revision"`
	Upstreams            []string `json:"upstreams"`
	BudgetBytesPerSecond int64    `json:"budget_bytes_per_second"`
}

func getStatus() (clusterStatus, error) {
	etcd, err := etcdURL()
	if err != nil {
		return clusterStatus{}, err
	}
	out, err := run(20*time.Second, procfleetBin, "status", "--etcd", etcd, "--cluster", clusterID, "-o", "json")
	if err != nil {
		return clusterStatus{}, err
	}
	var s clusterStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return clusterStatus{}, fmt.Errorf("cannot parse status: %w: %s", err, out)
	}
	return s, nil
}

func (s clusterStatus) member(node string) (memberStatus, bool) {
	for _, m := range slices.Concat(s.Agents, s.Relays) {
		if m.Node == node {
			return m, true
		}
	}
	return memberStatus{}, false
}

// landing follows node's primary through relays to the VictoriaMetrics
// where its data lands.
func (s clusterStatus) landing(node string) (string, error) {
	for hops := 0; hops < 3; hops++ {
		m, ok := s.member(node)
		if !ok {
			return "", fmt.Errorf("%s not in status", node)
		}
		if len(m.Upstreams) == 0 {
			return "", fmt.Errorf("%s has no upstreams", node)
		}
		p := m.Upstreams[0]
		if slices.Contains(vmNames, p) {
			return p, nil
		}
		node = p
	}
	return "", fmt.Errorf("%s: relay chain too long", node)
}

// complete checks that every agent and relay1 are members at the current
// config revision and that the budgets of each upstream someone writes to
// sum to its capacity.
func (s clusterStatus) complete() error {
	for _, n := range append(slices.Clone(agents), "relay1") {
		m, ok := s.member(n)
		if !ok {
			return fmt.Errorf("%s not in status", n)
		}
		if m.ConfigRevision != s.ConfigRevision {
			return fmt.Errorf("%s at config revision %d, want %d", n, m.ConfigRevision, s.ConfigRevision)
		}
	}
	if len(s.Agents) != len(agents) || len(s.Relays) != 1 {
		return fmt.Errorf("%d agents and %d relays, want %d and 1", len(s.Agents), len(s.Relays), len(agents))
	}
	for _, u := range s.Upstreams {
		if u.Agents+u.Relays > 0 && u.BudgetBytesPerSecond != u.CapacityBytesPerSecond {
			return fmt.Errorf("upstream %s: budgets %d B/s, capacity %d B/s", u.Name, u.BudgetBytesPerSecond, u.CapacityBytesPerSecond)
		}
	}
	return nil
}

// samples returns the raw sample timestamps of the series matching match
// in [start, end], merged over both VictoriaMetrics (an agent's data may be
// split between them after a failover) and sorted.
func samples(match string, start, end time.Time) ([]time.Time, map[string]int, error) {
	var ts []time.Time
	per := map[string]int{}
	for _, name := range vmNames {
		base, err := vmURL(name)
		if err != nil {
			continue // a stopped VictoriaMetrics publishes no port
		}
		q := url.Values{"match[]": {match}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix() + 1)}}
		lines, err := get(base + "/api/v1/export?" + q.Encode())
		if err != nil {
			continue // a stopped VictoriaMetrics holds nothing we can read
		}
		sc := bufio.NewScanner(bytes.NewReader(lines))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var row struct {
				Values     []float64 `json:"values"`
				Timestamps []int64   `json:"timestamps"`
			}
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				return nil, nil, fmt.Errorf("cannot parse export of %s: %w", name, err)
			}
			for _, ms := range row.Timestamps {
				ts = append(ts, time.UnixMilli(ms))
			}
			per[name] += len(row.Timestamps)
		}
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return slices.Compact(ts), per, nil
}

// maxValue returns the sum over query's series of their largest value in
// [start, end], the larger of the two VictoriaMetrics' answers.
func maxValue(query string, start, end time.Time) (float64, error) {
	best, found := 0.0, false
	for _, name := range vmNames {
		base, err := vmURL(name)
		if err != nil {
			continue
		}
		q := url.Values{"query": {fmt.Sprintf("sum(max_over_time(%s[%ds]))", query, int(end.Sub(start).Seconds())+1)}, "time": {fmt.Sprint(end.Unix())}}
		body, err := get(base + "/api/v1/query?" + q.Encode())
		if err != nil {
			continue
		}
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return 0, fmt.Errorf("cannot parse query result: %w", err)
		}
		for _, res := range r.Data.Result {
			var v float64
			if s, ok := res.Value[1].(string); ok {
				if _, err := fmt.Sscan(s, &v); err == nil && (!found || v > best) {
					best, found = v, true
				}
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("no data for %s", query)
	}
	return best, nil
}

func get(u string) ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b.String())
	}
	return b.Bytes(), nil
}

// gaps returns the largest distance between consecutive timestamps and
// between the window's ends and the first and last sample.
func maxGap(ts []time.Time, start, end time.Time) time.Duration {
	var worst time.Duration
	prev := start
	for _, t := range ts {
		if t.Before(start) || t.After(end) {
			continue
		}
		worst = max(worst, t.Sub(prev))
		prev = t
	}
	return max(worst, end.Sub(prev))
}

// arriving waits until every node in nodes has a node_load1 sample newer
// than since, in either VictoriaMetrics.
func arriving(nodes []string, since time.Time, timeout time.Duration) (time.Duration, error) {
	return eventually(timeout, func() error {
		for _, n := range nodes {
			ts, _, err := samples(fmt.Sprintf(`node_load1{instance=%q}`, n), since, time.Now())
			if err != nil {
				return err
			}
			if len(ts) == 0 || !ts[len(ts)-1].After(since) {
				return fmt.Errorf("no node_load1 from %s since %s", n, since.Format(time.TimeOnly))
			}
		}
		return nil
	})
}
