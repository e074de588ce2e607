package hostgen

import (
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestFilefd(t *testing.T) {
	runGenA(t, func(o Options) emit.Generator { return NewFilefd(o) }, []genACase{
		{name: "good", files: map[string]string{"sys/fs/file-nr": "1024\t0\t9223372036854775807\n"},
			want: map[string]float64{"node_filefd_allocated": 1024, "node_filefd_maximum": 9223372036854775807}},
		{name: "extra tab field", files: map[string]string{"sys/fs/file-nr": " 7\t0\t9\t4 \n"},
			want: map[string]float64{"node_filefd_allocated": 7, "node_filefd_maximum": 9}},
		{name: "spaces not tabs", files: map[string]string{"sys/fs/file-nr": "1 0 2\n"},
			want: map[string]float64{}, wantErr: "line 1: want 3 tab-separated numbers, got 1"},
		{name: "bad maximum", files: map[string]string{"sys/fs/file-nr": "5\t0\tmany\n"},
			want: map[string]float64{"node_filefd_allocated": 5}, wantErr: "line 1: maximum"},
		{name: "missing", files: map[string]string{}, wantErr: "no such file"},
	})
}

func FuzzFileNr(f *testing.F) {
	f.Add(readFixtureA(f, "sys/fs/file-nr"))
	f.Add([]byte("1\t\t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, okA, okM, err := parseFileNr(data, "file-nr")
		if (!okA || !okM) && err == nil {
			t.Fatalf("a value failed without error for %q", data)
		}
	})
}
