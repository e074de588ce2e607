package emit

// Prefix is a saved start of a series key: a metric name and the labels
// given after it, already escaped. A generator that emits many series
// sharing a name and labels (a device's sixteen counters, an interrupt's
// CPUs) builds the prefix once, keeps it while the device or row stays the
// same, and starts each series from it, so that the name is not copied
// piece by piece and the label values are not escaped again on every scan.
//
// The zero Prefix is empty. A Prefix is plain data: it belongs to its
// generator and is not safe for concurrent use.
type Prefix struct {
	key     []byte
	nlabels int
}

// Empty reports whether p holds nothing, as a zero Prefix does.
func (p *Prefix) Empty() bool { return len(p.key) == 0 }

// SavePrefix copies the series being built, its name and the labels given
// since Begin, into p, reusing p's storage (it allocates only when p has to
// grow). The series is neither ended nor written: the caller goes on with
// Label and Value, or starts another series.
func (s *Scan) SavePrefix(p *Prefix) {
	p.key = append(p.key[:0], s.key...)
	p.nlabels = s.nlabels
}

// BeginPrefix starts a series from p, as if the Begin and Label calls that
// built p were made again. Further labels go after p's, then Value or
// Force ends the series as usual. BeginPrefix does not allocate.
func (s *Scan) BeginPrefix(p *Prefix) *Scan {
	s.key = append(s.key[:0], p.key...)
	s.nlabels = p.nlabels
	return s
}
