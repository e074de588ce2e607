package promoracle

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
)

// The three functions below are Prometheus' own (scrape/scrape.go and
// scrape/target.go of the version in go.mod), copied because they are
// unexported: TestMergeIsPrometheus checks that their text is still
// Prometheus' text. Only the receiver type differs: Target there, target
// here (importing package scrape would compile most of Prometheus).

type target struct{ labels labels.Labels }

func mutateSampleLabels(lset labels.Labels, target *target, honor bool, rc []*relabel.Config) labels.Labels {
	lb := labels.NewBuilder(lset)

	if honor {
		target.LabelsRange(func(l labels.Label) {
			if !lset.Has(l.Name) {
				lb.Set(l.Name, l.Value)
			}
		})
	} else {
		var conflictingExposedLabels []labels.Label
		target.LabelsRange(func(l labels.Label) {
			existingValue := lset.Get(l.Name)
			if existingValue != "" {
				conflictingExposedLabels = append(conflictingExposedLabels, labels.Label{Name: l.Name, Value: existingValue})
			}
			// It is now safe to set the target label.
			lb.Set(l.Name, l.Value)
		})

		if len(conflictingExposedLabels) > 0 {
			resolveConflictingExposedLabels(lb, conflictingExposedLabels)
		}
	}

	if keep := relabel.ProcessBuilder(lb, rc...); !keep {
		return labels.EmptyLabels()
	}

	return lb.Labels()
}

func resolveConflictingExposedLabels(lb *labels.Builder, conflictingExposedLabels []labels.Label) {
	slices.SortStableFunc(conflictingExposedLabels, func(a, b labels.Label) int {
		return len(a.Name) - len(b.Name)
	})

	for _, l := range conflictingExposedLabels {
		newName := l.Name
		for {
			newName = model.ExportedLabelPrefix + newName
			if lb.Get(newName) == "" {
				lb.Set(newName, l.Value)
				break
			}
		}
	}
}

func (t *target) LabelsRange(f func(l labels.Label)) {
	t.labels.Range(func(l labels.Label) {
		if !strings.HasPrefix(l.Name, model.ReservedLabelPrefix) {
			f(l)
		}
	})
}

// The copies above are Prometheus' functions, word for word, read from the
// module's source.
func TestMergeIsPrometheus(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/prometheus/prometheus").Output()
	if err != nil {
		t.Fatalf("cannot find Prometheus' source: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	ours := funcs(t, "mutate_test.go")
	theirs := funcs(t, filepath.Join(dir, "scrape", "scrape.go"))
	for k, v := range funcs(t, filepath.Join(dir, "scrape", "target.go")) {
		theirs[k] = v
	}
	for _, name := range []string{"mutateSampleLabels", "resolveConflictingExposedLabels", "LabelsRange"} {
		want := strings.NewReplacer("*Target", "*target").Replace(theirs[name])
		if theirs[name] == "" || ours[name] != want {
			t.Errorf("%s differs from Prometheus':\n%s\nPrometheus':\n%s", name, ours[name], want)
		}
	}
}

// funcs returns the functions of a Go file by name, printed.
func funcs(t *testing.T, path string) map[string]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			fd.Doc = nil
			var b bytes.Buffer
			if err := printer.Fprint(&b, fset, fd); err != nil {
				t.Fatal(err)
			}
			out[fd.Name.Name] = b.String()
		}
	}
	return out
}
