package ship_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// startPrometheus runs Prometheus with its remote-write receiver taking
// 1.0 and 2.0, and returns its address once it is ready.
func startPrometheus(t *testing.T) string {
	return testenv.StartPrometheus(t, "global: {}\n", "--web.enable-remote-write-receiver",
		"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
		"--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request")
}

// promSeries returns every sample Prometheus holds for the series
// matching sel in the 10 minutes before at, by series key without
// instance.
func promSeries(t *testing.T, addr, sel string, at int64) map[string]string {
	t.Helper()
	q := url.Values{"query": {sel + "[10m]"}, "time": {strconv.FormatFloat(float64(at)/1000, 'f', 3, 64)}}
	resp, err := http.Get("http://" + addr + "/api/v1/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		t.Fatalf("query %s: %v %+v", sel, err, out)
	}
	got := map[string]string{}
	for _, r := range out.Data.Result {
		r.Metric["instance"] = "X"
		var s string
		for _, v := range r.Values {
			ts := int64(v[0].(float64)*1000 + 0.5)
			f, _ := strconv.ParseFloat(v[1].(string), 64)
			s += formatSample12(f, ts)
		}
		name := r.Metric["__name__"]
		delete(r.Metric, "__name__")
		got[testenv.SeriesKey(name, r.Metric)] = s
	}
	return got
}

// The same scan, shipped to Prometheus itself (its remote-write
// receiver, v0.316.0) in remote write 1.0 and 2.0, is stored as the same
// series and values as through VictoriaMetrics' import; Prometheus takes
// 2.0, so there is no fallback.
func TestRemoteWriteMatchesImportPrometheus(t *testing.T) {
	prom := startPrometheus(t)
	vm := testenv.StartVM(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	text := scanHost(t, ts)
	rw := "http://" + prom + "/api/v1/write"
	shipScan(t, text, "imp", vm.ImportURL, nil)
	for v, instance := range map[int]string{1: "p1", 2: "p2"} {
		st := shipScan(t, text, instance, rw, map[string]config.UpstreamProtocol{rw: {Protocol: config.ProtocolRemoteWrite, RemoteWriteVersion: v}})
		if want := fmt.Sprintf("remote_write %d.0", v); st.Protocol != want {
			t.Fatalf("version %d: state %+v; want protocol %s", v, st, want)
		}
	}
	vm.Flush(t)
	imp := map[string]string{}
	for _, s := range vm.Export(t, `{instance="imp"}`) {
		s.Metric["instance"] = "X"
		var v string
		for i := range s.Values {
			v += formatSample12(s.Values[i], s.Timestamps[i])
		}
		imp[s.Key()] = v
	}
	for _, instance := range []string{"p1", "p2"} {
		got := promSeries(t, prom, `{instance="`+instance+`"}`, ts+1000)
		for k, v := range imp {
			if got[k] != v {
				t.Errorf("%s: series %s: import %s, Prometheus %q", instance, k, v, got[k])
			}
		}
		if len(got) != len(imp) {
			t.Errorf("%s: %d series in Prometheus, %d through import", instance, len(got), len(imp))
		}
	}
	t.Logf("%d series the same in VictoriaMetrics and in Prometheus through 1.0 and 2.0", len(imp))
}

// formatSample12 formats a sample to 12 significant digits:
// VictoriaMetrics stores a float64 as a decimal of about that precision
// (65.46000000000001 becomes 65.46), Prometheus stores it exactly.
func formatSample12(v float64, ts int64) string { return fmt.Sprintf("%.12g@%d ", v, ts) }
