package procgen

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseStat(t *testing.T) {
	sl := func(pid int, comm string, state byte, ppid int, utime, start uint64) string {
		return statLine(pid, comm, state, ppid, utime, 10, start)
	}
	f := func(name, in string, want statFields, wantErr string) {
		t.Helper()
		got, err := parseStat([]byte(in))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%s: err = %v, want it to contain %q", name, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		gc, wc := got.comm, want.comm
		got.comm, want.comm = nil, nil
		if string(gc) != string(wc) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q %+v\nwant %q %+v", name, gc, got, wc, want)
		}
	}
	base := statFields{state: 'S', ppid: 1, flags: 4194560, minflt: 100, majflt: 2, utime: 150, stime: 10, numThreads: 1, starttime: 4200, vsize: 172032000, rss: 2750}
	with := func(comm string, mod func(*statFields)) statFields {
		s := base
		s.comm = []byte(comm)
		if mod != nil {
			mod(&s)
		}
		return s
	}
	f("plain", sl(7, "bash", 'S', 1, 150, 4200), with("bash", nil), "")
	f("space", sl(7, "Web Content", 'S', 1, 150, 4200), with("Web Content", nil), "")
	f("parens", sl(7, "(sd-pam)", 'S', 1, 150, 4200), with("(sd-pam)", nil), "")
	f("unbalanced", sl(7, "a) b (", 'S', 1, 150, 4200), with("a) b (", nil), "")
	f("quotes", sl(7, `q"u\o'te`, 'S', 1, 150, 4200), with(`q"u\o'te`, nil), "")
	f("newline in comm", sl(7, "a\nb)", 'S', 1, 150, 4200), with("a\nb)", nil), "")
	f("non-utf8", sl(7, "x\xff\xfe", 'S', 1, 150, 4200), with("x\xff\xfe", nil), "")
	f("empty comm", sl(7, "", 'R', 0, 150, 4200), with("", func(s *statFields) { s.state, s.ppid = 'R', 0 }), "")
	f("near 2^64", sl(7, "h", 'R', 1, 18446744073709551615, 4200),
		with("h", func(s *statFields) { s.state, s.utime = 'R', 18446744073709551615 }), "")
	f("second line ignored", sl(7, "c", 'S', 1, 150, 4200)+"#!/bin/cat /proc/self/stat\n", with("c", nil), "")
	f("no parens", "7 bash S 1 2 3", statFields{}, "no comm")
	f("reversed parens", "7 )bash( S 1 2 3", statFields{}, "no comm")
	f("truncated", "7 (bash) S 1 1 1 0 -1 4194560 100 0 2 0 150", statFields{}, "truncated")
	f("empty", "", statFields{}, "no comm")
	f("long state", strings.Replace(sl(7, "b", 'S', 1, 150, 4200), ") S ", ") SS ", 1), statFields{}, "one letter")
	f("bad utime", strings.Replace(sl(7, "b", 'S', 1, 150, 4200), " 150 ", " 1x0 ", 1), statFields{}, "field 14")
	f("overflow", strings.Replace(sl(7, "b", 'S', 1, 150, 4200), " 150 ", " 18446744073709551616 ", 1), statFields{}, "overflows")
	f("negative ppid", sl(7, "b", 'S', -1, 150, 4200), with("b", func(s *statFields) { s.ppid = -1 }), "")
}

func TestParseStatus(t *testing.T) {
	f := func(name, in string, want statusFields, wantErr string) {
		t.Helper()
		got, err := parseStatus([]byte(in))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%s: err = %v, want it to contain %q", name, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
	f("full", statusText("x", 1000, 5, 1), statusFields{uid: 1000, voluntary: 5, nonvoluntary: 1, hasUID: true, hasCtxt: true}, "")
	f("spaces", "Name:   k\nUid:\t0\t0\t0\t0\nvoluntary_ctxt_switches:  7\nnonvoluntary_ctxt_switches: 8",
		statusFields{uid: 0, voluntary: 7, nonvoluntary: 8, hasUID: true, hasCtxt: true}, "")
	f("no ctxt", "Uid:\t5\t5\t5\t5\n", statusFields{uid: 5, hasUID: true}, "")
	f("max", statusText("x", 4294967295, 18446744073709551615, 18446744073709551614),
		statusFields{uid: 4294967295, voluntary: 18446744073709551615, nonvoluntary: 18446744073709551614, hasUID: true, hasCtxt: true}, "")
	f("no uid", "Name:\tx\nvoluntary_ctxt_switches:\t1\n", statusFields{}, "no Uid")
	f("bad uid", "Name:\tx\nUid:\tabc\t0\n", statusFields{}, "line 2")
	f("bad ctxt", "Uid:\t1\t1\t1\t1\nvoluntary_ctxt_switches:\t-1\n", statusFields{}, "line 2")
	f("empty uid", "Uid:\n", statusFields{}, "line 1")
	f("empty", "", statusFields{}, "no Uid")
}

func TestParseIO(t *testing.T) {
	f := func(name, in string, want ioFields, wantErr string) {
		t.Helper()
		got, err := parseIO([]byte(in))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%s: err = %v, want it to contain %q", name, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
	f("full", "rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: -1024\n",
		ioFields{4096, 8192}, "")
	f("max", "read_bytes: 18446744073709551615\nwrite_bytes: 18446744073709551614", ioFields{18446744073709551615, 18446744073709551614}, "")
	f("missing write", "read_bytes: 1\n", ioFields{}, "truncated")
	f("bad", "rchar: 1\nread_bytes: x\nwrite_bytes: 1\n", ioFields{}, "line 2")
	f("empty", "", ioFields{}, "truncated")
}

func TestParseBtime(t *testing.T) {
	if v, err := parseBtime([]byte("cpu 1 2\nbtime 1418183276\nprocesses 3\n")); err != nil || v != 1418183276 {
		t.Errorf("got %d, %v", v, err)
	}
	if _, err := parseBtime([]byte("cpu 1 2\n")); err == nil {
		t.Error("no btime: want error")
	}
	if _, err := parseBtime([]byte("cpu 1\nbtime x\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad btime: err = %v", err)
	}
}

func TestAppendCmdline(t *testing.T) {
	f := func(in string, max int, want string) {
		t.Helper()
		got := string(appendCmdline([]byte("x"), []byte(in), max))
		if got != "x"+want {
			t.Errorf("appendCmdline(%q, %d) = %q, want %q", in, max, got[1:], want)
		}
	}
	f("", 256, "")
	f("\x00", 256, "")
	f("/sbin/init\x00splash\x00", 256, "/sbin/init splash")
	f("a\x00\x00b\x00\x00\x00", 256, "a  b")
	f("no-trailing-nul", 256, "no-trailing-nul")
	f("abcdef\x00", 3, "abc")
	f("ab\x00def", 3, "ab ")
	f("aé", 2, "a")  // é is 2 bytes: not split
	f("aé", 3, "aé") // fits
	f("a€b", 3, "a") // € is 3 bytes
	f("a\U0001F600", 4, "a")
	f("a\xff\xfe\xfd", 2, "a\xff") // not UTF-8: byte cut
	f("\x80\x80\x80\x80\x80", 2, "\x80\x80")
	f("abc", 0, "")
	f("abc", -1, "")
}

func TestStateName(t *testing.T) {
	want := map[byte]string{'R': "running", 'S': "sleeping", 'D': "disk-sleep", 'Z': "zombie", 'T': "stopped",
		't': "tracing-stop", 'X': "dead", 'x': "dead", 'I': "idle", 'P': "parked", 'K': "wakekill", 'W': "waking", '?': "unknown"}
	for c, w := range want {
		if got := stateName(c); got != w {
			t.Errorf("stateName(%q) = %q, want %q", c, got, w)
		}
	}
}

func TestParseDirent(t *testing.T) {
	rec := func(ino uint64, name string) []byte {
		n := 19 + len(name) + 1
		n = (n + 7) &^ 7
		b := make([]byte, n)
		binary.NativeEndian.PutUint64(b, ino)
		binary.NativeEndian.PutUint16(b[16:], uint16(n))
		copy(b[19:], name)
		return b
	}
	buf := append(append(rec(1, "123"), rec(0, "gone")...), rec(5, "self")...)
	var names []string
	for len(buf) > 0 {
		name, n := parseDirent(buf)
		if n == 0 {
			t.Fatalf("malformed at %q", buf)
		}
		if name != nil {
			names = append(names, string(name))
		}
		buf = buf[n:]
	}
	if strings.Join(names, ",") != "123,self" {
		t.Errorf("names = %q", names)
	}
	if _, n := parseDirent([]byte{1, 2, 3}); n != 0 {
		t.Error("short record: want 0")
	}
	bad := rec(1, "x")
	binary.NativeEndian.PutUint16(bad[16:], 200)
	if _, n := parseDirent(bad); n != 0 {
		t.Error("reclen past end: want 0")
	}
}

func TestParsePID(t *testing.T) {
	for in, want := range map[string]int32{"1": 1, "4194304": 4194304, "2147483647": 2147483647} {
		if got, ok := parsePID([]byte(in)); !ok || got != want {
			t.Errorf("parsePID(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "0", "self", "12a", "-1", "2147483648", "99999999999", "net"} {
		if _, ok := parsePID([]byte(in)); ok {
			t.Errorf("parsePID(%q): want false", in)
		}
	}
}

// cmdlineRef is the obvious, allocating version of appendCmdline, as
// procfs's CmdLine followed by strings.Join would build it.
func cmdlineRef(in []byte, max int) []byte {
	s := bytes.ReplaceAll(bytes.TrimRight(in, "\x00"), []byte{0}, []byte{' '})
	if max < 0 {
		max = 0
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && cut > max-3 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = max
	}
	return s[:cut]
}
