package selfmon

import (
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/internal/testenv"
)

func TestGeneratorWritesSets(t *testing.T) {
	a, b := metrics.NewSet(), metrics.NewSet()
	a.NewCounter(`procfleet_test_total{kind="x"}`).Add(3)
	b.NewGauge(`procfleet_test_gauge`, func() float64 { return 1.5 })
	b.NewSummary(`procfleet_test_seconds`).Update(0.25)
	RegisterProcess(b, "/proc")
	out, err := emit.Collect(NewGenerator(a, b))
	if err != nil {
		t.Fatal(err)
	}
	got, err := testenv.ParseText(out)
	if err != nil {
		t.Fatalf("self metrics are not valid text: %v\n%s", err, out)
	}
	if got[`procfleet_test_total{kind="x"}`] != 3 || got[`procfleet_test_gauge`] != 1.5 {
		t.Fatalf("values lost:\n%s", out)
	}
	if got[`procfleet_process_resident_memory_bytes`] <= 0 {
		t.Fatalf("resident memory of this process read as %v", got[`procfleet_process_resident_memory_bytes`])
	}
	if !strings.Contains(string(out), `procfleet_test_seconds_count 1`) {
		t.Fatalf("summary count missing:\n%s", out)
	}
}
