package promtext

import (
	"bytes"
	"errors"
	"github.com/procfleet/procfleet/internal/testenv"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/gzip"
)

func TestGzipMultiMember(t *testing.T) {
	f := func(name string, want int, members ...string) {
		t.Helper()
		var body []byte
		for _, m := range members {
			body = append(body, testenv.Gzip(t, m)...)
		}
		n, err := CheckGzip(bytes.NewReader(body), DefaultLimits())
		if err != nil || n != want {
			t.Fatalf("%s: CheckGzip = %d, %v; want %d samples", name, n, err, want)
		}
	}
	f("one member", 1, "a 1\n")
	f("two members", 2, "a 1\n", "b 2\n")
	f("a line across members", 2, "a 1\nb", " 2\n")
	f("empty members", 1, "", "a 1\n", "")
	f("only an empty member", 0, "")

	// A fault in the second member is found on its line of the whole.
	body := append(testenv.Gzip(t, "a 1\nb 2\n"), testenv.Gzip(t, "c 3\nd x\n")...)
	_, err := CheckGzip(bytes.NewReader(body), DefaultLimits())
	var le *LineError
	if !errors.As(err, &le) || le.Line != 4 {
		t.Fatalf("CheckGzip = %v; want a fault on line 4", err)
	}
}

func TestGzipCorrupt(t *testing.T) {
	good := testenv.Gzip(t, strings.Repeat("node_load1 0.5 1700000000000\n", 100))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0xff
		return b
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"plain text", []byte("a 1\n")},
		{"empty", nil},
		{"short header", good[:5]},
		{"truncated data", good[:len(good)/2]},
		{"truncated trailer", good[:len(good)-3]},
		{"bad checksum", flip(len(good) - 8)},
		{"bad size", flip(len(good) - 1)},
		{"reserved block type", func() []byte { b := bytes.Clone(good); b[10] = 0x07; return b }()},
		{"trailing garbage", append(bytes.Clone(good), "a 1\n"...)},
		{"trailing zeros", append(bytes.Clone(good), make([]byte, 16)...)},
	} {
		_, err := CheckGzip(bytes.NewReader(tc.body), DefaultLimits())
		var le *LineError
		if !errors.Is(err, ErrCorruptGzip) || errors.As(err, &le) || errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: CheckGzip = %v; want ErrCorruptGzip only", tc.name, err)
		}
	}
	// Damaged data may inflate to text with a fault before the checksum
	// at the end of the member tells: the first fault found is reported.
	for i := 10; i < len(good)-8; i++ {
		_, err := CheckGzip(bytes.NewReader(flip(i)), DefaultLimits())
		var le *LineError
		if !errors.Is(err, ErrCorruptGzip) && !errors.As(err, &le) {
			t.Fatalf("byte %d flipped: CheckGzip = %v; want ErrCorruptGzip or a LineError", i, err)
		}
	}
}

func TestGzipSourceError(t *testing.T) {
	// A failing connection is not a corrupt body.
	body := testenv.Gzip(t, strings.Repeat("node_load1 0.5 1700000000000\n", 1000))
	boom := errors.New("connection reset")
	for _, src := range []io.Reader{
		io.MultiReader(bytes.NewReader(body[:len(body)/2]), iotest.ErrReader(boom)),
		iotest.ErrReader(boom),
	} {
		_, err := CheckGzip(src, DefaultLimits())
		if !errors.Is(err, boom) || errors.Is(err, ErrCorruptGzip) {
			t.Fatalf("CheckGzip = %v; want the source's error, not ErrCorruptGzip", err)
		}
	}
	// Nor is a body cut short in transport, which net/http reports so.
	src := io.MultiReader(bytes.NewReader(body[:len(body)/2]), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := CheckGzip(src, DefaultLimits()); !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrCorruptGzip) {
		t.Fatalf("CheckGzip = %v; want io.ErrUnexpectedEOF, not ErrCorruptGzip", err)
	}
}

func TestGzipReaderLimit(t *testing.T) {
	body := strings.Repeat("x", 1000)
	compressed := testenv.Gzip(t, body)
	z := NewGzipReader(bytes.NewReader(compressed), 1000)
	got, err := io.ReadAll(z)
	if err != nil || string(got) != body || z.Decompressed() != 1000 {
		t.Fatalf("ReadAll at the limit = %d bytes, %v, %d decompressed", len(got), err, z.Decompressed())
	}
	z.Reset(bytes.NewReader(compressed), 999)
	got, err = io.ReadAll(z)
	if !errors.Is(err, ErrTooLarge) || len(got) != 999 || z.Decompressed() != 1000 {
		t.Fatalf("ReadAll over the limit = %d bytes, %v, %d decompressed", len(got), err, z.Decompressed())
	}
	if n, err2 := z.Read(make([]byte, 10)); n != 0 || err2 != err {
		t.Fatalf("Read after the error = %d, %v; want the same error", n, err2)
	}
	z.Reset(bytes.NewReader(compressed), 0)
	if n, err := z.Read(make([]byte, 10)); n != 0 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read with limit 0 = %d, %v", n, err)
	}
	z.Reset(bytes.NewReader(testenv.Gzip(t, "")), 0)
	if n, err := z.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read of an empty stream with limit 0 = %d, %v; want io.EOF", n, err)
	}
}

// zeroBomb is 1 GiB of zero bytes as 64 gzip members of 16 MiB each,
// about 1 MB in all. One member of 1 GiB is no different to the reader
// (TestGzipBombOneMember), but takes half a minute to compress under
// the race detector.
var zeroBomb = sync.OnceValue(func() []byte { return bomb(make([]byte, 1<<20)) })

// lineBomb is the same for 1 GiB of valid sample lines.
var lineBomb = sync.OnceValue(func() []byte {
	line := `zero{pad="` + strings.Repeat("0", 4000) + `"} 0` + "\n"
	unit := strings.Repeat(line, (1<<20)/len(line))
	return bomb([]byte(unit + strings.Repeat("\n", 1<<20-len(unit))))
})

func bomb(unit []byte) []byte {
	var member bytes.Buffer
	w := gzip.NewWriter(&member)
	for range 16 {
		w.Write(unit)
	}
	w.Close()
	return bytes.Repeat(member.Bytes(), 64)
}

// checkBomb reads a bomb through a GzipReader with limit 32 MiB and
// reports the error, how much was decompressed and read, and how many
// bytes were allocated on the way.
func checkBomb(t *testing.T, body []byte, read func(io.Reader) error) {
	t.Helper()
	const limit = 32 << 20
	lim := DefaultLimits()
	lim.MaxBytes = limit
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	z := NewGzipReader(bytes.NewReader(body), limit)
	err := read(z)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%v after %v: decompressed %d bytes from %d of %d compressed, allocated %d bytes",
		err, elapsed, z.Decompressed(), z.Compressed(), len(body), alloc)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error = %v; want ErrTooLarge", err)
	}
	if z.Decompressed() != limit+1 {
		t.Fatalf("decompressed %d bytes; want the limit and one", z.Decompressed())
	}
	// 1/32 of the bomb inflates to the limit; the reader reads ahead a
	// little.
	if z.Compressed() > int64(len(body))/32+64<<10 {
		t.Fatalf("read %d of %d compressed bytes; want about 1/32", z.Compressed(), len(body))
	}
	if alloc > 4<<20 {
		t.Fatalf("allocated %d bytes; want a few buffers", alloc)
	}
}

func TestGzipBombReader(t *testing.T) {
	checkBomb(t, zeroBomb(), func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
}

func TestGzipBombCheck(t *testing.T) {
	checkBomb(t, lineBomb(), func(r io.Reader) error {
		n, err := Check(r, DefaultLimits())
		line := `zero{pad="` + strings.Repeat("0", 4000) + `"} 0` + "\n"
		if want := 32 * ((1 << 20) / len(line)); n != want {
			t.Errorf("checked %d samples before the limit; want %d", n, want)
		}
		return err
	})
	// Zeros are NUL bytes on one line: Check gives up at the line limit,
	// long before the body limit.
	z := NewGzipReader(bytes.NewReader(zeroBomb()), 32<<20)
	_, err := Check(z, DefaultLimits())
	var le *LineError
	if !errors.As(err, &le) || le.Line != 1 || le.Reason != DefaultLimits().explain(reasonLineTooLong) {
		t.Fatalf("Check of zeros = %v; want line 1 too long", err)
	}
	if z.Decompressed() > 1<<20 {
		t.Fatalf("decompressed %d bytes for a line limit of 256 KiB", z.Decompressed())
	}
}

// TestGzipBombOneMember streams 1 GiB of zeros through one gzip member,
// compressed as the reader asks for it: the compressor must be stopped
// after the reader has seen little more than the limit.
func TestGzipBombOneMember(t *testing.T) {
	const limit = 32 << 20
	pr, pw := io.Pipe()
	var fed int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := gzip.NewWriter(pw)
		zero := make([]byte, 1<<20)
		for fed < 1<<30 {
			if _, err := w.Write(zero); err != nil {
				return
			}
			fed += int64(len(zero))
		}
		pw.CloseWithError(w.Close())
	}()
	z := NewGzipReader(pr, limit)
	_, err := io.Copy(io.Discard, z)
	pr.Close()
	<-done
	t.Logf("%v: decompressed %d bytes from %d compressed; %d MiB fed to the compressor", err, z.Decompressed(), z.Compressed(), fed>>20)
	if !errors.Is(err, ErrTooLarge) || z.Decompressed() != limit+1 {
		t.Fatalf("error = %v after %d bytes; want ErrTooLarge after the limit and one", err, z.Decompressed())
	}
	if fed > 2*limit {
		t.Fatalf("the compressor was fed %d MiB; want little more than the limit", fed>>20)
	}
}
