package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The reference file documents every key with its default: it must decode
// to exactly the defaults.
func TestExampleFileHoldsTheDefaults(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "agent.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := DefaultAgent()
	if err := decodeStrict(data, &got); err != nil {
		t.Fatalf("example file does not decode: %v", err)
	}
	if got.Ship.Upstreams == nil {
		got.Ship.Upstreams = nil
	}
	want := DefaultAgent()
	if len(got.Ship.Upstreams) == 0 {
		got.Ship.Upstreams = nil
	}
	if got.Credentials == nil {
		t.Fatal("the example file lacks credentials")
	}
	if len(got.Credentials) == 0 {
		got.Credentials = nil // credentials: {}, the default
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("example file differs from DefaultAgent():\n got %+v\nwant %+v", got, want)
	}
}

func TestParseAgentErrors(t *testing.T) {
	f := func(doc, want string) {
		t.Helper()
		_, err := ParseAgent([]byte(doc))
		if err == nil {
			t.Fatalf("%q accepted; want an error containing %q", doc, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: error %q does not contain %q", doc, err, want)
		}
	}
	f("jobb: x\n", `line 1: unknown key jobb`)
	f("generators:\n  stat: {interval: 1x}\n", `line 2: "1x" is not a duration`)
	f("generators:\n  stat: {interval: 10ms}\n", `generators.stat.interval: 10ms is not accepted; want 100ms to 1h`)
	f("generators:\n  nosuch: {}\n", `unknown key nosuch`)
	f("compress: {level: 0}\n", `compress.level: 0 is not accepted`)
	f("compress: {encoding: deflate}\n", `compress.encoding: "deflate" is not accepted; want gzip or zstd`)
	f("compress: {min_flush_interval: 2m}\n", `compress.min_flush_interval: 2m0s is not accepted; want 0 to 1m`)
	f("compress: {min_flush_interval: -1s}\n", `compress.min_flush_interval: -1s is not accepted`)
	f("ship: {upstreams: [ftp://x]}\n", `ship.upstreams[0]: "ftp://x" is not accepted`)
	f("ship: {retry: {min_backoff: 2s, max_backoff: 1s}}\n", `ship.retry.max_backoff`)
	f("limit: {bytes_per_second: lots}\n", `"lots" is not a rate`)
	f("full_every: 0\n", `full_every: 0 is not accepted`)
	f("log: {level: loud}\n", `log.level: "loud" is not accepted`)
	f("listen: nope\n", `listen: "nope" is not accepted`)
	f("a: 1\n---\nb: 2\n", `unknown key a`)
	f("job: x\n---\njob: y\n", `more than one YAML document`)
}

func TestParseAgentOverDefaults(t *testing.T) {
	a, err := ParseAgent([]byte(`
generators:
  process: {threads: true}
  stat: {interval: 250ms}
ship:
  upstreams: [http://127.0.0.1:8428/api/v1/import/prometheus]
limit: {bytes_per_second: 10MiB/s, burst: 1MiB}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Generators.Process.Enabled || !a.Generators.Process.Threads || a.Generators.Process.CmdlineMaxBytes != 256 {
		t.Fatalf("process generator lost defaults: %+v", a.Generators.Process)
	}
	if a.Generators.Stat.Interval.D() != 250*time.Millisecond || !a.Generators.Stat.Enabled {
		t.Fatalf("stat = %+v", a.Generators.Stat)
	}
	if a.Limit.BytesPerSecond != 10<<20 || a.Limit.Burst != 1<<20 {
		t.Fatalf("limit = %+v", a.Limit)
	}
}

func TestByteSizes(t *testing.T) {
	f := func(in string, want int64, ok bool) {
		t.Helper()
		got, err := ParseByteSize(in)
		if (err == nil) != ok || got != want {
			t.Fatalf("ParseByteSize(%q) = %d, %v; want %d ok=%v", in, got, err, want, ok)
		}
	}
	f("65536", 65536, true)
	f("64KiB", 64<<10, true)
	f("10MB", 10e6, true)
	f("1.5MiB", 3<<19, true)
	f("-1", 0, false)
	f("9999999999TiB", 0, false)
	f("ten", 0, false)
	if FormatBytes(10<<20) != "10MiB" || FormatBytes(1000) != "1000" {
		t.Fatalf("FormatBytes: %s %s", FormatBytes(10<<20), FormatBytes(1000))
	}
}

func TestLoadAgentFileNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte("job: [a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAgentFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":") {
		t.Fatalf("error does not start with the file name: %v", err)
	}
}
