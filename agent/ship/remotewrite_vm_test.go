package ship_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent"
	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// scanHost runs every default generator once over this host's /proc and
// /sys, stamped ts, and returns the lines as the pipeline writes them.
func scanHost(t *testing.T, ts int64) []byte {
	t.Helper()
	cfg := config.DefaultAgent()
	gens, err := agent.Generators(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := emit.NewPool(4)
	var out bytes.Buffer
	for _, g := range gens {
		sink := &emit.MemSink{Pool: pool}
		s := emit.NewScan(pool, sink, nil)
		s.Start(context.Background(), ts)
		_ = g.Collect(s) // a source this host lacks writes nothing
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		out.Write(sink.Take())
	}
	if out.Len() == 0 {
		t.Fatal("the scan wrote nothing")
	}
	return out.Bytes()
}

// The same scan, shipped once through VictoriaMetrics' import and once
// through its remote-write API (1.0), is stored as the same series with
// the same values and timestamps; so is it sent as 2.0, which
// VictoriaMetrics does not take, after the fallback to 1.0. The copies
// differ only in the instance label the agent adds, so that one
// VictoriaMetrics holds them all.
func TestRemoteWriteMatchesImportVM(t *testing.T) {
	vm := testenv.StartVM(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	text := scanHost(t, ts)
	rwURL := "http://" + vm.Addr + "/api/v1/write"
	send := func(instance, upstream string, protos map[string]config.UpstreamProtocol) ship.EndpointState {
		return shipScan(t, text, instance, upstream, protos)
	}
	send("imp", vm.ImportURL, nil)
	send("rw", rwURL, map[string]config.UpstreamProtocol{rwURL: {Protocol: config.ProtocolRemoteWrite}})
	// VictoriaMetrics v1.151 answers a 2.0 request 204 without the
	// written-samples header and stores nothing: the shipper falls back.
	st := send("rw2", rwURL, map[string]config.UpstreamProtocol{rwURL: {Protocol: config.ProtocolRemoteWrite, RemoteWriteVersion: 2}})
	if !strings.HasPrefix(st.Protocol, "remote_write 1.0 (fell back from 2.0: HTTP 204 without") {
		t.Fatalf("2.0 to VictoriaMetrics: state %+v; want a fallback to 1.0", st)
	}
	vm.Flush(t)

	stored := func(instance string) map[string]string {
		out := map[string]string{}
		for _, s := range vm.Export(t, `{instance="`+instance+`"}`) {
			s.Metric["instance"] = "X"
			var v strings.Builder
			for i := range s.Values {
				v.WriteString(formatSample(s.Values[i], s.Timestamps[i]))
			}
			out[s.Key()] = v.String()
		}
		return out
	}
	imp, rw, rw2 := stored("imp"), stored("rw"), stored("rw2")
	lines := bytes.Count(text, []byte("\n"))
	if len(imp) < lines/2 {
		t.Fatalf("import stored %d series of %d lines", len(imp), lines)
	}
	for k, v := range imp {
		if rw[k] != v || rw2[k] != v {
			t.Errorf("series %s: import %s, remote write %q, after the fallback %q", k, v, rw[k], rw2[k])
		}
	}
	if len(rw2) != len(rw) {
		t.Errorf("after the fallback %d series, remote write 1.0 %d", len(rw2), len(rw))
	}
	for k := range rw {
		if _, ok := imp[k]; !ok {
			t.Errorf("series %s only in remote write", k)
		}
	}
	t.Logf("%d lines, %d series the same both ways", lines, len(imp))
}

func formatSample(v float64, ts int64) string { return fmt.Sprintf("%v@%d ", v, ts) }

// shipScan ships text as one agent batch with instance and job=procfleet
// to upstream in its protocol, and returns the upstream's state once it
// took it.
func shipScan(t *testing.T, text []byte, instance, upstream string, protos map[string]config.UpstreamProtocol) ship.EndpointState {
	t.Helper()
	cfg := config.DefaultShip()
	cfg.Upstreams, cfg.Protocols = []string{upstream}, protos
	q := url.Values{"extra_label": {"instance=" + instance, "job=procfleet"}}
	s, err := ship.New(cfg, ship.Deps{Query: q})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Enqueue(&ship.Batch{Body: testenv.Gzip(t, string(text)), Samples: bytes.Count(text, []byte("\n")), Created: time.Now()})
	deadline := time.Now().Add(15 * time.Second)
	for s.QueueLen() > 0 || s.State()[0].LastSuccessAt.IsZero() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("%s: not delivered: %+v", instance, s.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return s.State()[0]
}
