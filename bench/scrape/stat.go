package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux platform Go supports).
const clockTicks = 100

// cpuSeconds is utime+stime of pid, in seconds.
func cpuSeconds(pid int) (float64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cannot read %s: %w", path, err)
	}
	s := string(b)
	// The command name (field 2) may hold spaces: fields count from the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no ')' closing the command name", path)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name, want 13 or more", path, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: utime %q stime %q: want integers", path, f[11], f[12])
	}
	return float64(u+st) / clockTicks, nil
}

// memStatus returns VmRSS and VmHWM of pid, in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read %s: %w", path, err)
	}
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: %s: %q: want a number of kB", path, key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// rssPeak samples VmRSS of pid every interval until ctx ends.
type rssPeak struct {
	pid  int
	mu   sync.Mutex
	peak int64
}

func (r *rssPeak) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if rss, _, err := memStatus(r.pid); err == nil {
			r.mu.Lock()
			r.peak = max(r.peak, rss)
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *rssPeak) get() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}
