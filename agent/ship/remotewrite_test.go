package ship

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/procfleet/procfleet/config"
)

// rwPost is one remote-write request a rwUpstream received, decoded.
type rwPost struct {
	at      time.Time
	version string // X-Prometheus-Remote-Write-Version
	ctype   string
	series  []string // "labels value@ts", labels as name=value,... in order
}

// rwUpstream is a remote-write receiver for fault tests. It decodes 1.0
// and 2.0 with protowire (the oracle against Prometheus' own decoder is
// in internal/promoracle). With v2 set it takes 2.0 and answers with the
// written-samples header; without, it answers a 2.0 request 204 without
// that header and stores nothing, as VictoriaMetrics v1.151 does.
type rwUpstream struct {
	srv *httptest.Server
	v2  bool

	mu    sync.Mutex
	fault func(n int, w http.ResponseWriter, r *http.Request) bool
	posts []rwPost
	n     int
}

func newRWUpstream(t *testing.T, v2 bool, fault func(n int, w http.ResponseWriter, r *http.Request) bool) *rwUpstream {
	t.Helper()
	u := &rwUpstream{v2: v2, fault: fault}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.srv.Close)
	return u
}

func (u *rwUpstream) URL() string { return u.srv.URL + "/api/v1/write" }

func (u *rwUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusNotFound) // no /health: still an answer
		return
	}
	u.mu.Lock()
	u.n++
	n, fault := u.n, u.fault
	u.mu.Unlock()
	if fault != nil && fault(n, w, r) {
		return
	}
	p := rwPost{at: time.Now(), version: r.Header.Get("X-Prometheus-Remote-Write-Version"), ctype: r.Header.Get("Content-Type")}
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Encoding") != "snappy" {
		http.Error(w, "want Content-Encoding: snappy", http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, "snappy: "+err.Error(), http.StatusBadRequest)
		return
	}
	v2 := p.version == "2.0.0"
	if v2 && !u.v2 {
		w.WriteHeader(http.StatusNoContent) // taken, nothing stored
		return
	}
	if p.series, err = rwDecode(raw, v2); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	u.posts = append(u.posts, p)
	u.mu.Unlock()
	if v2 {
		w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(len(p.series)))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (u *rwUpstream) received() []rwPost {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.posts)
}

func (u *rwUpstream) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

// rwDecode decodes a request into one string per sample.
func rwDecode(b []byte, v2 bool) ([]string, error) {
	var out, symbols []string
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		v, m := protowire.ConsumeBytes(b[n:])
		if n < 0 || m < 0 {
			return nil, fmt.Errorf("bad request message")
		}
		b = b[n+m:]
		switch {
		case !v2 && num == 1, v2 && num == 5:
			s, err := rwDecodeSeries(v, symbols)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		case v2 && num == 4:
			symbols = append(symbols, string(v))
		default:
			return nil, fmt.Errorf("unexpected field %d", num)
		}
	}
	return out, nil
}

func rwDecodeSeries(b []byte, symbols []string) ([]string, error) {
	var labels, samples []string
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		v, m := protowire.ConsumeBytes(b[n:])
		if n < 0 || m < 0 {
			return nil, fmt.Errorf("bad series message")
		}
		b = b[n+m:]
		switch {
		case num == 1 && symbols == nil:
			var kv [3]string
			for len(v) > 0 {
				f, _, k := protowire.ConsumeTag(v)
				x, j := protowire.ConsumeBytes(v[k:])
				kv[f] = string(x)
				v = v[k+j:]
			}
			labels = append(labels, kv[1]+"="+kv[2])
		case num == 1:
			var refs []uint64
			for len(v) > 0 {
				r, k := protowire.ConsumeVarint(v)
				if k < 0 || r >= uint64(len(symbols)) {
					return nil, fmt.Errorf("bad symbol reference")
				}
				refs, v = append(refs, r), v[k:]
			}
			for i := 0; i+1 < len(refs); i += 2 {
				labels = append(labels, symbols[refs[i]]+"="+symbols[refs[i+1]])
			}
		case num == 2:
			var val float64
			var ts int64
			for len(v) > 0 {
				f, _, k := protowire.ConsumeTag(v)
				v = v[k:]
				if f == 1 {
					x, j := protowire.ConsumeFixed64(v)
					val, v = math.Float64frombits(x), v[j:]
				} else {
					x, j := protowire.ConsumeVarint(v)
					ts, v = int64(x), v[j:]
				}
			}
			samples = append(samples, fmt.Sprintf("%g@%d", val, ts))
		}
	}
	out := make([]string, len(samples))
	for i, s := range samples {
		out[i] = strings.Join(labels, ",") + " " + s
	}
	return out, nil
}

func rwConfig(v int, urls ...string) config.Ship {
	c := testConfig(urls...)
	c.Protocols = map[string]config.UpstreamProtocol{}
	for _, u := range urls {
		c.Protocols[u] = config.UpstreamProtocol{Protocol: config.ProtocolRemoteWrite, RemoteWriteVersion: v}
	}
	return c
}

// The extra labels of an agent (Deps.Query) and of a relayed request
// (Batch.Query) become labels, sorted; a batch with its own labels gets
// only its query's; samples of a series come in time order.
func TestRemoteWriteSends(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			up := newRWUpstream(t, true, nil)
			q := map[string][]string{"extra_label": {"instance=host1", "job=procfleet"}}
			set := metrics.NewSet()
			s := newShipper(t, rwConfig(v, up.URL()), Deps{Metrics: set, Query: q})
			run(t, s)
			s.Enqueue(batch(t, "m{z=\"1\",a=\"2\"} 2 1700000001000\nm{z=\"1\",a=\"2\"} 1 1700000000000\n"))
			s.Enqueue(&Batch{Body: []byte("up{instance=\"t:9100\",job=\"node\"} 1\n"), Plain: true, OwnLabels: true,
				Query: "extra_label=env%3Dprod&timestamp=1700000002000"})
			waitFor(t, "2 requests", 5*time.Second, func() bool { return len(up.received()) == 2 })
			got := up.received()
			want := [][]string{
				{"__name__=m,a=2,instance=host1,job=procfleet,z=1 1@1700000000000",
					"__name__=m,a=2,instance=host1,job=procfleet,z=1 2@1700000001000"},
				{"__name__=up,env=prod,instance=t:9100,job=node 1@1700000002000"},
			}
			for i, p := range got {
				if !slices.Equal(p.series, want[i]) {
					t.Errorf("request %d: %q, want %q", i, p.series, want[i])
				}
				wantV, wantCT := "0.1.0", "application/x-protobuf"
				if v == 2 {
					wantV, wantCT = "2.0.0", "application/x-protobuf;proto=io.prometheus.write.v2.Request"
				}
				if p.version != wantV || p.ctype != wantCT {
					t.Errorf("request %d: version %q, content type %q; want %q, %q", i, p.version, p.ctype, wantV, wantCT)
				}
			}
			if st := stateOf(t, s, up.URL()); st.Protocol != fmt.Sprintf("remote_write %d.0", v) || !st.Healthy {
				t.Fatalf("state %+v", st)
			}
			if n := metricValue(t, set, `procfleet_ship_remote_write_fallbacks_total{endpoint="`+up.URL()+`"}`); n > 0 {
				t.Fatalf("fell back %v times", n)
			}
		})
	}
}

// A 2.0 upstream that answers 415, or 204 without the written-samples
// header, is sent the batch again in 1.0 at once, and 1.0 from then on;
// its state, log and metric say so.
func TestRemoteWriteFallback(t *testing.T) {
	cases := map[string]func(n int, w http.ResponseWriter, r *http.Request) bool{
		"415": func(_ int, w http.ResponseWriter, r *http.Request) bool {
			if r.Header.Get("X-Prometheus-Remote-Write-Version") == "2.0.0" {
				http.Error(w, "unsupported", http.StatusUnsupportedMediaType)
				return true
			}
			return false
		},
		"no header": nil, // a 1.0 receiver: 204 without the header
	}
	for name, fault := range cases {
		t.Run(name, func(t *testing.T) {
			up := newRWUpstream(t, false, fault)
			set := metrics.NewSet()
			s := newShipper(t, rwConfig(2, up.URL()), Deps{Metrics: set})
			run(t, s)
			s.Enqueue(batch(t, line(1)))
			waitFor(t, "the batch in 1.0", 5*time.Second, func() bool { return len(up.received()) >= 1 })
			s.Enqueue(batch(t, line(2)))
			waitFor(t, "the next batch", 5*time.Second, func() bool { return len(up.received()) == 2 })
			got := up.received()
			if up.requests() != 3 || got[0].version != "0.1.0" {
				t.Fatalf("%d requests; want 3 (2.0 once, then 1.0 twice)", up.requests())
			}
			last := got[len(got)-1]
			if last.version != "0.1.0" || !slices.Equal(last.series, []string{"__name__=m,i=2 2@1700000000000"}) {
				t.Fatalf("last request %+v", last)
			}
			if n := metricValue(t, set, `procfleet_ship_remote_write_fallbacks_total{endpoint="`+up.URL()+`"}`); n != 1 {
				t.Fatalf("fallbacks = %v; want 1", n)
			}
			if st := stateOf(t, s, up.URL()); !strings.HasPrefix(st.Protocol, "remote_write 1.0 (fell back from 2.0: ") {
				t.Fatalf("state protocol %q", st.Protocol)
			}
			if n := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`); n != 0 {
				t.Fatalf("dropped %v batches", n)
			}
		})
	}
}
