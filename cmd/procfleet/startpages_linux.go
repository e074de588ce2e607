package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startPagesDelay is how long after its start an agent releases the pages
// of its executable that its start touched (releaseExePages): by then it
// has read its config, built its generators, scanned and shipped, so that
// what it touches again is what it runs with.
const startPagesDelay = 5 * time.Second

// releaseStartPagesAfter calls releaseExePages once, d from now, unless
// ctx is done first, and logs what it released.
func releaseStartPagesAfter(ctx context.Context, d time.Duration, log *slog.Logger) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	before, after, err := releaseExePages()
	if err != nil {
		log.Warn("cannot release the executable's start-up pages", "err", err)
		return
	}
	log.Debug("released the executable's start-up pages", "resident_before", before, "resident_after", after)
}

// releaseExePages unmaps from this process the pages of its executable's
// read-only mappings (code, read-only data, the function tables) with
// madvise(MADV_DONTNEED), and returns the resident bytes of those mappings
// before and just after.
//
// Most of a Go binary's resident memory is its own file, mapped: at start
// every package's initialiser runs (gRPC, protobuf registries, the etcd
// client, cobra's command tree), and the kernel maps 64 KiB around each
// page touched, so that the agent holds 16 MiB of its 21 MiB binary of
// which it then uses about 8 (docs/performance.md). For a read-only
// private file mapping MADV_DONTNEED only drops the page table entries:
// the pages stay in the page cache, and the next access maps them again
// with a minor fault, so the process keeps the pages it uses and gives up
// the ones only its start needed. Writable mappings (the data segment,
// whose pages this process has written) are never touched: dropping them
// would reset variables to the file's values.
func releaseExePages() (before, after int64, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return 0, 0, fmt.Errorf("cannot stat /proc/self/exe: %w", err)
	}
	maps, err := exeMappings("/proc/self/smaps", st.Ino)
	if err != nil {
		return 0, 0, err
	}
	if len(maps) == 0 {
		return 0, 0, fmt.Errorf("no read-only mapping of the executable (inode %d) in /proc/self/smaps", st.Ino)
	}
	for _, m := range maps {
		before += m.rss
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); errno != 0 {
			return 0, 0, fmt.Errorf("madvise %#x-%#x: %w", m.start, m.end, errno)
		}
	}
	maps, err = exeMappings("/proc/self/smaps", st.Ino)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range maps {
		after += m.rss
	}
	return before, after, nil
}

// exeMapping is one read-only private mapping of the executable.
type exeMapping struct {
	start, end uintptr
	rss        int64 // resident bytes
}

// exeMappings returns the read-only private mappings of the file with
// inode ino listed in smaps (/proc/PID/smaps).
func exeMappings(smaps string, ino uint64) ([]exeMapping, error) {
	f, err := os.Open(smaps)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []exeMapping
	cur := -1 // index in out of the mapping whose fields follow, or -1
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if rest, ok := strings.CutPrefix(line, "Rss:"); ok {
			if cur >= 0 {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s: %q: %w", smaps, line, err)
				}
				out[cur].rss = kb << 10
			}
			continue
		}
		m, ok := parseExeMapping(line, ino)
		if ok {
			out = append(out, m)
			cur = len(out) - 1
		} else if isMappingHeader(line) {
			cur = -1
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", smaps, err)
	}
	return out, nil
}

// parseExeMapping parses a mapping header line of smaps ("start-end perms
// offset dev inode path") and reports whether it maps inode ino read-only
// and private ("r-xp", "r--p").
func parseExeMapping(line string, ino uint64) (exeMapping, bool) {
	f := strings.Fields(line)
	if len(f) < 6 || len(f[1]) != 4 || f[1][0] != 'r' || f[1][1] != '-' || f[1][3] != 'p' {
		return exeMapping{}, false
	}
	if n, err := strconv.ParseUint(f[4], 10, 64); err != nil || n != ino {
		return exeMapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return exeMapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return exeMapping{}, false
	}
	return exeMapping{start: uintptr(start), end: uintptr(end)}, true
}

// isMappingHeader reports whether an smaps line starts a mapping (its
// first field is "start-end" in hex) rather than giving one of its fields.
func isMappingHeader(line string) bool {
	first, _, _ := strings.Cut(line, " ")
	lo, hi, ok := strings.Cut(first, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(lo, 16, 64)
	_, err2 := strconv.ParseUint(hi, 16, 64)
	return err1 == nil && err2 == nil
}
