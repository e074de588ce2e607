package hostgen

import (
	"bytes"

	"github.com/procfleet/procfleet/agent/emit"
)

// parseFileNr parses /proc/sys/fs/file-nr (named file in errors) as
// node_exporter does: the content, trimmed of white space, is split at tabs,
// and the first and third parts are the allocated and maximum numbers of
// file handles. It reports which of the two parsed.
func parseFileNr(data []byte, file string) (allocated, maximum float64, okA, okM bool, err error) {
	errs := lineErrs{file: file}
	data = bytes.TrimSpace(data)
	var parts [3][]byte
	n := 0
	for n < 3 {
		i := bytes.IndexByte(data, '\t')
		if i < 0 || n == 2 {
			if i >= 0 {
				data = data[:i]
			}
			parts[n] = data
			n++
			break
		}
		parts[n] = data[:i]
		data = data[i+1:]
		n++
	}
	if n < 3 {
		errs.addf(1, "want 3 tab-separated numbers, got %d", n)
		return 0, 0, false, false, errs.err()
	}
	allocated, aerr := parseFloat(parts[0])
	if aerr != nil {
		errs.addf(1, "allocated: %v", aerr)
	}
	maximum, merr := parseFloat(parts[2])
	if merr != nil {
		errs.addf(1, "maximum: %v", merr)
	}
	return allocated, maximum, aerr == nil, merr == nil, errs.err()
}

// Filefd emits node_filefd_allocated and node_filefd_maximum: what
// node_exporter's filefd collector emits from /proc/sys/fs/file-nr. It is
// not safe for concurrent use.
type Filefd struct {
	procFile
}

// NewFilefd returns a generator of /proc/sys/fs/file-nr under o.ProcRoot.
func NewFilefd(o Options) *Filefd {
	o = o.withDefaults()
	g := &Filefd{
		procFile: newProcFile(512, o.ProcRoot, "sys", "fs", "file-nr"),
	}
	return g
}

// Name implements emit.Generator.
func (g *Filefd) Name() string { return "filefd" }

// Collect implements emit.Generator.
func (g *Filefd) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return err
	}
	a, m, okA, okM, err := parseFileNr(data, g.path)
	if okA {
		s.Begin("node_filefd_allocated").Value(a)
	}
	if okM {
		s.Begin("node_filefd_maximum").Value(m)
	}
	return err
}
