package procgen

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine(1, "systemd", 'S', 0, 150, 10, 2)))
	f.Add([]byte(statLine(813, "a) b (", 'R', 1, 18446744073709551615, 18446744073709551615, 4200)))
	f.Add([]byte("1020 ((a b ) ( c d) ) R 28378 1020 28378 34842 1020 4218880 286 0 0 0 0 0 0 0 20 0 1 0 10839175 10395648 155 18446744073709551615 4194304 4238788 140736466511168 140736466511168 140609271124624 0 0 0 0 0 0 0 17 5 0 0 0 0 0 6336016 6337300 25579520 140736466515030 140736466515061 140736466515061 140736466518002 0\n#!/bin/cat /proc/self/stat\n"))
	f.Add([]byte("7 (x"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		s, err := parseStat(data)
		if !bytes.Equal(in, data) {
			t.Fatal("parseStat modified its input")
		}
		if err != nil {
			return
		}
		// comm is exactly what lies between the first '(' and the last ')'.
		l, r := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if !bytes.Equal(s.comm, data[l+1:r]) {
			t.Fatalf("comm %q, want %q", s.comm, data[l+1:r])
		}
		// Round trip: the fields written back parse to the same values.
		back := statLine(1, string(s.comm), s.state, int(s.ppid), s.utime, s.stime, s.starttime)
		s2, err := parseStat([]byte(back))
		if err != nil {
			t.Fatalf("round trip %q: %v", back, err)
		}
		if s2.state != s.state || s2.ppid != s.ppid || s2.utime != s.utime || s2.stime != s.stime || s2.starttime != s.starttime {
			t.Fatalf("round trip: %+v != %+v", s2, s)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(statusText("bash", 1000, 5, 1)))
	f.Add([]byte("Uid:\t0\nvoluntary_ctxt_switches:\t18446744073709551615\nnonvoluntary_ctxt_switches:\t0"))
	f.Add([]byte("Uid:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseStatus(data)
		if err != nil {
			if !s.hasUID && !strings.Contains(err.Error(), "Uid") && !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error without a line or cause: %v", err)
			}
			return
		}
		if !s.hasUID {
			t.Fatal("nil error without a Uid")
		}
		back := statusText("x", s.uid, s.voluntary, s.nonvoluntary)
		s2, err := parseStatus([]byte(back))
		if err != nil || s2.uid != s.uid || (s.hasCtxt && (s2.voluntary != s.voluntary || s2.nonvoluntary != s.nonvoluntary)) {
			t.Fatalf("round trip: %+v, %v != %+v", s2, err, s)
		}
	})
}

func FuzzParseIO(f *testing.F) {
	f.Add([]byte("rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: -1024\n"))
	f.Add([]byte("read_bytes: 18446744073709551615\nwrite_bytes: 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseIO(data)
		if err != nil {
			return
		}
		back := "read_bytes: " + strconv.FormatUint(s.readBytes, 10) + "\nwrite_bytes: " + strconv.FormatUint(s.writeBytes, 10) + "\n"
		if s2, err := parseIO([]byte(back)); err != nil || s2 != s {
			t.Fatalf("round trip: %+v, %v != %+v", s2, err, s)
		}
	})
}

func FuzzCmdline(f *testing.F) {
	f.Add([]byte("/sbin/init\x00splash\x00"), 256)
	f.Add([]byte("a\xc3\xa9\x00"), 2)
	f.Add([]byte("\xe2\x82\xac\xe2\x82\xac"), 4)
	f.Add([]byte("\x00\x00\x00"), 1)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max %= 1 << 12
		got := appendCmdline(nil, data, max)
		if want := cmdlineRef(data, max); !bytes.Equal(got, want) {
			t.Fatalf("appendCmdline(%q, %d) = %q, want %q", data, max, got, want)
		}
		if len(got) > max && max >= 0 {
			t.Fatalf("%d bytes over the cap %d", len(got), max)
		}
		if bytes.IndexByte(got, 0) >= 0 {
			t.Fatal("NUL left in cmdline")
		}
		// The escaped label never breaks the line or the quoting.
		esc := emit.AppendEscapedBytes(nil, got)
		if bytes.IndexByte(esc, '\n') >= 0 {
			t.Fatal("newline in escaped label")
		}
		for i := 0; i < len(esc); i++ {
			if esc[i] == '\\' {
				i++
				continue
			}
			if esc[i] == '"' {
				t.Fatalf("unescaped quote in %q", esc)
			}
		}
	})
}

func FuzzParseSchedstat(f *testing.F) {
	f.Add([]byte("189130311 10260354 349\n"))
	f.Add([]byte("18446744073709551615 0 1"))
	f.Add([]byte("1 2\n3\n"))
	f.Add([]byte("1 -2 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		s, err := parseSchedstat(data)
		if !bytes.Equal(in, data) {
			t.Fatal("parseSchedstat modified its input")
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line 1: ") {
				t.Fatalf("error without its line: %v", err)
			}
			return
		}
		back := strconv.FormatUint(s.runtime, 10) + " " + strconv.FormatUint(s.runDelay, 10) + " " + strconv.FormatUint(s.pcount, 10) + "\n"
		if s2, err := parseSchedstat([]byte(back)); err != nil || s2 != s {
			t.Fatalf("round trip %q: %+v, %v; want %+v", back, s2, err, s)
		}
	})
}

// FuzzParseCounters: the counters discovery reads are non-negative and
// parsed only from digits; anything else is refused, never a panic.
func FuzzParseCounters(f *testing.F) {
	f.Add([]byte("0.10 0.88 1.71 1/102 6867\n"))
	f.Add([]byte("cpu 1\nprocesses 4242\nprocs_running 1\n"))
	f.Add([]byte("1 2 3 4/ 5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if running, tasks, last, ok := parseLoadavgPIDs(data); ok && (running < 0 || tasks < 0 || last < 0) {
			t.Fatalf("parseLoadavgPIDs(%q) = %d, %d, %d", data, running, tasks, last)
		}
		if n, ok := parseForks(data); ok && n < 0 {
			t.Fatalf("parseForks(%q) = %d", data, n)
		}
	})
}

func FuzzParseReclaim(f *testing.F) {
	f.Add([]byte(vmstatText(1000)))
	f.Add([]byte("pgscan_kswapd 1\npswpout"))
	f.Add([]byte("pgscan 18446744073709551615\n"))
	f.Add([]byte("pgscan_direct -3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		sum, ok := parseReclaim(data)
		if !bytes.Equal(in, data) {
			t.Fatal("parseReclaim modified its input")
		}
		if !ok {
			return
		}
		// One more counter line moves the sum by its value.
		more := append(bytes.Clone(data), "\npswpout 5\n"...)
		sum2, ok2 := parseReclaim(more)
		if !ok2 || sum2 != sum+5 {
			t.Fatalf("with a pswpout line of 5: %d, %v; want %d, true", sum2, ok2, sum+5)
		}
	})
}
