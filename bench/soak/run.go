package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// soak is one run: VictoriaMetrics, the relay in front of it, and the
// clients.
type soak struct {
	o                 options
	dir               string
	vm, relay         *proc
	vmAddr, relayAddr string
	tok               *tokens
	fast              *fastResults
	slow              *slowResults

	mu           sync.Mutex
	peakRSS      int64
	peakInflight float64
	monitorErr   error
}

func run(ctx context.Context, o options) (*Report, error) {
	dir, err := os.MkdirTemp("", "procfleet-soak-")
	if err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		logf("keeping %s", dir)
	}
	s := &soak{o: o, dir: dir, fast: newFastResults(), slow: &slowResults{status: map[string]int{}}}
	if err := s.start(ctx); err != nil {
		s.stop()
		return nil, err
	}
	defer s.stop()
	start, end, err := s.load(ctx)
	if err != nil {
		s.printTails()
		return nil, err
	}
	rep, err := s.verify(ctx, start, end)
	if err != nil {
		s.printTails()
	}
	return rep, err
}

// start runs VictoriaMetrics and the relay and waits until both answer.
func (s *soak) start(ctx context.Context) error {
	var err error
	if s.vmAddr, err = freeAddr(); err != nil {
		return err
	}
	if s.relayAddr, err = freeAddr(); err != nil {
		return err
	}
	s.vm, err = startProc(s.dir, "victoria-metrics", filepath.Join(s.o.bin, "victoria-metrics"),
		"-storageDataPath", filepath.Join(s.dir, "vm"), "-httpListenAddr", s.vmAddr,
		"-search.latencyOffset=0s", "-dedup.minScrapeInterval=1ms", "-loggerLevel=ERROR")
	if err != nil {
		return err
	}
	if err := waitOK(ctx, "VictoriaMetrics", "http://"+s.vmAddr+"/health", 30*time.Second); err != nil {
		return err
	}
	if s.tok, err = newTokens(s.dir); err != nil {
		return err
	}
	cfg := "auth: {bearer_tokens_file: " + strconv.Quote(s.tok.path) + "}\n"
	if s.o.readTimeout > 0 {
		cfg += "import: {read_timeout: " + s.o.readTimeout.String() + "}\n"
	}
	cfgPath := filepath.Join(s.dir, "relay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	s.relay, err = startProc(s.dir, "relay", filepath.Join(s.o.bin, "procfleet"), "relay", "--config", cfgPath,
		"--listen", s.relayAddr, "--data-dir", filepath.Join(s.dir, "wal"),
		"--upstream", "http://"+s.vmAddr+importPath)
	if err != nil {
		return err
	}
	return waitOK(ctx, "the relay", "http://"+s.relayAddr+"/readyz", 30*time.Second)
}

func (s *soak) stop() {
	for _, p := range []*proc{s.relay, s.vm} {
		if p != nil {
			p.stop()
		}
	}
}

func (s *soak) printTails() {
	for _, p := range []*proc{s.relay, s.vm} {
		if p != nil {
			logf("%s log (tail):\n%s", p.name, p.tail(3000))
		}
	}
}

// load runs the slow clients, then the fast agents beside them, the token
// rotation and the monitor for the duration, and returns the time the
// fast agents started and stopped.
func (s *soak) load(ctx context.Context) (time.Time, time.Time, error) {
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for range s.o.slow {
		c := &slowClient{addr: s.relayAddr, length: 1 << 20, tok: s.tok, res: s.slow}
		wg.Go(func() { c.run(lctx) })
	}
	wg.Go(func() { s.monitor(lctx) })
	// The slow clients are being read (each holds a chunk) before the
	// fast ones start.
	if err := s.waitInflight(ctx, float64(s.o.slow*4<<10), 20*time.Second); err != nil {
		return time.Time{}, time.Time{}, err
	}
	logf("%d slow clients connected; %d fast agents start for %s", s.o.slow, s.o.fast, s.o.duration)
	start := time.Now()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: s.o.fast}}
	for i := range s.o.fast {
		a := &fastAgent{id: i, series: s.o.series, url: "http://" + s.relayAddr + importPath, tok: s.tok, client: client, res: s.fast}
		wg.Go(func() { a.run(lctx) })
	}
	wg.Go(func() { s.rotate(lctx) })
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(s.o.duration):
	}
	end := time.Now()
	stopLoad()
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return start, end, errors.Join(err, s.monitorErr)
}

func (s *soak) rotate(ctx context.Context) {
	t := time.NewTicker(s.o.rotate)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.tok.rotate(ctx); err != nil && ctx.Err() == nil {
				s.fail(fmt.Errorf("cannot rotate the tokens: %w", err))
			}
		}
	}
}

func (s *soak) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.monitorErr = errors.Join(s.monitorErr, err)
}

// monitor samples the relay's resident memory and the bytes of bodies it
// holds twice a second, and watches both processes.
func (s *soak) monitor(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range []*proc{s.relay, s.vm} {
			if err := p.exited(); err != nil {
				s.fail(err)
				return
			}
		}
		rss, _, err := memStatus(s.relay.cmd.Process.Pid)
		inflight, _, merr := metric(ctx, "http://"+s.relayAddr+"/metrics", "procfleet_relay_inflight_bytes")
		s.mu.Lock()
		if err == nil {
			s.peakRSS = max(s.peakRSS, rss)
		}
		if merr == nil {
			s.peakInflight = max(s.peakInflight, inflight)
		}
		s.mu.Unlock()
	}
}

// waitInflight waits until the relay holds at least n bytes of bodies.
func (s *soak) waitInflight(ctx context.Context, n float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, _, err := metric(ctx, "http://"+s.relayAddr+"/metrics", "procfleet_relay_inflight_bytes")
		if err == nil && v >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the relay holds %v bytes of bodies after %s; want at least %v (every slow client being read): %v", v, timeout, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
