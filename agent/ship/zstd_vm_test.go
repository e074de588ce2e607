package ship

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// zstdBatch returns s as a zstd batch, one frame.
func zstdBatch(t testing.TB, s string) *Batch {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	b := batch(t, s)
	b.Body, b.Zstd = zw.EncodeAll([]byte(s), nil), true
	return b
}

// Zstd batches (compress.encoding zstd) reach the pinned VictoriaMetrics
// through its import API (Content-Encoding zstd) and its remote-write API
// (converted), from memory and from the spool, where consecutive records
// are sent as one request of concatenated frames; every sample is
// queryable.
func TestRealVictoriaMetricsZstd(t *testing.T) {
	vm := testenv.StartVM(t)
	rwURL := "http://" + vm.Addr + "/api/v1/write"
	for _, c := range []struct {
		name, url string
		protos    map[string]config.UpstreamProtocol
	}{
		{"import", vm.ImportURL, nil},
		{"rw", rwURL, map[string]config.UpstreamProtocol{rwURL: {Protocol: config.ProtocolRemoteWrite}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := time.Now().Add(-time.Minute).UnixMilli()
			text := func(i int) string {
				return fmt.Sprintf("procfleet_zstd_test{via=%q,i=\"%d\"} %d %d\n", c.name, i, 100+i, ts)
			}
			// Three records in the spool before the start: replayed as one
			// request once the memory queue is empty.
			sp := openSpool(t, t.TempDir(), spoolConfig())
			defer sp.Close()
			for i := range 3 {
				if err := sp.Append(appendRecord(nil, zstdBatch(t, text(i))), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			set := metrics.NewSet()
			cfg := testConfig(c.url)
			cfg.Protocols = c.protos
			s := newShipper(t, cfg, Deps{Metrics: set, Spool: sp, SpoolBatchBytes: 1 << 20,
				Query: url.Values{"extra_label": {"instance=zstd", "job=procfleet"}}})
			stop := run(t, s)
			s.Enqueue(zstdBatch(t, text(3)+text(4)))
			waitFor(t, "every sample in VictoriaMetrics", 15*time.Second, func() bool {
				vm.Flush(t)
				got, err := vm.TryExport(`procfleet_zstd_test{via="` + c.name + `"}`)
				return err == nil && len(got) == 5
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			for _, got := range vm.Export(t, `procfleet_zstd_test{via="`+c.name+`"}`) {
				var i int
				if _, err := fmt.Sscan(got.Metric["i"], &i); err != nil || len(got.Values) != 1 ||
					got.Values[0] != float64(100+i) || got.Timestamps[0] != ts || got.Metric["instance"] != "zstd" {
					t.Fatalf("exported %+v", got)
				}
			}
			if n := metricValue(t, set, "procfleet_ship_replayed_batches_total"); n != 3 {
				t.Fatalf("replayed %v batches; want the 3 spooled", n)
			}
			if n := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`); n != 0 {
				t.Fatalf("%v batches refused", n)
			}
		})
	}
}
