package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/targets"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// TestTargetsWeight: `procfleet targets` shows each target's weight
// class as the members' weight lists give it, for reported targets (two
// here share an address and differ by a label) and for published ones
// nobody reports; "-" for none.
func TestTargetsWeight(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, etcd.Endpoints)
	ctx := context.Background()
	space, _ := keys.New("w")
	set := []targets.Target{
		{Address: "10.0.0.1:9100", Labels: []targets.Label{{Name: "__scheme__", Value: "http"}, {Name: "name", Value: "a"}}},
		{Address: "10.0.0.1:9100", Labels: []targets.Label{{Name: "__scheme__", Value: "http"}, {Name: "name", Value: "b"}}},
		{Address: "10.0.0.2:9100", Labels: []targets.Label{{Name: "name", Value: "c"}}},
	}
	pub, err := targets.Encode(space, "fleet", set, targets.DefaultCodecConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range append(pub.Chunks, targets.KeyValue{Key: pub.ManifestKey, Value: pub.ManifestValue}) {
		if _, err := cli.Put(ctx, kv.Key, string(kv.Value)); err != nil {
			t.Fatal(err)
		}
	}
	report, _ := json.Marshal(cluster.TargetReport{Node: "n1", Targets: []cluster.TargetStatus{
		{Job: "fleet", Target: "10.0.0.1:9100", Labels: map[string]string{"name": "a", "job": "fleet", "instance": "10.0.0.1:9100"}, Health: "up", Samples: 1000},
		{Job: "fleet", Target: "10.0.0.1:9100", Labels: map[string]string{"name": "b", "job": "fleet", "instance": "10.0.0.1:9100"}, Health: "up", Samples: 30},
	}})
	weights, _ := targets.EncodeWeights([]targets.Weight{
		{Key: targets.WeightKey(set[0].ID("fleet")), Class: 1024},
		{Key: targets.WeightKey(set[1].ID("fleet")), Class: 32},
		{Key: targets.WeightKey(set[2].ID("fleet")), Class: 6},
	})
	for k, v := range map[string]string{space.TargetReports() + "n1": string(report), space.TargetWeights() + "n1": string(weights)} {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	out, stderr, code := run(t, "targets", ep, "--cluster=w", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got targetsOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"a": 1024, "b": 32, "": 6}
	if len(got.Targets) != 3 {
		t.Fatalf("%d targets: %s", len(got.Targets), out)
	}
	for _, r := range got.Targets {
		if r.Weight != want[r.Labels["name"]] {
			t.Errorf("target %s %v: weight %d, want %d", r.Target, r.Labels, r.Weight, want[r.Labels["name"]])
		}
	}
	// With no weight list, the table says "-".
	if _, err := cli.Delete(ctx, space.TargetWeights()+"n1"); err != nil {
		t.Fatal(err)
	}
	table, stderr, code := run(t, "targets", ep, "--cluster=w")
	lines := strings.Split(table, "\n")
	if code != 0 || len(lines) < 2 || strings.Fields(lines[0])[8] != "WEIGHT" || strings.Fields(lines[1])[7] != "-" {
		t.Errorf("table (exit %d, %s):\n%s", code, stderr, table)
	}
}
