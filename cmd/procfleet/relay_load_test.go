package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// seriesPerWorker is how many series one load worker spreads its samples
// over: sample i of worker w is metric{w="w",n="i%seriesPerWorker"} with
// value i at base+i milliseconds, so that every sample is unique by
// (series, timestamp) and tells which body it came from.
const seriesPerWorker = 100

// outcome is what an import request's answer promises about its body.
type outcome int

const (
	accepted outcome = iota // 204: the body must arrive, whole
	refused                 // another status: nothing of it may arrive
	unknown                 // no answer: it arrives whole or not at all
)

func (o outcome) String() string {
	return [...]string{"accepted", "refused", "unknown"}[o]
}

// genBody is one import request: samples first..first+n-1 of worker.
type genBody struct {
	worker, first, n int
	gzip             bool
	outcome          outcome
	status           int
	answer           string // error text or response body, for failures
}

// loadGen posts bodies of unique samples to an import URL, from a few
// goroutines or one call at a time, and records what became of each.
// Every attempt is a new body, so a body's fate is read from its answer
// alone. Safe for concurrent use.
type loadGen struct {
	t      *testing.T
	url    string
	metric string
	base   int64 // timestamp of sample 0, unix milliseconds
	// allGzip compresses every body, as agents do; otherwise about half.
	allGzip bool
	client  *http.Client

	mu     sync.Mutex
	bodies []genBody
	next   map[int]int // next sample index, by worker
	rng    *rand.Rand

	stop chan struct{}
	wg   sync.WaitGroup
}

func newLoadGen(t *testing.T, url, metric string) *loadGen {
	g := &loadGen{
		t:      t,
		url:    url,
		metric: metric,
		// Within the last hour, on a second boundary: VictoriaMetrics takes
		// it, and a [1h] query at the end covers every sample.
		base:   time.Now().Add(-40 * time.Minute).Truncate(time.Second).UnixMilli(),
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}},
		next:   map[int]int{},
		rng:    rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
	}
	t.Cleanup(func() {
		g.halt()
		g.client.CloseIdleConnections()
	})
	return g
}

// text returns the body's lines.
func (g *loadGen) text(b genBody) []byte {
	var buf bytes.Buffer
	for i := b.first; i < b.first+b.n; i++ {
		fmt.Fprintf(&buf, "%s{w=\"%d\",n=\"%d\"} %d %d\n", g.metric, b.worker, i%seriesPerWorker, i, g.base+int64(i))
	}
	return buf.Bytes()
}

// postOne sends a new body of lines samples (50 to 200 when 0) for worker,
// gzip-compressed (always with allGzip, else at random), records it and
// returns it.
func (g *loadGen) postOne(worker, lines int) genBody {
	g.mu.Lock()
	if lines == 0 {
		lines = 50 + g.rng.IntN(151)
	}
	b := genBody{worker: worker, first: g.next[worker], n: lines, gzip: g.allGzip || g.rng.IntN(2) == 0}
	g.next[worker] += lines
	g.mu.Unlock()

	body := g.text(b)
	if b.gzip {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = zb.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		g.t.Error(err)
		return b
	}
	if b.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := g.client.Do(req)
	switch {
	case err != nil:
		b.outcome, b.answer = unknown, err.Error()
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		b.status, b.answer = resp.StatusCode, string(bytes.TrimSpace(msg))
		if resp.StatusCode == http.StatusNoContent {
			b.outcome = accepted
		} else {
			b.outcome = refused
		}
	}
	g.mu.Lock()
	g.bodies = append(g.bodies, b)
	g.mu.Unlock()
	return b
}

// start runs workers goroutines that post until halt, pausing pace after
// each answer and longer after a failure (a relay that is down).
func (g *loadGen) start(workers int, pace time.Duration) {
	stop := make(chan struct{})
	g.stop = stop
	for w := range workers {
		g.wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d := pace
				if b := g.postOne(w, 0); b.outcome != accepted {
					d = 50 * time.Millisecond
				}
				select {
				case <-stop:
					return
				case <-time.After(d):
				}
			}
		})
	}
}

// halt stops the workers and waits for their requests in flight.
func (g *loadGen) halt() {
	if g.stop != nil {
		close(g.stop)
		g.stop = nil
	}
	g.wg.Wait()
}

// loadStats sums up a load and what VictoriaMetrics holds of it.
type loadStats struct {
	bodies, accepted, refused, unknown int // request counts
	acceptedSamples                    int
	present                            int // distinct samples stored
	unknownArrived                     int // unknown bodies that arrived
}

// counts returns the request counts and accepted samples of the record.
func (g *loadGen) counts() loadStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	var s loadStats
	for _, b := range g.bodies {
		s.bodies++
		switch b.outcome {
		case accepted:
			s.accepted++
			s.acceptedSamples += b.n
		case refused:
			s.refused++
		case unknown:
			s.unknown++
		}
	}
	return s
}

// present exports the load's samples from vm and returns how often each
// (worker, sample index) is stored, checking that each is where its index
// puts it (series, value, timestamp).
func (g *loadGen) present(vm *testenv.VM) (map[[2]int]int, error) {
	series, err := vm.TryExport(g.metric)
	if err != nil {
		return nil, err
	}
	got := map[[2]int]int{}
	for _, s := range series {
		w, err1 := strconv.Atoi(s.Metric["w"])
		n, err2 := strconv.Atoi(s.Metric["n"])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("unexpected series %v", s.Metric)
		}
		for k, ts := range s.Timestamps {
			i := int(ts - g.base)
			if i < 0 || i%seriesPerWorker != n || s.Values[k] != float64(i) {
				return nil, fmt.Errorf("series %v holds value %v at %d, which no body sent", s.Metric, s.Values[k], ts)
			}
			got[[2]int{w, i}]++
		}
	}
	return got, nil
}

// verify waits until every accepted body is in vm, then checks the
// promise against the record: every accepted body is there whole, nothing
// of a refused one is, an unanswered one is there whole or not at all, no
// sample is exported twice, and a count_over_time query counts each
// stored sample once. lost lists bodies that are allowed to be missing
// although accepted (damage done by the test itself); they must be wholly
// absent.
func (g *loadGen) verify(vm *testenv.VM, lost ...genBody) loadStats {
	t := g.t
	t.Helper()
	skip := map[[2]int]bool{}
	for _, b := range lost {
		skip[[2]int{b.worker, b.first}] = true
	}
	var got map[[2]int]int
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "every accepted body in VictoriaMetrics", func() error {
		vm.Flush(t)
		var err error
		if got, err = g.present(vm); err != nil {
			return err
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, b := range g.bodies {
			if b.outcome == accepted && !skip[[2]int{b.worker, b.first}] {
				for i := b.first; i < b.first+b.n; i++ {
					if got[[2]int{b.worker, i}] == 0 {
						return fmt.Errorf("accepted body %+v lacks sample %d", b, i)
					}
				}
			}
		}
		return nil
	})
	s := g.counts()
	s.present = len(got)
	g.mu.Lock()
	for _, b := range g.bodies {
		have := 0
		for i := b.first; i < b.first+b.n; i++ {
			have += min(got[[2]int{b.worker, i}], 1)
		}
		switch {
		case skip[[2]int{b.worker, b.first}] && have != 0:
			t.Errorf("body %+v was damaged on disk but %d of its %d samples arrived", b, have, b.n)
		case b.outcome == refused && have != 0:
			t.Errorf("refused body (HTTP %d %q) arrived all the same: %d of %d samples", b.status, b.answer, have, b.n)
		case have != 0 && have != b.n:
			t.Errorf("%s body %+v arrived in part: %d of %d samples", b.outcome, b, have, b.n)
		case b.outcome == unknown && have == b.n:
			s.unknownArrived++
		}
	}
	g.mu.Unlock()
	for k, n := range got {
		if n != 1 {
			t.Errorf("sample %v exported %d times; want once", k, n)
			break
		}
	}
	q := fmt.Sprintf("sum(count_over_time(%s[1h]))", g.metric)
	if c := vm.Query(t, q)[""]; int(c) != s.present {
		t.Errorf("%s = %v; want %d, each stored sample once", q, c, s.present)
	}
	return s
}
