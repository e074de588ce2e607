package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// BenchmarkChurn is what a rolling restart of a fleet costs one idle
// member: churnFleet agents are registered, then a tenth of them leave and
// register again, one every churnPace, as a rolling restart does; each op
// is one such restart. It reports the member's recomputes and the time it
// spent in them per op, with the recomputes spaced (the default) and, for
// comparison, taken once per event (every=1ns).
//
//	go test -run '^$' -bench Churn -benchtime 3x ./cluster/
func BenchmarkChurn(b *testing.B) {
	for _, every := range []time.Duration{time.Nanosecond, 0} {
		name := "every=default"
		if every > 0 {
			name = "every=" + every.String()
		}
		b.Run(name, func(b *testing.B) { benchChurn(b, every) })
	}
}

const (
	churnFleet = 1000
	churnPace  = 5 * time.Millisecond
)

func benchChurn(b *testing.B, every time.Duration) {
	e := etcdtest.StartEtcd(b)
	cli := e.Client(b)
	var up strings.Builder
	up.WriteString("ring: {fallbacks: 1}\nupstreams:\n")
	for i := range 20 {
		fmt.Fprintf(&up, "  - {name: vm-%02d, url: \"http://10.0.0.%d:8428/api/v1/import/prometheus\", capacity: 100MiB/s}\n", i, i+1)
	}
	bootstrap(b, cli, []byte(up.String()))
	space, err := keys.New("ct")
	if err != nil {
		b.Fatal(err)
	}
	value, err := json.Marshal(session.Member{Address: "10.1.0.1:7946", Version: "bench", Kind: keys.Agent,
		Labels: map[string]string{"zone": "a"}, StartTime: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	put := func(i int) {
		key, err := space.Member(keys.Agent, fmt.Sprintf("fleet-%05d", i))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Put(ctx, key, string(value)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range churnFleet {
		put(i)
	}
	cfg := testConfig(e.Endpoints, "observer")
	cfg.RecomputeEvery = every
	if every > 0 {
		cfg.RecomputeShare = -1 // once per event: no spacing by time either
	}
	tm := runMember(b, cfg)
	tm.waitUpdate("the observer's first settings", func(u Update) bool { return u.Revision > 0 })
	evals := func() (uint64, time.Duration) {
		tm.m.mu.Lock()
		defer tm.m.mu.Unlock()
		return tm.m.evals, tm.m.evalTime
	}
	b.ResetTimer()
	n0, t0 := evals()
	for range b.N {
		for i := range churnFleet / 10 {
			key, _ := space.Member(keys.Agent, fmt.Sprintf("fleet-%05d", i))
			if _, err := cli.Delete(ctx, key); err != nil {
				b.Fatal(err)
			}
			time.Sleep(churnPace)
			put(i)
			time.Sleep(churnPace)
		}
	}
	b.StopTimer()
	time.Sleep(time.Second) // the last spaced recompute
	n1, t1 := evals()
	b.ReportMetric(float64(n1-n0)/float64(b.N), "recomputes/op")
	b.ReportMetric(float64((t1-t0).Microseconds())/1000/float64(b.N), "recompute-ms/op")
	b.ReportMetric(float64(churnFleet/10*2), "events/op")
}
