package config

import (
	"strings"
	"testing"
	"time"
)

func TestShipValidate(t *testing.T) {
	f := func(name string, mod func(*Ship), want string) {
		t.Helper()
		s := DefaultShip()
		s.Upstreams = []string{"http://127.0.0.1:8428/api/v1/import/prometheus"}
		mod(&s)
		err := s.Validate("ship")
		if want == "" {
			if err != nil {
				t.Fatalf("%s: Validate = %v; want nil", name, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Validate = %v; want an error with %q", name, err, want)
		}
	}
	f("defaults", func(*Ship) {}, "")
	f("no upstreams", func(s *Ship) { s.Upstreams = nil }, "")
	f("https", func(s *Ship) { s.Upstreams = []string{"https://vm:8428/x"} }, "")
	f("no scheme", func(s *Ship) { s.Upstreams = []string{"vm:8428"} }, "ship.upstreams[0]")
	f("second bad", func(s *Ship) { s.Upstreams = append(s.Upstreams, "ftp://vm/") }, "ship.upstreams[1]")
	f("no host", func(s *Ship) { s.Upstreams = []string{"http:///x"} }, "ship.upstreams[0]")
	f("connect", func(s *Ship) { s.Timeouts.Connect = 0 }, "ship.timeouts.connect")
	f("send", func(s *Ship) { s.Timeouts.Send = -1 }, "ship.timeouts.send")
	f("response", func(s *Ship) { s.Timeouts.Response = 0 }, "ship.timeouts.response")
	f("min backoff", func(s *Ship) { s.Retry.MinBackoff = 0 }, "ship.retry.min_backoff")
	f("max below min", func(s *Ship) { s.Retry.MaxBackoff = Duration(time.Millisecond) }, "ship.retry.max_backoff")
	f("probe", func(s *Ship) { s.ProbeInterval = 0 }, "ship.probe_interval")
	f("drain", func(s *Ship) { s.DrainTimeout = 0 }, "ship.drain_timeout")
	f("failures", func(s *Ship) { s.FailuresToUnhealthy = 0 }, "ship.failures_to_unhealthy")
	f("queue", func(s *Ship) { s.QueueBatches = 0 }, "ship.queue_batches")
	f("queue bytes off", func(s *Ship) { s.QueueBytes = 0 }, "")
	f("queue bytes small", func(s *Ship) { s.QueueBytes = 1 << 10 }, "ship.queue_bytes: 1KiB is not accepted; want 0 (no bound) or 64KiB or more")
	f("redeliver off", func(s *Ship) { s.RedeliverWindow = 0 }, "")
	f("redeliver negative", func(s *Ship) { s.RedeliverWindow = -1 }, "ship.redeliver_window")
	f("redeliver long", func(s *Ship) { s.RedeliverWindow = Duration(11 * time.Minute) }, "ship.redeliver_window")
	f("redeliver bytes small", func(s *Ship) { s.RedeliverMaxBytes = 1 << 10 }, "ship.redeliver_max_bytes")
	f("redeliver bytes large", func(s *Ship) { s.RedeliverMaxBytes = 17 << 30 }, "ship.redeliver_max_bytes")
	f("stream off", func(s *Ship) { s.StreamFor = 0 }, "")
	f("stream 2m", func(s *Ship) { s.StreamFor = Duration(2 * time.Minute) }, "")
	f("stream short", func(s *Ship) { s.StreamFor = Duration(time.Second) }, "ship.stream_for: 1s is not accepted")
	f("stream long", func(s *Ship) { s.StreamFor = Duration(3 * time.Minute) }, "ship.stream_for")
	f("stream negative", func(s *Ship) { s.StreamFor = -1 }, "ship.stream_for")
	f("stream gzip", func(s *Ship) { s.StreamEncoding = "gzip" }, "")
	f("stream encoding", func(s *Ship) { s.StreamEncoding = "snappy" }, `ship.stream_encoding: "snappy" is not accepted`)
	f("basic", func(s *Ship) { s.Auth = ShipAuth{Username: "u", PasswordFile: "/p"} }, "")
	f("bearer", func(s *Ship) { s.Auth = ShipAuth{BearerTokenFile: "/t"} }, "")
	f("both auth", func(s *Ship) { s.Auth = ShipAuth{Username: "u", PasswordFile: "/p", BearerTokenFile: "/t"} },
		"ship.auth: bearer_token_file and username")
	f("user only", func(s *Ship) { s.Auth.Username = "u" }, "ship.auth: username and password_file")
	f("password only", func(s *Ship) { s.Auth.PasswordFile = "/p" }, "ship.auth: username and password_file")
	f("cert only", func(s *Ship) { s.TLS.CertFile = "/c" }, "ship.tls: cert_file and key_file")
	f("cert and key", func(s *Ship) { s.TLS.CertFile, s.TLS.KeyFile = "/c", "/k" }, "")
}

func TestLimitValidate(t *testing.T) {
	f := func(l Limit, want string) {
		t.Helper()
		err := l.Validate("limit")
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Fatalf("Validate(%+v) = %v; want %q", l, err, want)
		}
	}
	f(Limit{}, "")
	f(Limit{BytesPerSecond: 1 << 20, Burst: 1 << 20}, "")
	f(Limit{BytesPerSecond: -1}, "limit.bytes_per_second")
	f(Limit{Burst: -1}, "limit.burst")
}
