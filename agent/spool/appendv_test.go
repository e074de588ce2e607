package spool

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

// A record appended in pieces is the record of their concatenation, byte
// for byte on disk, however the pieces are cut (empty, small ones gathered
// into one write, large ones written where they lie, and mixed), and reads
// back whole.
func TestAppendVec(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5<<10) // 80 KiB
	cases := [][][]byte{
		nil,
		{{}},
		{[]byte("a")},
		{[]byte("hdr"), big},
		{[]byte("hdr"), big[:100], big[100 : 40<<10], {}, big[40<<10:], []byte("tail")},
		{big[:smallPiece-1], big[:smallPiece-1], big[:smallPiece-1], big[:smallPiece]},
		{big, big},
	}
	dir := t.TempDir()
	l, _ := openLog(t, dir, testConfig(64<<20))
	created := time.UnixMilli(1700000000123)
	var want []byte
	for i, pieces := range cases {
		if err := l.AppendVec(pieces, created); err != nil {
			t.Fatalf("case %d: AppendVec: %v", i, err)
		}
		want = appendRecord(want, bytes.Join(pieces, nil), created.UnixMilli())
	}
	files := segmentFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("%d segments; want 1", len(files))
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("segment holds %d bytes that differ from appendRecord's %d", len(got), len(want))
	}
	recs := drain(t, l, true, len(cases)+1)
	if len(recs) != len(cases) {
		t.Fatalf("read %d records; want %d", len(recs), len(cases))
	}
	for i, r := range recs {
		if w := bytes.Join(cases[i], nil); !bytes.Equal(r.Data, w) || !r.Created.Equal(created) {
			t.Fatalf("record %d: %d bytes at %v; want %d at %v", i, len(r.Data), r.Created, len(w), created)
		}
	}
	// The sum of the pieces is bounded, not each piece.
	mib := make([]byte, 1<<20)
	over := make([][]byte, MaxRecordBytes>>20+1)
	for i := range over {
		over[i] = mib
	}
	if err := l.AppendVec(over, created); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendVec of %d MiB in pieces = %v; want ErrTooLarge", len(over), err)
	}
}
