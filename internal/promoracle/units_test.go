package promoracle

import (
	"testing"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"

	"github.com/procfleet/procfleet/config"
)

var durationSeeds = []string{"0", "", "0s", "1m", "30s", "1h30m", "1d", "2w", "1y", "500ms", "1y2w3d4h5m6s7ms",
	"0001s", "1", "1.5m", "-1s", "1m1h", "1s1s", "1 s", "1us", "1M", "s", "1sms", "300y", "292y", "106751d",
	"9223372036854775807ms", "99999999999999999999s", "1h0m", "1d1d", "01m", "1mm"}

var sizeSeeds = []string{"0", "", "10", "10MB", "10MiB", "1KB", "1kB", "512B", "1.5GiB", ".5KB", "1.KB", "1EB", "8EB", "7.99EB",
	"16EB", "-1MB", "+1MB", "1MB1KB", "MB", ".MB", "1..5MB", "1iB", "0.1KB", "0.3333333333333333333KB", "1e3KB", "00KB", "1 KB",
	"9223372036854775807B", "922337203685477580KB"}

// procfleet's Prometheus durations against model.ParseDuration and
// model.Duration.String: the same strings accepted, with the same values;
// the same text written.
func TestDurationsAgainstPrometheus(t *testing.T) {
	for _, s := range durationSeeds {
		checkDuration(t, s)
	}
}

func FuzzDuration(f *testing.F) {
	for _, s := range durationSeeds {
		f.Add(s)
	}
	f.Fuzz(checkDuration)
}

func checkDuration(t *testing.T, s string) {
	want, werr := model.ParseDuration(s)
	got, err := config.ParsePromDuration(s)
	if (err == nil) != (werr == nil) || (err == nil && got != time.Duration(want)) {
		t.Fatalf("%q: Prometheus %v, %v; procfleet %v, %v", s, time.Duration(want), werr, got, err)
	}
	if err == nil {
		if g, w := config.FormatPromDuration(got), want.String(); g != w {
			t.Fatalf("%q formats as %q; Prometheus %q", s, g, w)
		}
	}
}

// body_size_limit: every size procfleet accepts, Prometheus'
// units.ParseBase2Bytes accepts with the same value (procfleet takes a
// subset: one number and one unit).
func TestSizesAgainstPrometheus(t *testing.T) {
	for _, s := range sizeSeeds {
		checkSize(t, s)
	}
}

func FuzzSize(f *testing.F) {
	for _, s := range sizeSeeds {
		f.Add(s)
	}
	f.Fuzz(checkSize)
}

func checkSize(t *testing.T, s string) {
	got, err := config.ParsePromByteSize(s)
	if err != nil {
		return
	}
	want, werr := units.ParseBase2Bytes(s)
	if werr != nil || got != int64(want) {
		t.Fatalf("%q: procfleet %d; Prometheus %d, %v", s, got, int64(want), werr)
	}
	// And what procfleet writes, Prometheus reads back to the same.
	back, err := units.ParseBase2Bytes(config.PromByteSize(got).String())
	if (err != nil || int64(back) != got) && got >= 0 {
		t.Fatalf("%d written as %q reads back as %d, %v", got, config.PromByteSize(got).String(), int64(back), err)
	}
}
