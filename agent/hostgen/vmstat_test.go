package hostgen

import (
	"math"
	"regexp"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestVmstatDefaultMatch(t *testing.T) {
	re := regexp.MustCompile(VmstatDefaultFields)
	for _, name := range []string{"oom_kill", "oom_kill_x", "pgpgin", "pswpout", "pgfault", "pgmajfault",
		"pgfaultx", "pg_fault", "pgfaul", "nr_free_pages", "xpgfault", "pg", "fault", "pswp", "oom"} {
		if got, want := vmstatDefaultMatch([]byte(name)), re.MatchString(name); got != want {
			t.Errorf("vmstatDefaultMatch(%q) = %v, regexp says %v", name, got, want)
		}
	}
}

func TestVmstat(t *testing.T) {
	runGenA(t, func(o Options) emit.Generator { return NewVmstat(o) }, []genACase{
		{name: "filtered", files: map[string]string{"vmstat": "nr_free_pages 5\npgfault 18446744073709551615\noom_kill 1\npgpgin 2 extra\n"},
			want: map[string]float64{"node_vmstat_pgfault": 18446744073709551615, "node_vmstat_oom_kill": 1, "node_vmstat_pgpgin": 2}},
		{name: "bad lines go on", files: map[string]string{"vmstat": "pgfault\npswpin x\nnr_x y\npgpgout 3\n"},
			want: map[string]float64{"node_vmstat_pgpgout": 3}, wantErr: `line 1: want "name value", got "pgfault" (and 2 more bad lines)`},
		{name: "name not a metric name", files: map[string]string{"vmstat": "pg.fault 1\npgfault 2\n"},
			want: map[string]float64{"node_vmstat_pgfault": 2}, wantErr: "line 1: field name"},
		{name: "missing", files: map[string]string{}, wantErr: "no such file"},
	})
}

func TestVmstatCustomFields(t *testing.T) {
	root := genARoot(t, map[string]string{"vmstat": "nr_free_pages 5\npgfault 7\n"})
	g := NewVmstat(Options{ProcRoot: root})
	g.Fields = regexp.MustCompile("^nr_")
	for i := 0; i < 2; i++ { // the second run goes through the cache
		out, err := emit.Collect(g)
		if err != nil {
			t.Fatal(err)
		}
		checkGenASeries(t, parseA(t, out), map[string]float64{"node_vmstat_nr_free_pages": 5})
	}
}

// FuzzVmstat checks that a parse through the cache of known fields (the
// second parse with the same filter) gives what the first one gave.
func FuzzVmstat(f *testing.F) {
	f.Add(readFixtureA(f, "vmstat"))
	f.Add([]byte("pgfault 1e3\nx\npgpgin 12 3\npswpin\t7\noom_kill 0x1\n"))
	type sample struct {
		line int
		name string
		v    float64
	}
	parse := func(t *testing.T, data []byte, filter *vmstatFilter) ([]sample, string) {
		var got []sample
		err := parseVmstat(data, "vmstat", filter, func(line int, name []byte, v float64) {
			if line < 1 || len(name) == 0 || !vmstatDefaultMatch(name) {
				t.Fatalf("line %d name %q", line, name)
			}
			got = append(got, sample{line, string(name), v})
		})
		if err != nil {
			return got, err.Error()
		}
		return got, ""
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var filter vmstatFilter
		cold, coldErr := parse(t, data, &filter)
		warm, warmErr := parse(t, data, &filter)
		if coldErr != warmErr || len(cold) != len(warm) {
			t.Fatalf("first parse %v, %q; second %v, %q", cold, coldErr, warm, warmErr)
		}
		for i := range cold {
			if cold[i] != warm[i] && !(math.IsNaN(cold[i].v) && math.IsNaN(warm[i].v)) {
				t.Fatalf("first parse %v, second %v", cold, warm)
			}
		}
	})
}
