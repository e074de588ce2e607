package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startPagesDelay is how long after its start an agent releases the pages
// of its executable that its start touched (releaseExePages): by then it
// has read its config, built its generators, scanned and shipped, so that
// what it touches again is what it runs with.
const startPagesDelay = 5 * time.Second

// randomReadFor is how long after the release the executable's read-only
// mappings are marked for random access (MADV_RANDOM): a page the agent
// needs again is read alone, not with the kernel's read-around (128 KiB
// on most disks, up to megabytes on some), whose pages the next faults
// nearby would map too. Then the mappings are advised back to normal:
// the kernel's reclaim ignores the accesses through a mapping marked
// random, and under memory pressure pages the agent reads every second
// would be evicted and read again like pages nobody uses. By then the
// agent has run every path it runs in a minute several times over.
const randomReadFor = 5 * time.Minute

// releaseStartPagesAfter calls releaseExePages once, d from now, and
// advises the mappings back to normal (readNormally) random later, unless
// ctx is done first; it logs what it did.
func releaseStartPagesAfter(ctx context.Context, d, random time.Duration, log *slog.Logger) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	r, err := releaseExePages()
	if err != nil {
		log.Warn("cannot release the executable's start-up pages", "err", err)
		if len(r.maps) == 0 {
			return
		}
	} else {
		log.Debug("released the executable's start-up pages", "resident_before", r.residentBefore, "resident_after", r.residentAfter,
			"cached_before", r.cachedBefore, "cached_after", r.cachedAfter)
	}
	t.Reset(random)
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if err := readNormally(r.maps); err != nil {
		log.Warn("cannot advise the executable's mappings back to normal reads", "err", err)
		return
	}
	log.Debug("the executable's mappings are read normally again")
}

// exeRelease is what releaseExePages did: the mappings it released, their
// resident bytes (mapped in this process) before and after, and the bytes
// of them in the page cache before and after.
type exeRelease struct {
	maps                          []exeMapping
	residentBefore, residentAfter int64
	cachedBefore, cachedAfter     int64
}

// releaseExePages unmaps from this process the pages of its executable's
// read-only mappings (code, read-only data, the function tables) with
// madvise(MADV_DONTNEED), drops from the page cache those no process maps
// any longer (posix_fadvise(POSIX_FADV_DONTNEED) on the executable), and
// marks the mappings for random access (MADV_RANDOM) until readNormally.
//
// Most of a Go binary's resident memory is its own file, mapped: at start
// every package's initialiser runs (gRPC, protobuf registries, the etcd
// client, cobra's command tree), and the kernel maps 64 KiB around each
// page touched, so that the agent holds 16 MiB of its 21 MiB binary of
// which it then uses about 5 (docs/performance.md). For a read-only
// private file mapping MADV_DONTNEED only drops the page table entries:
// the next access maps the page again with a fault. But the kernel maps
// on a fault every page of the page cache within 64 KiB around the one
// faulted (fault-around), whatever the mapping's advice, so that while
// the start's pages stay cached the agent maps back 64 KiB for each page
// it needs. Dropped from the cache, and read one at a time (random
// access), only the pages the agent runs with come back: 5.5 MiB where
// 10 came back before (docs/performance.md). Pages another process maps
// (a relay run from the same file) stay cached; the kernel skips them.
//
// Threads run while this runs, and map again the pages they run into
// between the unmapping and the drop, with their neighbours in the same
// folio of the cache: a second round drops what the first left.
// Writable mappings (the data segment, whose pages this process has
// written) are never touched: dropping them would reset variables to the
// file's values. When the executable cannot be opened, or the drop
// fails, the pages are unmapped all the same and the error says why; a
// file system that keeps its pages in memory (tmpfs) keeps them cached,
// which cachedAfter shows.
func releaseExePages() (r exeRelease, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return r, fmt.Errorf("cannot stat /proc/self/exe: %w", err)
	}
	maps, err := exeMappings("/proc/self/smaps", st.Ino)
	if err != nil {
		return r, err
	}
	if len(maps) == 0 {
		return r, fmt.Errorf("no read-only mapping of the executable (inode %d) in /proc/self/smaps", st.Ino)
	}
	r.residentBefore = residentBytes(maps)
	r.cachedBefore = cachedBytes(maps)
	if err := adviseExe(maps, syscall.MADV_RANDOM); err != nil {
		return r, err
	}
	r.maps = maps
	f, openErr := os.Open("/proc/self/exe")
	for range 2 {
		if err := adviseExe(maps, syscall.MADV_DONTNEED); err != nil {
			return r, err
		}
		if openErr == nil {
			if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
				openErr = fmt.Errorf("posix_fadvise(POSIX_FADV_DONTNEED) of the executable: %w", err)
			}
		}
	}
	if f != nil {
		f.Close()
	}
	after, err := exeMappings("/proc/self/smaps", st.Ino)
	if err != nil {
		return r, err
	}
	r.residentAfter = residentBytes(after)
	r.cachedAfter = cachedBytes(maps)
	if openErr != nil {
		return r, fmt.Errorf("the start-up pages are unmapped but stay in the page cache: %w", openErr)
	}
	return r, nil
}

// readNormally advises the mappings released by releaseExePages back to
// normal access (MADV_NORMAL): read-around on a fault, and the accesses
// counted by the kernel's reclaim.
func readNormally(maps []exeMapping) error {
	return adviseExe(maps, syscall.MADV_NORMAL)
}

// adviseExe calls madvise with advice on each of maps.
func adviseExe(maps []exeMapping, advice int) error {
	for _, m := range maps {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, uintptr(advice)); errno != 0 {
			return fmt.Errorf("madvise(%#x-%#x, %d): %w", m.start, m.end, advice, errno)
		}
	}
	return nil
}

// residentBytes returns the resident bytes of maps as smaps gave them.
func residentBytes(maps []exeMapping) int64 {
	var n int64
	for _, m := range maps {
		n += m.rss
	}
	return n
}

// cachedBytes returns the bytes of maps whose pages are in the page cache
// (mincore), or -1 when mincore fails.
func cachedBytes(maps []exeMapping) int64 {
	page := uintptr(os.Getpagesize())
	var n int64
	for _, m := range maps {
		vec := make([]byte, (m.end-m.start+page-1)/page)
		if len(vec) == 0 {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, m.start, m.end-m.start, uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			return -1
		}
		for _, v := range vec {
			n += int64(v & 1)
		}
	}
	return n * int64(page)
}

// exeMapping is one read-only private mapping of the executable.
type exeMapping struct {
	start, end uintptr
	rss        int64 // resident bytes
	random     bool  // advised for random access (VmFlags "rr")
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
		if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			if cur >= 0 {
				out[cur].random = slices.Contains(strings.Fields(rest), "rr")
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
