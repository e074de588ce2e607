package main

import (
	"bytes"
	"fmt"
	"strings"
)

// diffContext is how many unchanged lines a hunk shows around a change.
const diffContext = 3

// maxDiffCells bounds the table of the line diff (lines of a times lines
// of b, after the common head and tail): beyond it, the changed middle is
// shown as removed and added whole rather than taking memory without
// bound.
const maxDiffCells = 4 << 20

// edit is one line of an edit script: ' ' kept, '-' removed, '+' added.
type edit struct {
	op   byte
	line string
}

// lineDiff returns the unified diff of a and b (without the ---/+++
// header): hunks of changed lines with diffContext unchanged lines around
// them, each under an "@@ -l,s +l,s @@" header, as diff -u prints them.
// Lines are compared whole; a last line without a newline is printed with
// one. It returns nil when a and b have the same lines.
func lineDiff(a, b []byte) []byte {
	return unified(editScript(splitLines(a), splitLines(b)), diffContext)
}

func splitLines(b []byte) []string {
	s := string(b)
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\n")
	}
	return lines
}

// editScript returns a shortest edit script from x to y: the common head
// and tail, and a longest common subsequence of the middle.
func editScript(x, y []string) []edit {
	head := 0
	for head < len(x) && head < len(y) && x[head] == y[head] {
		head++
	}
	tail := 0
	for tail < len(x)-head && tail < len(y)-head && x[len(x)-1-tail] == y[len(y)-1-tail] {
		tail++
	}
	var out []edit
	for _, l := range x[:head] {
		out = append(out, edit{' ', l})
	}
	out = append(out, middleScript(x[head:len(x)-tail], y[head:len(y)-tail])...)
	for _, l := range x[len(x)-tail:] {
		out = append(out, edit{' ', l})
	}
	return out
}

func middleScript(x, y []string) []edit {
	var out []edit
	if len(x)*len(y) > maxDiffCells {
		for _, l := range x {
			out = append(out, edit{'-', l})
		}
		for _, l := range y {
			out = append(out, edit{'+', l})
		}
		return out
	}
	// lcs[i*w+j] is the length of the longest common subsequence of
	// x[i:] and y[j:].
	w := len(y) + 1
	lcs := make([]int32, (len(x)+1)*w)
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, edit{' ', x[i]})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			out = append(out, edit{'-', x[i]})
			i++
		default:
			out = append(out, edit{'+', y[j]})
			j++
		}
	}
	return out
}

// unified prints the hunks of script with ctx lines of context.
func unified(script []edit, ctx int) []byte {
	var out bytes.Buffer
	// Line numbers, 1-based, in a and b of each script entry.
	an, bn := make([]int, len(script)), make([]int, len(script))
	for k, ai, bi := 0, 1, 1; k < len(script); k++ {
		an[k], bn[k] = ai, bi
		if script[k].op != '+' {
			ai++
		}
		if script[k].op != '-' {
			bi++
		}
	}
	for k := 0; k < len(script); {
		if script[k].op == ' ' {
			k++
			continue
		}
		// A hunk runs from ctx lines before this change to ctx lines
		// after the last change that is at most 2*ctx lines from the next.
		start, end := max(0, k-ctx), k
		for end < len(script) {
			next := end
			for next < len(script) && script[next].op == ' ' {
				next++
			}
			if next == len(script) || next-end > 2*ctx {
				break
			}
			for next < len(script) && script[next].op != ' ' {
				next++
			}
			end = next
		}
		stop := min(len(script), end+ctx)
		hunkHeader(&out, script[start:stop], an[start], bn[start])
		for _, e := range script[start:stop] {
			out.WriteByte(e.op)
			out.WriteString(e.line)
			out.WriteByte('\n')
		}
		k = stop
	}
	return out.Bytes()
}

// hunkHeader writes the "@@ -l,s +l,s @@" line of hunk, whose first entry
// is at line a of the old text and line b of the new one. An empty side
// is numbered by the line before it, as diff -u does.
func hunkHeader(out *bytes.Buffer, hunk []edit, a, b int) {
	var as, bs int
	for _, e := range hunk {
		if e.op != '+' {
			as++
		}
		if e.op != '-' {
			bs++
		}
	}
	if as == 0 {
		a--
	}
	if bs == 0 {
		b--
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(a, as), hunkRange(b, bs))
}

func hunkRange(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
