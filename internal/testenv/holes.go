package testenv

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// MergedTimestamps returns the distinct timestamps, in milliseconds and
// sorted, of every sample of the series matching match across the given
// servers together, after making their recent imports searchable.
func MergedTimestamps(t testing.TB, match string, vms ...*VM) []int64 {
	t.Helper()
	var ts []int64
	for _, vm := range vms {
		vm.Flush(t)
		for _, s := range vm.Export(t, match) {
			ts = append(ts, s.Timestamps...)
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// LargestHole returns the longest time within [from, to] with no
// timestamp of ts (sorted), the edges counting as timestamps, and when it
// starts.
func LargestHole(ts []int64, from, to time.Time) (hole time.Duration, at time.Time) {
	prev := from.UnixMilli()
	end := to.UnixMilli()
	for _, v := range append(slices.Clone(ts), end) {
		if v < prev {
			continue
		}
		v = min(v, end)
		if d := time.Duration(v-prev) * time.Millisecond; d > hole {
			hole, at = d, time.UnixMilli(prev)
		}
		prev = v
	}
	return hole, at
}

// Runs returns the number of repetitions the environment variable name
// asks for (a figures run), or def when it is not set.
func Runs(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("testenv: %s=%q; want a positive number of runs", name, v)
	}
	return n
}
