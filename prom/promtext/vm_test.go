package promtext

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestVictoriaMetricsAgrees imports every body of the table that Check
// accepts into the pinned VictoriaMetrics and exports it back: each sample
// must be stored under the name and labels, with the value and timestamp,
// that the reference implementation reads. This is the cross-check
// against VictoriaMetrics' own parser, which the module cannot import.
func TestVictoriaMetricsAgrees(t *testing.T) {
	vm := testenv.StartVM(t, "-retentionPeriod=100y")
	start := time.Now()
	var cases []int
	for i, tc := range ruleCases {
		if !tc.accepted() || tc.samples == 0 {
			continue
		}
		cases = append(cases, i)
		u := vm.ImportURL + "?" + url.Values{"extra_label": {fmt.Sprintf("case=%d", i)}}.Encode()
		resp, err := http.Post(u, "text/plain", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s: import answered %s", tc.name, resp.Status)
		}
	}
	end := time.Now()
	// Imported rows become searchable after a flush, in the background.
	deadline := time.Now().Add(20 * time.Second)
	for {
		vm.Flush(t)
		var faults []string
		compared := 0
		for _, i := range cases {
			f, n := vmMismatches(t, vm, i, start, end)
			faults = append(faults, f...)
			compared += n
		}
		if len(faults) == 0 {
			t.Logf("%d samples of %d bodies stored as read", compared, len(cases))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("VictoriaMetrics stored otherwise:\n%s", strings.Join(faults, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// vmMismatches compares what VictoriaMetrics stored for table case i,
// imported between start and end, with what the reference reads.
func vmMismatches(t *testing.T, vm *testenv.VM, i int, start, end time.Time) (faults []string, compared int) {
	tc := ruleCases[i]
	stored := exportAll(t, vm, fmt.Sprintf(`{case="%d"}`, i))
	for _, s := range refCheck([]byte(tc.body), tc.lim()).samples {
		switch {
		case math.IsNaN(s.value):
			// VictoriaMetrics drops NaN samples.
			continue
		case s.hasTS && s.ts != 0 && (s.ts < 86400000 || s.ts > end.Add(24*time.Hour).UnixMilli()):
			// Outside what VictoriaMetrics keeps: before its first day, or
			// too far ahead.
			continue
		}
		compared++
		key := testenv.SeriesKey(s.name, s.labels)
		points, ok := stored[key]
		if !ok {
			faults = append(faults, fmt.Sprintf("%s: %s is missing; stored: %v", tc.name, key, stored))
			continue
		}
		found := false
		for _, p := range points {
			tsOK := p.ts == s.ts
			if !s.hasTS || s.ts == 0 {
				// No timestamp: the time of the import.
				tsOK = p.ts >= start.Add(-time.Minute).UnixMilli() && p.ts <= end.Add(time.Minute).UnixMilli()
			}
			found = found || tsOK && sameFloat(p.value, s.value)
		}
		if !found {
			faults = append(faults, fmt.Sprintf("%s: %s stored as %+v; want value %v, timestamp %d", tc.name, key, points, s.value, s.ts))
		}
	}
	return faults, compared
}

type point struct {
	ts    int64
	value float64
}

// exportAll returns the series matching match by canonical key. Values
// come as JSON numbers, or as strings for Infinity and NaN.
func exportAll(t *testing.T, vm *testenv.VM, match string) map[string][]point {
	t.Helper()
	resp, err := http.Get("http://" + vm.Addr + "/api/v1/export?" + url.Values{"match[]": {match}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string][]point{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s struct {
			Metric     map[string]string `json:"metric"`
			Values     []any             `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("export: %v: %s", err, sc.Bytes())
		}
		name := s.Metric["__name__"]
		delete(s.Metric, "__name__")
		delete(s.Metric, "case")
		key := testenv.SeriesKey(name, s.Metric)
		for i, v := range s.Values {
			var f float64
			switch v := v.(type) {
			case float64:
				f = v
			case string:
				if f, err = strconv.ParseFloat(v, 64); err != nil {
					t.Fatalf("export: value %q", v)
				}
			}
			out[key] = append(out[key], point{s.Timestamps[i], f})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFloat compares within VictoriaMetrics' decimal storage precision.
func sameFloat(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}
