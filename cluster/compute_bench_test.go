package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
)

// BenchmarkCompute: a member's evaluation at 10,000 agents over 100
// upstreams when its inputs are the last ones (the 5 s refresh, a gossip
// change that moves no vote: the last result again), against one that
// runs the ring and the settings (a new config revision each time).
func BenchmarkCompute(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("ring: {fallbacks: 1}\nupstreams:\n")
	for i := range 100 {
		fmt.Fprintf(&doc, "  - {name: vm-%03d, url: \"http://10.0.%d.%d:8428/api/v1/import/prometheus\", capacity: 100MiB/s}\n", i, i/200, i%200+1)
	}
	c, err := config.ParseCluster([]byte(doc.String()))
	if err != nil {
		b.Fatal(err)
	}
	live := members{}
	for i := range 10000 {
		live[memberID{keys.Agent, fmt.Sprintf("a%05d", i)}] = liveMember{}
	}
	m := &Member{cfg: Config{Kind: keys.Agent, Node: "a00000"}, local: config.DefaultAgent(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		name string
		rev  func(i int) int64
	}{
		{"unchanged", func(int) int64 { return 1 }},
		{"changed", func(i int) int64 { return int64(i + 2) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m.computed = nil
			if _, err := m.compute(c, 1, live, nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				up, err := m.compute(c, tc.rev(i), live, nil)
				if err != nil || len(up.Assignment.Upstreams) != 2 {
					b.Fatalf("compute = %+v, %v; want two upstreams", up.Assignment, err)
				}
				i++
			}
		})
	}
}
