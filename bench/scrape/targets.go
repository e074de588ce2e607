package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
)

// families is how many metric names a target exposes; its series are
// spread evenly over them.
const families = 10

// targets is the scraped side: n HTTP servers on loopback, one per target,
// each serving /metrics with series series whose values change on every
// scrape. Scrapes are counted per scraper, told apart by User-Agent.
type targets struct {
	series int
	lns    []net.Listener
	srvs   []*http.Server
	heads  [][]string // per target, per series: the line up to the value
	gz     sync.Pool

	procfleet atomic.Int64 // scrapes answered to User-Agent procfleet
	vmagent   atomic.Int64 // to anything else (vmagent: vm_promscrape)
	counter   atomic.Int64 // makes every body's values new
}

// startTargets listens on n free loopback ports and serves until ctx ends.
func startTargets(ctx context.Context, n, series int) (*targets, error) {
	t := &targets{series: series}
	t.gz.New = func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return w
	}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.close()
			return nil, fmt.Errorf("cannot listen for target %d: %w", i, err)
		}
		heads := make([]string, series)
		for k := range series {
			heads[k] = fmt.Sprintf(`bench_requests_%d_total{handler="/api/v1/h%d",code="200",shard="%d"} `, k%families, k, i%16)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.serve(w, r, heads) })}
		t.lns, t.srvs, t.heads = append(t.lns, ln), append(t.srvs, srv), append(t.heads, heads)
		go func() { _ = srv.Serve(ln) }()
	}
	go func() {
		<-ctx.Done()
		t.close()
	}()
	return t, nil
}

func (t *targets) close() {
	for _, s := range t.srvs {
		_ = s.Close()
	}
	for _, ln := range t.lns {
		_ = ln.Close()
	}
}

// addrs are the targets' host:port.
func (t *targets) addrs() []string {
	out := make([]string, len(t.lns))
	for i, ln := range t.lns {
		out[i] = ln.Addr().String()
	}
	return out
}

func (t *targets) serve(w http.ResponseWriter, r *http.Request, heads []string) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	if strings.Contains(r.UserAgent(), "procfleet") {
		t.procfleet.Add(1)
	} else {
		t.vmagent.Add(1)
	}
	base := t.counter.Add(1)
	buf := make([]byte, 0, len(heads)*72)
	for k, h := range heads {
		if k%(len(heads)/families+1) == 0 {
			buf = append(buf, "# TYPE bench_requests_"...)
			buf = strconv.AppendInt(buf, int64(k%families), 10)
			buf = append(buf, "_total counter\n"...)
		}
		buf = append(buf, h...)
		buf = strconv.AppendInt(buf, base*int64(k+1), 10)
		buf = append(buf, '\n')
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		_, _ = w.Write(buf)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	gw := t.gz.Get().(*gzip.Writer)
	gw.Reset(w)
	_, _ = gw.Write(buf)
	_ = gw.Close()
	t.gz.Put(gw)
}
