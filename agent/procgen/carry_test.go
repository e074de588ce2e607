package procgen

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A scan that carries unchanged processes writes exactly what one that
// builds every series writes: the refreshes as they fall due, the changes
// when a stat changes or the leader runs, nothing of a process gone, and a
// new process in full.
func TestCarryWritesWhatBuildingWrites(t *testing.T) {
	root := newRoot(t)
	files := map[string]string{}
	for _, pid := range []int{30, 31, 32, 34} {
		for k, v := range procFiles(pid, "idle", 'S', 1, 100, 500, "idle\x00") {
			files[k] = v
		}
		files[strconv.Itoa(pid)+"/schedstat"] = "1000 20 7\n"
		files[strconv.Itoa(pid)+"/io"] = ioText(4096, 8192)
	}
	// 34 has four threads: its io is read every scan, so it is not carried.
	files["34/stat"] = strings.Replace(files["34/stat"], " 20 0 1 0 ", " 20 0 4 0 ", 1)
	writeTree(t, root, files)

	carried := newScanner(New(Options{ProcRoot: root}), 3)
	built := newScanner(New(Options{ProcRoot: root}), 3)
	built.g.noCarry = true
	steps := []struct {
		what  string
		write map[string]string
		drop  string
	}{
		{what: "first scan"},
		{what: "second scan: the gate's basis"},
		{what: "unchanged"},
		{what: "unchanged, other refresh phase"},
		{what: "31's stat changes", write: map[string]string{"31/stat": statLine(31, "idle", 'S', 1, 101, 10, 500)}},
		{what: "30's leader ran", write: map[string]string{"30/schedstat": "1500 20 8\n", "30/status": statusText("idle", 1000, 77, 1)}},
		{what: "32 exits", drop: "32"},
		{what: "33 starts", write: procFiles(33, "new", 'R', 1, 1, 900, "new\x00")},
		{what: "34's io changes", write: map[string]string{"34/io": ioText(1, 1)}},
		{what: "unchanged again"},
		{what: "unchanged again, other refresh phase"},
	}
	for _, st := range steps {
		writeTree(t, root, st.write)
		if st.drop != "" {
			if err := os.RemoveAll(filepath.Join(root, st.drop)); err != nil {
				t.Fatal(err)
			}
		}
		got, want := carried.cycle(t), built.cycle(t)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: carrying wrote\n%s\nbuilding wrote\n%s", st.what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if carried.g.carried == 0 {
		t.Fatal("no process was carried")
	}
	if built.g.carried != 0 {
		t.Fatalf("noCarry carried %d processes", built.g.carried)
	}
	t.Logf("%d processes carried over %d scans", carried.g.carried, len(steps))
}

// Carried positions belong to one Scan: a generator scanned into another
// Scan (or after a run it missed) builds its series again.
func TestCarryOnlyOnTheSameScan(t *testing.T) {
	root := newRoot(t)
	files := procFiles(30, "idle", 'S', 1, 100, 500, "idle\x00")
	files["30/schedstat"] = "1000 20 7\n"
	files["30/io"] = ioText(4096, 8192)
	writeTree(t, root, files)
	a := newScanner(New(Options{ProcRoot: root}), 1)
	for range 3 {
		a.cycle(t)
	}
	n := a.g.carried
	if n == 0 {
		t.Fatal("nothing carried in 3 scans of an idle process")
	}
	b := newScanner(a.g, 1) // the same generator, another Scan
	if got := b.cycle(t); len(got) == 0 || a.g.carried != n {
		t.Fatalf("scan into a new Scan: %d lines, %d carried; want every series built", len(got), a.g.carried-n)
	}
	// a's tracker missed a run: its positions are stale.
	a.cycle(t)
	if a.g.carried != n {
		t.Fatalf("carried after a missed run: %d", a.g.carried-n)
	}
}
