package relay

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// The relay forwards what it took through import to a remote-write
// upstream, converted from its log: every series with the extra labels of
// its request, and a line without a timestamp stamped with the time the
// relay took it (the request's timestamp argument), not the time of
// forwarding.
func TestRelayForwardsToRemoteWrite(t *testing.T) {
	vm := testenv.StartVM(t)
	rw := "http://" + vm.Addr + "/api/v1/write"
	cfg := testConfig(t, rw)
	cfg.Ship.Protocols = map[string]config.UpstreamProtocol{rw: {Protocol: config.ProtocolRemoteWrite}}
	r := start(t, cfg)
	ts := time.Now().Add(-time.Hour).UnixMilli()
	code, msg := push(t, nil, r.url+"?extra_label=instance%3Dh1&extra_label=job%3Dprocfleet",
		testenv.Gzip(t, fmt.Sprintf("relay_rw_a{x=\"1\"} 1.5 %d\nrelay_rw_a{x=\"2\"} 2.5 %d\n", ts, ts)), "Content-Encoding", "gzip")
	if code != http.StatusNoContent {
		t.Fatalf("gzip push = %d %q; want 204", code, msg)
	}
	before := time.Now().UnixMilli()
	if code, msg = push(t, nil, r.url+"?extra_label=instance%3Dh2", []byte("relay_rw_b 7\n")); code != http.StatusNoContent {
		t.Fatalf("plain push = %d %q; want 204", code, msg)
	}
	after := time.Now().UnixMilli()
	var got map[string]testenv.Series
	waitFor(t, "3 series in VictoriaMetrics", 20*time.Second, func() bool {
		_, _ = vm.TryFlush()
		ss, err := vm.TryExport(`{__name__=~"relay_rw_a|relay_rw_b"}`)
		if err != nil || len(ss) != 3 {
			return false
		}
		got = map[string]testenv.Series{}
		for _, s := range ss {
			got[s.Key()] = s
		}
		return true
	})
	for key, want := range map[string][3]float64{
		testenv.SeriesKey("relay_rw_a", map[string]string{"x": "1", "instance": "h1", "job": "procfleet"}): {1.5, float64(ts), float64(ts)},
		testenv.SeriesKey("relay_rw_a", map[string]string{"x": "2", "instance": "h1", "job": "procfleet"}): {2.5, float64(ts), float64(ts)},
		testenv.SeriesKey("relay_rw_b", map[string]string{"instance": "h2"}):                               {7, float64(before), float64(after)},
	} {
		s, ok := got[key]
		if !ok || len(s.Values) != 1 || s.Values[0] != want[0] || float64(s.Timestamps[0]) < want[1] || float64(s.Timestamps[0]) > want[2] {
			t.Fatalf("series %s = %+v; want %v once between %v and %v", key, s, want[0], want[1], want[2])
		}
	}
	waitFor(t, "the log emptied", 5*time.Second, func() bool { return r.WAL().Len() == 0 })
}
