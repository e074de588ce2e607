package relay

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// importQuery takes what VictoriaMetrics stores as sent, and refuses what
// it would store otherwise or drop: __name__ as an extra label (every
// series renamed), a label twice, and a timestamp that is not unix
// milliseconds within reach (0 and below mean "now" at forwarding time,
// seconds land in 1970, more than two days ahead is dropped).
func TestImportQuery(t *testing.T) {
	now := time.UnixMilli(1800000000000)
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	f := func(raw, wantErr string) {
		t.Helper()
		_, err := importQuery(raw, now)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("importQuery(%q) = %v; want it accepted", raw, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("importQuery(%q) = %v; want an error containing %q", raw, err, wantErr)
		}
	}
	f("", "")
	f("extra_label=instance%3Dh1&extra_label=job%3Dprocfleet", "")
	f("extra_label=empty%3D", "")
	f("extra_label=__meta%3Dx", "")
	f("timestamp="+ms(0), "")
	f("timestamp="+ms(-30*24*time.Hour), "")
	f("timestamp=946684800000", "")
	f("timestamp="+ms(47*time.Hour), "")

	f("extra_label=__name__%3Dother", "__name__ would rename")
	f("extra_label=__name__", "want name=value")
	f("extra_label=a%3D1&extra_label=b%3D2&extra_label=a%3D3", "extra_label a given twice")
	f("timestamp=0", "timestamp 0 is not accepted")
	f("timestamp=-1", "timestamp -1 is not accepted")
	f("timestamp=946684799999", "from 946684800000")
	f("timestamp="+strconv.FormatInt(now.Unix(), 10), "from 946684800000")
	f("timestamp="+ms(49*time.Hour), "two days ahead")
	f("timestamp=9223372036854775807", "two days ahead")
	f("timestamp=1&timestamp=2", "given 2 times")
	f("timestamp=%2B1800000000000", "")
}
