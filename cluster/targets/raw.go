package targets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// The uncompressed encoding of a canonical target set, which the
// manifest's SHA-256 names: the number of targets, then for each its
// address, its number of labels and each label's name and value. Numbers
// are uvarints; strings are a uvarint length and the bytes. A set has
// exactly one encoding: decodeRaw refuses anything encodeRaw would not
// have written (TestDecodeRawCanonical, FuzzDecodeRaw).

// errRaw reports an encoding decodeRaw refuses.
var errRaw = errors.New("bad target encoding")

// rawSize returns the length of encodeRaw(ts).
func rawSize(ts []Target) int {
	n := uvarintLen(uint64(len(ts)))
	for _, t := range ts {
		n += stringLen(t.Address) + uvarintLen(uint64(len(t.Labels)))
		for _, l := range t.Labels {
			n += stringLen(l.Name) + stringLen(l.Value)
		}
	}
	return n
}

// encodeRaw appends the encoding of ts, which must be canonical, to b.
func encodeRaw(b []byte, ts []Target) []byte {
	b = binary.AppendUvarint(b, uint64(len(ts)))
	for i := range ts {
		b = encodeTarget(b, ts[i])
	}
	return b
}

// encodeTarget appends the encoding of one target to b.
func encodeTarget(b []byte, t Target) []byte {
	b = appendString(b, t.Address)
	b = binary.AppendUvarint(b, uint64(len(t.Labels)))
	for _, l := range t.Labels {
		b = appendString(b, l.Name)
		b = appendString(b, l.Value)
	}
	return b
}

// decodeRaw decodes a canonical target set. It takes data over: the
// targets' strings point into it, without a copy (a set of 100,000
// targets is tens of MB), so nobody may write to data after the call.
// Their label slices share blocks of labelBlock labels.
func decodeRaw(data []byte) ([]Target, error) {
	d := rawDecoder{s: unsafe.String(unsafe.SliceData(data), len(data))}
	n := d.count(3) // a target takes at least 3 bytes, a label too
	ts := make([]Target, 0, n)
	var labels []Label // a block of label arrays
	for i := 0; i < n && d.err == nil; i++ {
		t := Target{Address: d.str()}
		nl := d.count(3)
		if cap(labels)-len(labels) < nl {
			labels = make([]Label, 0, max(labelBlock, nl))
		}
		start := len(labels)
		for k := 0; k < nl && d.err == nil; k++ {
			labels = append(labels, Label{Name: d.str(), Value: d.str()})
		}
		t.Labels = labels[start:len(labels):len(labels)]
		if d.err == nil {
			d.check(t, ts)
		}
		if len(t.Labels) == 0 {
			t.Labels = nil
		}
		ts = append(ts, t)
	}
	if d.err == nil && d.off != len(d.s) {
		d.fail("%d bytes after the last target", len(d.s)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return ts, nil
}

// labelBlock is how many labels decodeRaw allocates at once: targets'
// label slices share blocks, which wastes at most a block.
const labelBlock = 4096

// rawDecoder reads an encoding; the first error sticks.
type rawDecoder struct {
	s   string
	off int
	err error
}

func (d *rawDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w at byte %d: %s", errRaw, d.off, fmt.Sprintf(format, args...))
	}
}

// uvarint reads a uvarint in its shortest form.
func (d *rawDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < binary.MaxVarintLen64 && d.off+i < len(d.s); i++ {
		c := d.s[d.off+i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // over 64 bits
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i+1 != uvarintLen(v) {
				break // not the shortest form
			}
			d.off += i + 1
			return v
		}
	}
	d.fail("bad number")
	return 0
}

// count reads a count of items that take at least size bytes each.
func (d *rawDecoder) count(size int) int {
	v := d.uvarint()
	if v > uint64(len(d.s)-d.off)/uint64(size) {
		d.fail("count %d, more than the bytes left hold", v)
		return 0
	}
	return int(v)
}

// str reads a string.
func (d *rawDecoder) str() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := d.s[d.off : d.off+n]
	d.off += n
	return s
}

// check verifies that t is canonical and follows ts.
func (d *rawDecoder) check(t Target, ts []Target) {
	if t.Address == "" {
		d.fail("empty address")
	}
	for k, l := range t.Labels {
		if l.Name == "" {
			d.fail("target %q: empty label name", t.Address)
		}
		if k > 0 && t.Labels[k-1].Name >= l.Name {
			d.fail("target %q: labels out of order", t.Address)
		}
	}
	if len(ts) > 0 && CompareTargets(ts[len(ts)-1], t) >= 0 {
		d.fail("target %q out of order", t.Address)
	}
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func stringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }
