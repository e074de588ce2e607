package hostgen

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/internal/testenv"
)

// genACase is one table row of the generator tests of stat.go ...
// softirqs.go: files under a temporary proc root, the series expected
// (all of them, exactly) and a substring the error must hold ("" for none).
type genACase struct {
	name    string
	files   map[string]string
	want    map[string]float64
	wantErr string
}

// runGenA runs each case against the generator newGen builds.
func runGenA(t *testing.T, newGen func(Options) emit.Generator, cases []genACase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := genARoot(t, c.files)
			out, err := emit.Collect(newGen(Options{ProcRoot: root}))
			checkGenAErr(t, err, c.wantErr)
			got, perr := testenv.ParseText(out)
			if perr != nil {
				t.Fatalf("our output does not parse: %v\n%s", perr, out)
			}
			checkGenASeries(t, got, c.want)
		})
	}
}

// genARoot writes files (path relative to the root: content) into a new
// temporary directory and returns it.
func genARoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func checkGenAErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one holding %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not hold %q", err, want)
	}
}

func checkGenASeries(t *testing.T, got, want map[string]float64) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if !goldenAEqual(g, want[k]) {
			t.Errorf("%s = %v, want %v", k, g, want[k])
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %v", k, v)
		}
	}
}

// readFixtureA returns a file of the repository's fixture tree, for fuzz
// seeds.
func readFixtureA(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(f), "testdata", "fixtures", "proc", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func TestSplitFieldsLikeStrings(t *testing.T) {
	for _, in := range []string{"", " ", "a", " a b\t c\n", "a\u00a0b", "a\u0085b\u2003c", "\xffa b", "x\ry\vz\fw"} {
		got := splitFields([]byte(in), nil)
		want := strings.Fields(in)
		if len(got) != len(want) {
			t.Fatalf("splitFields(%q) = %q, want %q", in, got, want)
		}
		for i := range got {
			if string(got[i]) != want[i] {
				t.Fatalf("splitFields(%q) = %q, want %q", in, got, want)
			}
		}
	}
}

func TestParseFloatLike(t *testing.T) {
	f := func(in string, want float64, ok bool) {
		t.Helper()
		got, err := parseFloat([]byte(in))
		if (err == nil) != ok || ok && !goldenAEqual(got, want) {
			t.Fatalf("parseFloat(%q) = %v, %v; want %v, ok=%v", in, got, err, want, ok)
		}
	}
	f("0", 0, true)
	f("18446744073709551615", 18446744073709551615, true)
	f("18446744073709551616", 18446744073709551616, true)
	f("9007199254740993", 9007199254740993, true)
	f("-1.5", -1.5, true)
	f("1e3", 1000, true)
	f("", 0, false)
	f("12x", 0, false)
}

// genARoot2 replaces one file of a root made by genARoot.
func genARoot2(t *testing.T, root, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// parseA parses our output, failing the test when it does not parse.
func parseA(t testing.TB, out []byte) map[string]float64 {
	t.Helper()
	m, err := testenv.ParseText(out)
	if err != nil {
		t.Fatalf("our output does not parse: %v\n%s", err, out)
	}
	return m
}
