package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// clockTicks returns the kernel's clock ticks per second (USER_HZ, the unit
// of utime and stime in /proc/PID/stat) from `getconf CLK_TCK`, or 100 (the
// value on every Linux architecture that matters) when getconf fails, with
// where the value came from.
func clockTicks() (int64, string) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v, "getconf CLK_TCK"
		}
	}
	return 100, "assumed 100 (getconf CLK_TCK failed)"
}

// cpuTicks returns utime+stime of pid from /proc/PID/stat, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	t, err := parseStatTicks(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parseStatTicks returns utime+stime from the text of /proc/PID/stat.
func parseStatTicks(s string) (int64, error) {
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'. After it come field 3 (state) on.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' closing the command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want 13 or more", len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime %q stime %q: want integers", f[11], f[12])
	}
	return utime + stime, nil
}

// memStatus returns VmRSS and VmHWM of pid from /proc/PID/status, in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	rss, hwm, err = parseStatus(string(b))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return rss, hwm, nil
}

// parseStatus returns VmRSS and VmHWM, in bytes, from the text of
// /proc/PID/status.
func parseStatus(s string) (rss, hwm int64, err error) {
	for line := range strings.Lines(s) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: %q: want a number of kB", key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// rssPeaks samples VmRSS of each group of pids every interval until ctx
// ends and returns, per group, the peak of the group's sum and, per pid, its
// own peak.
type rssPeaks struct {
	groups   [][]int
	sumPeak  []int64
	procPeak map[int]int64
	err      error
}

func newRSSPeaks(groups ...[]int) *rssPeaks {
	return &rssPeaks{groups: groups, sumPeak: make([]int64, len(groups)), procPeak: map[int]int64{}}
}

// run samples until ctx ends; read the fields after it returns.
func (r *rssPeaks) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *rssPeaks) sample() {
	for g, pids := range r.groups {
		var sum int64
		for _, pid := range pids {
			rss, _, err := memStatus(pid)
			if err != nil {
				r.err = err
				continue
			}
			sum += rss
			r.procPeak[pid] = max(r.procPeak[pid], rss)
		}
		r.sumPeak[g] = max(r.sumPeak[g], sum)
	}
}
