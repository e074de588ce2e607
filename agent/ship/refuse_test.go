package ship

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/internal/testenv"
)

// refuser is an upstream fault that refuses, with code, every request
// whose decompressed body holds marker, the way an upstream refuses a body
// it cannot take, and lets the upstream take the others. It counts the
// requests it refused; fail, when set, answers 500 to the n-th request.
type refuser struct {
	marker string
	code   int
	fail   int

	mu      sync.Mutex
	refused int
}

func (f *refuser) serve(n int, w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	if n == f.fail {
		http.Error(w, "down for a moment", http.StatusInternalServerError)
		return true
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return false // the upstream answers it
	}
	text, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(text), f.marker) {
		return false
	}
	f.mu.Lock()
	f.refused++
	f.mu.Unlock()
	http.Error(w, "cannot parse line "+f.marker, f.code)
	return true
}

func (f *refuser) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// A spooled record that the upstream refuses inside a merged replay
// request is dropped and counted alone; every other record of the request
// is delivered once and acknowledged, and the refused one is not sent
// again.
func TestSpoolReplayRefusedRecord(t *testing.T) {
	const n = 20
	f := func(name string, code, merge, failNth int, poisoned ...int) {
		t.Run(name, func(t *testing.T) {
			fault := &refuser{marker: "poison", code: code, fail: failNth}
			up := newUpstream(t, fault.serve)
			set := metrics.NewSet()
			sp := openSpool(t, t.TempDir(), spoolConfig())
			defer sp.Close()
			var good []int
			for i := range n {
				body := line(i)
				if slices.Contains(poisoned, i) {
					body = "poison " + body
				} else {
					good = append(good, i)
				}
				if err := sp.Append(appendRecord(nil, batch(t, body)), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			s := newShipper(t, testConfig(up.URL()), Deps{Metrics: set, Spool: sp, SpoolBatchBytes: merge})
			run(t, s)
			waitFor(t, "the spool replayed", 10*time.Second, func() bool { return sp.Len() == 0 })

			got := ids(up.received())
			slices.Sort(got)
			if !slices.Equal(got, good) {
				t.Fatalf("lines delivered = %v; want each of %v once", got, good)
			}
			for name, want := range map[string]float64{
				`procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`: float64(len(poisoned)),
				"procfleet_ship_replayed_batches_total":                       float64(len(good)),
			} {
				if got := metricValue(t, set, name); got != want {
					t.Errorf("%s = %v; want %v", name, got, want)
				}
			}
			splits := metricValue(t, set, "procfleet_ship_replay_splits_total")
			if merge > 0 && splits < 1 {
				t.Errorf("procfleet_ship_replay_splits_total = %v; want the refused merged request counted", splits)
			}
			posts, _ := up.counts()
			switch {
			case merge == 0 && (posts != n || splits != 0):
				t.Errorf("SpoolBatchBytes 0: %d requests, %v split, for %d records; want one request per record", posts, splits, n)
			case merge > 0 && failNth == 0:
				// Halving finds each refused record in about 2*log2(n)
				// requests; one by one would take n+1.
				if most := 1 + 2*len(poisoned)*bits.Len(uint(n-1)); posts > most {
					t.Errorf("replay took %d requests for %d records, %d refused; want at most %d", posts, n, len(poisoned), most)
				}
			}

			// The refused records are acknowledged: a fresh batch sent
			// after them arrives, and none of them is sent again.
			before := fault.count()
			s.Enqueue(batch(t, line(100)))
			waitFor(t, "a fresh batch after the replay", 10*time.Second, func() bool {
				return slices.Contains(ids(up.received()), 100)
			})
			if after := fault.count(); after != before {
				t.Fatalf("refused requests went from %d to %d after the spool was empty; want the refused records dropped", before, after)
			}
			if sp.Len() != 0 {
				t.Fatalf("spool holds %d records; want none", sp.Len())
			}
		})
	}
	f("merged 400 one refused", http.StatusBadRequest, 1<<20, 0, 7)
	f("merged 413 first refused", http.StatusRequestEntityTooLarge, 1<<20, 0, 0)
	f("merged 415 last refused", http.StatusUnsupportedMediaType, 1<<20, 0, n-1)
	f("merged 422 three refused", http.StatusUnprocessableEntity, 1<<20, 0, 3, 4, 15)
	f("merged all refused", http.StatusBadRequest, 1<<20, 0, span(0, n)...)
	f("merged, a 500 while splitting", http.StatusBadRequest, 1<<20, 3, 7)
	f("one by one", http.StatusBadRequest, 0, 0, 7)
}

// End to end with the pinned VictoriaMetrics: a spooled record whose body
// it cannot read (not gzip) sits among good ones in one merged request,
// which it refuses with 400. Every sample of the good records is stored;
// only the bad record is counted as refused.
func TestSpoolReplayRefusedRecordVM(t *testing.T) {
	vm := testenv.StartVM(t)
	set := metrics.NewSet()
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	const n, perRecord, bad = 30, 10, 17
	ts := time.Now().Add(-time.Hour).UnixMilli()
	want := map[string]bool{}
	for i := range n {
		b := &Batch{Body: []byte("this is not gzip"), Created: time.Now()}
		if i != bad {
			var text strings.Builder
			for j := range perRecord {
				k := i*perRecord + j
				fmt.Fprintf(&text, "procfleet_ship_refuse_test{rec=\"%d\",j=\"%d\"} %d %d\n", i, j, k, ts+int64(k))
				want[fmt.Sprintf("%d/%d=%d@%d", i, j, k, ts+int64(k))] = true
			}
			b = batch(t, text.String())
		}
		if err := sp.Append(appendRecord(nil, b), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	s := newShipper(t, testConfig(vm.ImportURL), Deps{Metrics: set, Spool: sp, SpoolBatchBytes: 1 << 20})
	run(t, s)
	waitFor(t, "the spool replayed", 15*time.Second, func() bool { return sp.Len() == 0 })
	if got := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`); got != 1 {
		t.Fatalf("refused records = %v; want 1", got)
	}
	if got := metricValue(t, set, "procfleet_ship_replayed_batches_total"); got != n-1 {
		t.Fatalf("replayed records = %v; want %d", got, n-1)
	}
	got := map[string]bool{}
	waitFor(t, "every good sample in VictoriaMetrics", 15*time.Second, func() bool {
		vm.Flush(t)
		series, err := vm.TryExport(`procfleet_ship_refuse_test`)
		if err != nil {
			return false
		}
		clear(got)
		for _, s := range series {
			for k, v := range s.Values {
				got[fmt.Sprintf("%s/%s=%v@%d", s.Metric["rec"], s.Metric["j"], v, s.Timestamps[k])] = true
			}
		}
		return len(got) >= len(want)
	})
	for k := range want {
		if !got[k] {
			t.Errorf("sample %s missing in VictoriaMetrics", k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("VictoriaMetrics holds %d distinct samples; want %d", len(got), len(want))
	}
}
