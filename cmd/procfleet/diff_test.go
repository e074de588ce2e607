package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLineDiffAgainstGNU checks lineDiff against GNU diff and patch, the
// oracles of the unified format: for hand-picked and random pairs of
// texts, GNU patch turns the old text into the new one with lineDiff's
// hunks, and lineDiff removes and adds as many lines as diff --minimal.
func TestLineDiffAgainstGNU(t *testing.T) {
	for _, tool := range []string{"diff", "patch"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	dir := t.TempDir()
	check := func(name, a, b string) {
		t.Helper()
		oldF, newF := filepath.Join(dir, "old"), filepath.Join(dir, "new")
		if err := os.WriteFile(oldF, []byte(a), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(newF, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		got := lineDiff([]byte(a), []byte(b))
		gnu, _ := exec.Command("diff", "--minimal", "-U3", oldF, newF).Output()
		if count(got) != count(gnu) {
			t.Fatalf("%s: lineDiff changes %v lines, diff --minimal %v\n%s\n--- diff:\n%s", name, count(got), count(gnu), got, gnu)
		}
		if a == b {
			if len(got) != 0 {
				t.Fatalf("%s: same texts, diff %q", name, got)
			}
			return
		}
		patch := "--- old\n+++ new\n" + string(got)
		cmd := exec.Command("patch", "-s", "-o", filepath.Join(dir, "out"), oldF)
		cmd.Stdin = strings.NewReader(patch)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: patch refused lineDiff's output: %v\n%s\n%s", name, err, out, patch)
		}
		out, _ := os.ReadFile(filepath.Join(dir, "out"))
		if string(out) != b {
			t.Fatalf("%s: patched old text is %q, want %q\n%s", name, out, b, patch)
		}
	}
	lines := func(ls ...string) string {
		if len(ls) == 0 {
			return ""
		}
		return strings.Join(ls, "\n") + "\n"
	}
	check("same", lines("a", "b"), lines("a", "b"))
	check("from empty", "", lines("a", "b"))
	check("to empty", lines("a", "b"), "")
	check("one changed", lines("a", "b", "c"), lines("a", "x", "c"))
	check("far apart", lines("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"),
		lines("x", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "y"))
	check("close together", lines("1", "2", "3", "4", "5", "6", "7", "8"), lines("1", "x", "3", "4", "5", "6", "y", "8"))
	check("added at end", lines("a", "b"), lines("a", "b", "c"))
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return fmt.Sprintf("line %d", rng.IntN(6)) }
	for i := range 200 {
		var a, b []string
		for range rng.IntN(30) {
			a = append(a, word())
		}
		b = append(b, a...)
		for range rng.IntN(6) {
			switch k := rng.IntN(3); {
			case k == 0 && len(b) > 0:
				j := rng.IntN(len(b))
				b = append(b[:j], b[j+1:]...)
			case k == 1 && len(b) > 0:
				b[rng.IntN(len(b))] = word()
			default:
				j := rng.IntN(len(b) + 1)
				b = append(b[:j], append([]string{word()}, b[j:]...)...)
			}
		}
		check(fmt.Sprintf("random %d", i), lines(a...), lines(b...))
	}
}

// count returns how many lines a unified diff removes and adds.
func count(diff []byte) [2]int {
	var n [2]int
	for _, l := range bytes.Split(diff, []byte("\n")) {
		switch {
		case bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("+++")):
		case bytes.HasPrefix(l, []byte("-")):
			n[0]++
		case bytes.HasPrefix(l, []byte("+")):
			n[1]++
		}
	}
	return n
}
