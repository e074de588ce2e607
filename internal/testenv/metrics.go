package testenv

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// MetricValue returns the value of the series named exactly name (with its
// labels, as written) in set, or -1 when set has no such series.
func MetricValue(t testing.TB, set *metrics.Set, name string) float64 {
	t.Helper()
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for l := range strings.Lines(buf.String()) {
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("testenv: cannot parse %q: %v", l, err)
			}
			return v
		}
	}
	return -1
}
