package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The relay's reference file lists every key with its default: decoded
// into a zero document (so that a key missing from the file shows), it
// must equal DefaultRelay.
func TestRelayExampleFileHoldsTheDefaults(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "relay.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got Relay
	if err := decodeStrictRef(data, &got, "deploy/relay.example.yaml"); err != nil {
		t.Fatalf("example file does not decode: %v", err)
	}
	if len(got.Ship.Upstreams) == 0 {
		got.Ship.Upstreams = nil
	}
	if got.Credentials == nil {
		t.Fatal("the example file lacks credentials")
	}
	if len(got.Credentials) == 0 {
		got.Credentials = nil // credentials: {}, the default
	}
	if want := DefaultRelay(); !reflect.DeepEqual(got, want) {
		t.Fatalf("example file differs from DefaultRelay():\n got %+v\nwant %+v", got, want)
	}
}

func TestRelayValidate(t *testing.T) {
	ok := DefaultRelay()
	ok.WAL.Dir = "/var/lib/procfleet/relay"
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a wal.dir: %v", err)
	}
	f := func(change func(*Relay), want string) {
		t.Helper()
		r := ok
		change(&r)
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v; want one containing %q", err, want)
		}
	}
	f(func(r *Relay) { r.WAL.Dir = "" }, "wal.dir: empty")
	f(func(r *Relay) { r.Listen = "9478" }, "listen:")
	f(func(r *Relay) { r.Node = "Bad Name" }, "node:")
	f(func(r *Relay) { r.TLS.CertFile = "c.pem" }, "tls: cert_file and key_file go together")
	f(func(r *Relay) { r.TLS.ClientCAFile = "ca.pem" }, "tls.client_ca_file")
	f(func(r *Relay) { r.Import.MaxBodyBytes = 10 }, "import.max_body_bytes")
	f(func(r *Relay) { r.Import.MaxDecompressedBytes = 1 << 20 }, "import.max_decompressed_bytes")
	f(func(r *Relay) { r.Import.MaxLineBytes = 1 }, "import.max_line_bytes")
	f(func(r *Relay) { r.Import.MaxConcurrent = -1 }, "import.max_concurrent")
	f(func(r *Relay) { r.Import.ReadTimeout = 0 }, "import.read_timeout: 0s is not accepted")
	f(func(r *Relay) { r.Import.ReadTimeout = Duration(time.Hour) }, "import.read_timeout")
	f(func(r *Relay) { r.Import.MaxInflightBytes = 16 << 20 }, "import.max_inflight_bytes: 16MiB is not accepted; want max_body_bytes (32MiB)")
	// Limits that could never store a body they accept.
	f(func(r *Relay) {
		r.Import.MaxBodyBytes = MaxImportBodyBytes + 1
		r.Import.MaxDecompressedBytes = 1 << 30
		r.Import.MaxInflightBytes = 1 << 30
	}, "import.max_body_bytes: 267386881 is not accepted; want 1KiB to 255MiB")
	f(func(r *Relay) {
		r.Import.MaxBodyBytes = 1 << 30
		r.Import.MaxDecompressedBytes = 1 << 30
		r.Import.MaxInflightBytes = 1 << 30
	}, "import.max_body_bytes: 1GiB is not accepted")
	f(func(r *Relay) { r.WAL.MaxBytes = 48 << 20; r.WAL.SegmentBytes = 16 << 20 },
		"wal.max_bytes: 48MiB is not accepted with import.max_body_bytes 32MiB; want 0 (unbounded) or at least twice max_body_bytes (64MiB)")
	top := ok
	top.Import.MaxBodyBytes = MaxImportBodyBytes
	top.Import.MaxDecompressedBytes = MaxImportBodyBytes
	top.Import.MaxInflightBytes = MaxImportBodyBytes
	if err := top.Validate(); err != nil {
		t.Fatalf("import.max_body_bytes at its most: %v", err)
	}
	f(func(r *Relay) { r.WAL.Full = "block" }, `wal.full: "block" is not accepted`)
	f(func(r *Relay) { r.WAL.MaxBytes = 64 << 20 }, "wal.max_bytes")
	f(func(r *Relay) { r.WAL.SegmentBytes = 1 }, "wal.segment_bytes")
	f(func(r *Relay) { r.WAL.SyncInterval = -1 }, "wal.sync_interval")
	f(func(r *Relay) { r.WAL.MaxAge = -1 }, "wal.max_age")
	f(func(r *Relay) { r.Forward.BatchBytes = 1 }, "forward.batch_bytes")
	f(func(r *Relay) { r.Ship.Upstreams = []string{"ftp://x"} }, "ship.upstreams[0]")
	f(func(r *Relay) { r.Limit.BytesPerSecond = -1 }, "limit.bytes_per_second")
	f(func(r *Relay) { r.Log.Level = "loud" }, "log.level")
}

func TestParseRelayUnknownKey(t *testing.T) {
	_, err := ParseRelay([]byte("wal:\n  dri: /x\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2: unknown key dri (see deploy/relay.example.yaml") {
		t.Fatalf("err = %v; want the unknown key named with its line", err)
	}
}

func TestAgentSpoolValidate(t *testing.T) {
	f := func(doc, want string) {
		t.Helper()
		_, err := ParseAgent([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: err = %v; want one containing %q", doc, err, want)
		}
	}
	f("spool: {full: block}", `spool.full: "block" is not accepted; want refuse or drop_oldest`)
	f("spool: {max_bytes: 1MiB}", "spool.max_bytes: 1MiB is not accepted")
	f("spool: {sync_interval: 2m}", "spool.sync_interval: 2m0s is not accepted")
	a, err := ParseAgent([]byte("spool: {dir: /var/lib/procfleet/spool, max_bytes: 0}"))
	if err != nil || a.Spool.Dir != "/var/lib/procfleet/spool" || a.Spool.MaxBytes != 0 {
		t.Fatalf("spool = %+v, %v", a.Spool, err)
	}
}
