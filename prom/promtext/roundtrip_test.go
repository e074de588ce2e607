package promtext

import (
	"strings"
	"testing"
)

// TestRoundTrip parses every body of the table that Check accepts with the
// reference implementation, writes its samples back in canonical form and
// checks that form again: both must accept it, and read the same samples.
// What Check accepts thus has one meaning, which survives a rewrite.
func TestRoundTrip(t *testing.T) {
	for _, tc := range ruleCases {
		if !tc.accepted() {
			continue
		}
		lim := tc.lim()
		ref := refCheck([]byte(tc.body), lim)
		if ref.line != 0 || ref.tooLarge || len(ref.samples) != tc.samples {
			t.Fatalf("%s: the reference says %+v of %q; want %d samples", tc.name, ref, tc.body, tc.samples)
		}
		var canon strings.Builder
		for _, s := range ref.samples {
			canon.WriteString(s.render())
		}
		n, err := Check(strings.NewReader(canon.String()), lim)
		if err != nil || n != tc.samples {
			t.Fatalf("%s: Check(%q) = %d, %v; want %d samples", tc.name, canon.String(), n, err, tc.samples)
		}
		again := refCheck([]byte(canon.String()), lim)
		if len(again.samples) != len(ref.samples) {
			t.Fatalf("%s: %q reads as %+v", tc.name, canon.String(), again)
		}
		for i, s := range ref.samples {
			if !s.equal(again.samples[i]) {
				t.Fatalf("%s: sample %d of %q reads as %+v; want %+v", tc.name, i, canon.String(), again.samples[i], s)
			}
		}
	}
}

// TestReferenceAgrees runs the reference on the table: it must find the
// same faults on the same lines, or the differential fuzzing proves
// nothing.
func TestReferenceAgrees(t *testing.T) {
	for _, tc := range ruleCases {
		ref := refCheck([]byte(tc.body), tc.lim())
		if ref.line != tc.line || ref.tooLarge != tc.tooLarge || (tc.accepted() && len(ref.samples) != tc.samples) {
			t.Errorf("%s: the reference says line %d, too large %v, %d samples of %q",
				tc.name, ref.line, ref.tooLarge, len(ref.samples), tc.body)
		}
	}
}
