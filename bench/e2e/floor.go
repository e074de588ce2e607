package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
)

// floorSeries is the one series the floor writer imports.
const floorSeries = `procfleet_bench_floor{instance="floor"}`

// floor measures, in the same run, what VictoriaMetrics itself adds to
// freshness: a third VictoriaMetrics of the same version and flags takes
// one sample per second of one series straight from this program (a
// single-line import whose timestamp is the moment it is sent, no agent,
// no proxy), and a prober like the sides' records when each sample is
// first returned. No sender can be fresher than this; both sides' figures
// include it.
type floor struct {
	vm     *vmServer
	prober *prober

	mu         sync.Mutex
	sent, errs int
	lastErr    error
}

// run imports a sample every second until ctx ends.
func (f *floor) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		err := f.write(ctx, n, time.Now())
		f.mu.Lock()
		if err == nil {
			f.sent++
		} else if ctx.Err() == nil {
			f.errs++
			f.lastErr = err
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// write imports sample n with timestamp at.
func (f *floor) write(ctx context.Context, n int, at time.Time) error {
	body := fmt.Sprintf("%s %d %d\n", floorSeries, n, at.UnixMilli())
	url := "http://" + f.vm.addr + "/api/v1/import/prometheus"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := benchproc.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	return nil
}

// summary is the floor's freshness, with an error when nothing was
// measured: a report without its floor would hide why freshness is what
// it is.
func (f *floor) summary() (freshness, error) {
	s := f.prober.summary()
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.N == 0 {
		return s, fmt.Errorf("VictoriaMetrics floor: none of the %d samples imported became queryable (%d imports failed, last: %v)",
			f.sent, f.errs, f.lastErr)
	}
	return s, nil
}
