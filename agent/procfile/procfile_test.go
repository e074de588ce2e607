package procfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseUint(t *testing.T) {
	f := func(in string, want uint64, ok bool) {
		t.Helper()
		got, err := ParseUint([]byte(in))
		if (err == nil) != ok || got != want {
			t.Fatalf("ParseUint(%q) = %d, %v; want %d, ok=%v", in, got, err, want, ok)
		}
	}
	f("0", 0, true)
	f("18446744073709551615", 1<<64-1, true)
	f("18446744073709551616", 0, false)
	f("", 0, false)
	f("12a", 0, false)
	f("-1", 0, false)
}

func TestParseInt(t *testing.T) {
	f := func(in string, want int64, ok bool) {
		t.Helper()
		got, err := ParseInt([]byte(in))
		if (err == nil) != ok || got != want {
			t.Fatalf("ParseInt(%q) = %d, %v; want %d, ok=%v", in, got, err, want, ok)
		}
	}
	f("-9223372036854775808", -1<<63, true)
	f("9223372036854775807", 1<<63-1, true)
	f("9223372036854775808", 0, false)
	f("+5", 5, true)
	f("-", 0, false)
}

func TestFieldsAndLines(t *testing.T) {
	got := Fields([]byte("  cpu0 1\t2   3 "), nil)
	if len(got) != 4 || string(got[0]) != "cpu0" || string(got[3]) != "3" {
		t.Fatalf("Fields = %q", got)
	}
	data := []byte("a\nb\n\nc")
	var lines []string
	for len(data) > 0 {
		var l []byte
		l, data = NextLine(data)
		lines = append(lines, string(l))
	}
	if strings.Join(lines, "|") != "a|b||c" {
		t.Fatalf("lines = %q", lines)
	}
}

func TestReaderGrows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	want := strings.Repeat("x", 10000)
	if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	r := NewReader(16)
	got, err := r.Read(p)
	if err != nil || string(got) != want {
		t.Fatalf("Read = %d bytes, %v", len(got), err)
	}
	if _, err := r.Read(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Read of a missing file succeeded")
	}
}

func TestReaderProcSelfStat(t *testing.T) {
	r := NewReader(0)
	got, err := r.Read("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if len(got) == 0 || got[len(got)-1] != '\n' {
		t.Fatalf("/proc/self/stat read as %q", got)
	}
}

// Multi-record seq files hand out about a page per read: ReadFullZ must
// read them whole.
func TestReadFullZMultiPageSeqFile(t *testing.T) {
	const path = "/proc/kallsyms"
	want, err := os.ReadFile(path)
	if err != nil || len(want) < 64<<10 {
		t.Skipf("%s unreadable or small here (%d bytes, %v): this test needs a procfs with it", path, len(want), err)
	}
	r := NewReader(1 << 20)
	got, err := r.ReadFullZ(append([]byte(path), 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadFullZ(%s) returned %d bytes, os.ReadFile %d", path, len(got), len(want))
	}
}
