package hostgen

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// FuzzSplitFields checks the field splitters against strings.Fields, whose
// rule node_exporter and procfs apply.
func FuzzSplitFields(f *testing.F) {
	for _, s := range []string{"", " a  b\t c\n", "a\u00a0b", "a\u0085b\u2003c", "\xffa b", "x\ry\vz\fw", "         eight  spaces"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want := strings.Fields(string(line))
		got := splitFields(line, nil)
		if len(got) != len(want) {
			t.Fatalf("splitFields(%q) = %q, want %q", line, got, want)
		}
		for i := range got {
			if string(got[i]) != want[i] {
				t.Fatalf("splitFields(%q) = %q, want %q", line, got, want)
			}
		}
		a, b, ok := firstTwoFields(line)
		if ok != (len(want) >= 2) || ok && (string(a) != want[0] || string(b) != want[1]) {
			t.Fatalf("firstTwoFields(%q) = %q, %q, %v; want %q", line, a, b, ok, want)
		}
	})
}

// FuzzAppendUints checks the one-pass counter parser against splitting
// with strings.Fields and parsing with strconv.ParseUint: where it takes a
// line, it must give what they give.
func FuzzAppendUints(f *testing.F) {
	for _, s := range []string{"1 2 3", "  18446744073709551615\t0 ", "18446744073709551616", "1 x 2", "01 2\u00a03", "99999999999999999999 1"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, line []byte, max int) {
		max = max%32 + 1
		if max < 1 {
			max += 32
		}
		got, rest, ok := appendUints(nil, line, max)
		fields := strings.Fields(string(line))
		if !ok {
			if len(got) > len(fields) {
				t.Fatalf("appendUints(%q) gave up after %d values of %d fields", line, len(got), len(fields))
			}
			return
		}
		if want := min(max, len(fields)); len(got) != want {
			t.Fatalf("appendUints(%q, %d) = %v, want %d values", line, max, got, want)
		}
		for i, u := range got {
			want, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil || u != want {
				t.Fatalf("appendUints(%q) value %d = %d, strconv says %d, %v", line, i, u, want, err)
			}
		}
		if !bytes.HasSuffix(line, rest) || len(got) < len(fields) && strings.Fields(string(rest))[0] != fields[len(got)] {
			t.Fatalf("appendUints(%q) rest %q after %d values", line, rest, len(got))
		}
	})
}

func TestNumberParsersLikeStrconv(t *testing.T) {
	for _, in := range []string{"", "0", "7", "010", "0x1f", "1_0", "-3", "+4", "9223372036854775807", "9223372036854775808",
		"18446744073709551615", "18446744073709551616", "00000000000000000000001", "1e3", " 1"} {
		u, err := strconv.ParseUint(in, 0, 64)
		gu, gerr := parseUintBase0([]byte(in))
		if (err == nil) != (gerr == nil) || err == nil && u != gu {
			t.Errorf("parseUintBase0(%q) = %d, %v; strconv %d, %v", in, gu, gerr, u, err)
		}
		i, err := strconv.ParseInt(in, 0, 64)
		gi, gerr := parseIntBase0([]byte(in))
		if (err == nil) != (gerr == nil) || err == nil && i != gi {
			t.Errorf("parseIntBase0(%q) = %d, %v; strconv %d, %v", in, gi, gerr, i, err)
		}
		u, err = strconv.ParseUint(in, 10, 64)
		gu, gerr = parseUint([]byte(in))
		if (err == nil) != (gerr == nil) || err == nil && u != gu {
			t.Errorf("parseUint(%q) = %d, %v; strconv %d, %v", in, gu, gerr, u, err)
		}
		_, err = strconv.Atoi(in)
		if isAtoi([]byte(in)) != (err == nil) {
			t.Errorf("isAtoi(%q) = %v, strconv.Atoi error %v", in, !(err == nil), err)
		}
	}
}

func TestNextLineLikeScanLines(t *testing.T) {
	var got []string
	for data := []byte("a\r\nb\n\r\n\nc\r"); len(data) > 0; {
		var line []byte
		line, data = nextLine(data)
		got = append(got, string(line))
	}
	if want := []string{"a", "b", "", "", "c"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

func TestRowCache(t *testing.T) {
	var c rowCache[int]
	if _, hit := c.at(1, []byte("a")); hit {
		t.Fatal("hit in an empty cache")
	}
	v, _ := c.at(1, []byte("a"))
	*v = 5
	if v, hit := c.at(1, []byte("a")); !hit || *v != 5 {
		t.Fatalf("at(1, a) = %d, %v; want 5, true", *v, hit)
	}
	if _, hit := c.at(0, []byte("")); hit {
		t.Fatal("an unset row hit on an empty key")
	}
	if v, rest, ok := c.lead(1, []byte("a \t7")); !ok || *v != 5 || string(rest) != " \t7" {
		t.Fatalf("lead(1, \"a \\t7\") = %v, %q, %v", v, rest, ok)
	}
	for _, line := range []string{"ab 7", "a", "a\u00a07", " a 7"} {
		if _, _, ok := c.lead(1, []byte(line)); ok {
			t.Errorf("lead(1, %q) took a line whose first field is not a", line)
		}
	}
	if _, hit := c.at(1, []byte("b")); hit {
		t.Fatal("hit for another key")
	}
	c.truncate(1)
	if len(c) != 1 {
		t.Fatalf("truncate(1) left %d rows", len(c))
	}
}
