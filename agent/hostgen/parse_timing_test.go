package hostgen

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse measures the parsers alone, on the fixture files held in
// memory: the part of a generator's cost that is not reading the file nor
// emitting series.
func BenchmarkParse(b *testing.B) {
	read := func(b *testing.B, rel string) []byte {
		b.Helper()
		data, err := os.ReadFile(filepath.Join(benchRoot(b), rel))
		if err != nil {
			b.Skip(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		return data
	}
	b.Run("stat", func(b *testing.B) {
		data := read(b, "stat")
		var v statValues
		var fields [][]byte
		for b.Loop() {
			_ = parseStat(data, "stat", &v, &fields)
		}
	})
	b.Run("meminfo", func(b *testing.B) {
		data := read(b, "meminfo")
		var fields [][]byte
		var cache rowCache[int]
		for b.Loop() {
			_ = parseMeminfo(data, "meminfo", &fields, &cache, func(int, uint64, uint64) {})
		}
	})
	b.Run("vmstat", func(b *testing.B) {
		data := read(b, "vmstat")
		var filter vmstatFilter
		for b.Loop() {
			_ = parseVmstat(data, "vmstat", &filter, func(int, []byte, float64) {})
		}
	})
	b.Run("netdev", func(b *testing.B) { benchLineParser(b, read(b, "net/dev"), parseNetdev) })
	b.Run("diskstats", func(b *testing.B) { benchLineParser(b, read(b, "diskstats"), parseDiskstats) })
	b.Run("interrupts", func(b *testing.B) {
		data := read(b, "interrupts")
		var p interruptsParse
		for b.Loop() {
			_, _ = parseInterrupts(data, "interrupts", &p)
		}
	})
	b.Run("softirqs", func(b *testing.B) {
		data := read(b, "softirqs")
		var p softirqsParse
		for b.Loop() {
			_ = parseSoftirqs(data, "softirqs", &p)
		}
	})
}

// benchLineParser runs a parser of the netdev and diskstats kind, which
// fills a slice of lines and reuses its field buffer, on data.
func benchLineParser[T any](b *testing.B, data []byte, parse func([]byte, string, []T, [][]byte) ([]T, [][]byte, error)) {
	var lines []T
	var fields [][]byte
	for b.Loop() {
		lines, fields, _ = parse(data, "bench", lines, fields)
	}
}
