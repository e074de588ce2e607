package main

import (
	"bytes"
	"compress/gzip"
	le "encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// relayDiskConfig gives the relays of the disk tests several small
// segments.
const relayDiskConfig = relayShipConfig + "wal: {segment_bytes: 64KiB}\n"

// TestRelayDamagedLog damages the relay's write-ahead log between runs, as
// a crash of the machine or a failing disk would, while no upstream is
// reachable (--upstream is a closed port), and checks what the next run
// recovers:
//
//   - a torn tail, the last segment cut in the middle of its last record:
//     the relay gets ready, holds every complete record, appends after
//     them, and forwards all of them once restarted with VictoriaMetrics
//     as upstream; the cut record is cut away;
//   - bytes flipped in the middle of an older segment: the relay gets
//     ready, procfleet_spool_corrupt_total is 1, its log names the segment,
//     and every record but the damaged one and the rest of its segment
//     (there is no resync) reaches VictoriaMetrics;
//   - bytes flipped in the middle of the last segment: as above, and the
//     bodies accepted after the restart go to a new segment, not after the
//     damage, and arrive too.
func TestRelayDamagedLog(t *testing.T) {
	vm := testenv.StartVM(t, "-dedup.minScrapeInterval=1ms", "-search.disableCache")
	closed := "http://" + testenv.FreeAddr(t) + "/api/v1/import/prometheus"

	t.Run("torn tail", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "wal")
		r := newRelay(t, dir, relayDiskConfig, closed)
		g := newLoadGen(t, r.importURL(), "relay_torn_sample")
		fillSegments(t, r, g, dir, 4, 3)
		recs := walRecords(t, dir)
		last := recs[len(recs)-1]
		if last.seg != recs[len(recs)-2].seg {
			t.Fatalf("the last segment holds one record; want complete ones before the torn one")
		}
		cut := last.off + walHeader + int64(last.length/2)
		fi, err := os.Stat(last.seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(last.seg, cut); err != nil {
			t.Fatal(err)
		}
		r.start()
		r.waitReady()
		if v := r.mustMetric("procfleet_spool_records"); int(v) != len(recs)-1 {
			t.Errorf("after the torn tail: %v records pending; want %d", v, len(recs)-1)
		}
		if v := r.mustMetric("procfleet_spool_corrupt_total"); v != 0 {
			t.Errorf("a torn tail counted as corruption: procfleet_spool_corrupt_total %v", v)
		}
		if want := fmt.Sprintf("torn_bytes_cut=%d", cut-last.off); !strings.Contains(r.log(), want) {
			t.Errorf("the relay's log lacks %q", want)
		}
		for range 10 {
			if b := g.postOne(0, 0); b.outcome != accepted {
				t.Fatalf("after recovery: HTTP %d %q", b.status, b.answer)
			}
		}
		r.kill()
		r.upstream = vm.ImportURL
		r.start()
		r.waitReady()
		r.waitDrained(30 * time.Second)
		s := g.verify(vm, g.body(last.worker, last.first))
		t.Logf("%d bodies in %d segments, the last cut at byte %d of %d; %d samples forwarded",
			s.accepted, len(segmentsOf(recs)), cut, fi.Size(), s.present)
	})

	t.Run("corrupt segment", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "wal")
		r := newRelay(t, dir, relayDiskConfig, closed)
		g := newLoadGen(t, r.importURL(), "relay_corrupt_sample")
		fillSegments(t, r, g, dir, 4, 0)
		recs := walRecords(t, dir)
		segs := segmentsOf(recs)
		victim := segs[1] // older than the last
		in, lost := damageMiddle(t, g, recs, victim)
		r.upstream = vm.ImportURL
		r.start()
		r.waitReady()
		if v := r.mustMetric("procfleet_spool_corrupt_total"); v != 1 {
			t.Errorf("procfleet_spool_corrupt_total %v; want 1", v)
		}
		r.waitDrained(30 * time.Second)
		var warned bool
		for l := range strings.Lines(r.log()) {
			warned = warned || strings.Contains(l, "damaged") && strings.Contains(l, filepath.Base(victim))
		}
		if !warned {
			t.Errorf("no log line names the damaged segment %s:\n%s", filepath.Base(victim), r.log())
		}
		s := g.verify(vm, lost...)
		t.Logf("%d bodies in %d segments; flipped bytes in record %d of %d of %s: %d bodies lost with it, %d samples forwarded",
			s.accepted, len(segs), len(in)/2+1, len(in), filepath.Base(victim), len(lost), s.present)
	})

	t.Run("corrupt last segment", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "wal")
		r := newRelay(t, dir, relayDiskConfig, closed)
		g := newLoadGen(t, r.importURL(), "relay_corrupt_last_sample")
		fillSegments(t, r, g, dir, 2, 6)
		recs := walRecords(t, dir)
		segs := segmentsOf(recs)
		victim := segs[len(segs)-1]
		in, lost := damageMiddle(t, g, recs, victim)
		r.start()
		r.waitReady()
		for range 5 { // they must go to a new segment, not after the damage
			if b := g.postOne(0, 0); b.outcome != accepted {
				t.Fatalf("after recovery: HTTP %d %q", b.status, b.answer)
			}
		}
		r.kill()
		r.upstream = vm.ImportURL
		r.start()
		r.waitReady()
		if v := r.mustMetric("procfleet_spool_corrupt_total"); v != 1 {
			t.Errorf("procfleet_spool_corrupt_total %v; want 1", v)
		}
		r.waitDrained(30 * time.Second)
		s := g.verify(vm, lost...)
		t.Logf("%d bodies; flipped bytes in record %d of %d of the last segment %s: %d bodies lost with it, %d samples forwarded",
			s.accepted, len(in)/2+1, len(in), filepath.Base(victim), len(lost), s.present)
	})
}

// damageMiddle flips bytes in the middle record of segment victim and
// returns the segment's records and the bodies lost with the damage: the
// damaged record's and those after it in the segment.
func damageMiddle(t *testing.T, g *loadGen, recs []walRecord, victim string) (in []walRecord, lost []genBody) {
	t.Helper()
	for _, rec := range recs {
		if rec.seg == victim {
			in = append(in, rec)
		}
	}
	hit := in[len(in)/2]
	flipBytes(t, victim, hit.off+walHeader+int64(hit.length/2), 4)
	for _, rec := range in[len(in)/2:] {
		lost = append(lost, g.body(rec.worker, rec.first))
	}
	return in, lost
}

// TestRelayFullDisk runs the relay on a 1MiB tmpfs with wal.max_bytes
// (16MiB) above it and VictoriaMetrics down, and posts from two clients
// until the disk is full: every refusal is a clear 503 that says the body
// cannot be stored and why (ENOSPC), or a 429, never a dropped connection;
// the relay keeps running and /healthz answers 200; killed and restarted
// on the full disk it recovers every accepted body; once VictoriaMetrics is
// back every accepted body arrives, nothing of a refused one does, and the
// space freed takes bodies again.
func TestRelayFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a 1MiB tmpfs for the relay's data dir (needs root with CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	vm := testenv.StartVM(t, "-dedup.minScrapeInterval=1ms", "-search.disableCache")
	vm.Kill() // down from the start
	r := newRelay(t, dir, relayShipConfig+"wal: {segment_bytes: 64KiB, max_bytes: 16MiB}\nimport: {max_body_bytes: 1MiB}\n", vm.ImportURL)
	r.start()
	r.waitReady()
	g := newLoadGen(t, r.importURL(), "relay_full_sample")
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			refusals := 0
			for range 1000 {
				if b := g.postOne(w, 200); b.outcome != accepted {
					if refusals++; refusals == 5 {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	s := g.counts()
	if s.refused == 0 {
		t.Fatalf("%d bodies accepted on a 1MiB disk and none refused", s.accepted)
	}
	var first *genBody
	g.mu.Lock()
	for _, b := range g.bodies {
		full := b.status == 503 && strings.Contains(b.answer, "cannot store") && strings.Contains(b.answer, "no space left on device")
		if b.outcome != accepted && !full && b.status != 429 {
			t.Errorf("refusal on a full disk: %s, HTTP %d %q; want 503 naming ENOSPC, or 429", b.outcome, b.status, b.answer)
		}
		if b.outcome != accepted && first == nil {
			first = &b
		}
	}
	g.mu.Unlock()
	if err := getErr("http://" + r.addr + "/healthz"); err != nil || !r.running() {
		t.Fatalf("relay not alive on a full disk: %v", err)
	}
	if v := r.mustMetric(`procfleet_relay_rejected_total{reason="wal_error"}`) + r.mustMetric(`procfleet_relay_rejected_total{reason="wal_full"}`); int(v) != s.refused {
		t.Errorf("procfleet_relay_rejected_total wal_error+wal_full %v; want %d", v, s.refused)
	}

	// A crash on a full disk: the relay must recover its log there.
	pending := r.mustMetric("procfleet_spool_records")
	r.kill()
	r.start()
	r.waitReady()
	if v := r.mustMetric("procfleet_spool_records"); v != pending || int(v) != s.accepted {
		t.Errorf("after a restart on the full disk: %v records pending; want %v, one per accepted body (%d)", v, pending, s.accepted)
	}

	vm.Restart(t)
	drain := r.waitDrained(30 * time.Second)
	g.verify(vm)
	if b := g.postOne(0, 200); b.outcome != accepted {
		t.Fatalf("after the log drained the disk has room, yet: %s HTTP %d %q", b.outcome, b.status, b.answer)
	}
	r.waitDrained(30 * time.Second)
	s = g.verify(vm)
	t.Logf("%d bodies (%d samples) accepted on 1MiB, %d refused, first: HTTP %d %q; drained %s after VictoriaMetrics came back",
		s.accepted, s.acceptedSamples, s.refused, first.status, first.answer, drain.Round(time.Millisecond))
}

// fillSegments posts bodies through r, started for it, until dir holds
// segments segment files, then extra more, and kills r. Every body must be
// accepted.
func fillSegments(t *testing.T, r *relayProc, g *loadGen, dir string, segments, extra int) {
	t.Helper()
	r.start()
	r.waitReady()
	post := func(n int) {
		t.Helper()
		if b := g.postOne(0, 200); b.outcome != accepted {
			t.Fatalf("body %d: %s, HTTP %d %q", n, b.outcome, b.status, b.answer)
		}
	}
	n := 0
	for ; ; n++ {
		post(n)
		m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		if len(m) >= segments {
			break
		}
		if n == 1000 {
			t.Fatalf("%d bodies make %d segments", n, len(m))
		}
	}
	for range extra {
		n++
		post(n)
	}
	r.kill()
}

// body returns the recorded body whose first sample is first of worker.
func (g *loadGen) body(worker, first int) genBody {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.bodies {
		if b.worker == worker && b.first == first {
			return b
		}
	}
	g.t.Fatalf("no body starts with sample %d of worker %d", first, worker)
	return genBody{}
}

// walHeader is the size of a record header of the log (agent/spool):
// CRC32-C, payload length, creation time.
const walHeader = 16

// walRecord is one record of the relay's log on disk.
type walRecord struct {
	seg           string // segment file
	off           int64  // of the header
	length        int    // of the payload
	worker, first int    // the load body it holds
}

// walRecords reads every record of the segment files in dir, in order,
// and tells which load body each holds, from its first sample. It reads
// the relay's record payload (agent/ship.appendRecord): version, flags
// (bit 0: plain), uvarint samples, uvarint query length, query, body.
func walRecords(t *testing.T, dir string) []walRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files) // %016x names sort by first sequence number
	var out []walRecord
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+walHeader <= len(data); {
			n := int(le.LittleEndian.Uint32(data[off+4:]))
			p := data[off+walHeader : off+walHeader+n]
			w, first := recordFirstSample(t, p)
			out = append(out, walRecord{seg: f, off: int64(off), length: n, worker: w, first: first})
			off += walHeader + n
		}
	}
	if len(out) == 0 {
		t.Fatalf("no record in %s", dir)
	}
	return out
}

// recordFirstSample returns the worker and sample index of the first line
// of a stored import body.
func recordFirstSample(t *testing.T, p []byte) (int, int) {
	t.Helper()
	plain := p[1]&1 != 0
	rest := p[2:]
	_, n := le.Uvarint(rest)
	rest = rest[n:]
	ql, n := le.Uvarint(rest)
	body := rest[n+int(ql):]
	if !plain {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	line, _, _ := bytes.Cut(body, []byte("\n"))
	s, err := testenv.ParseSamples(line)
	if err != nil || len(s) != 1 {
		t.Fatalf("stored body starts with %q: %v", line, err)
	}
	w, err := strconv.Atoi(s[0].Labels["w"])
	if err != nil {
		t.Fatal(err)
	}
	return w, int(s[0].Value)
}

// segmentsOf returns the segment files of recs, in order.
func segmentsOf(recs []walRecord) []string {
	var segs []string
	for _, r := range recs {
		if len(segs) == 0 || segs[len(segs)-1] != r.seg {
			segs = append(segs, r.seg)
		}
	}
	return segs
}

// flipBytes inverts n bytes of file at off.
func flipBytes(t *testing.T, file string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
