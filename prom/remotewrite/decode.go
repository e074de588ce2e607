// Package remotewrite reads and writes Prometheus remote write requests:
// remote write 1.0 (prometheus.WriteRequest) and 2.0
// (io.prometheus.write.v2.Request), protobuf in a snappy block.
//
// # Decoding
//
// A Decoder turns a request into the lines of VictoriaMetrics' Prometheus
// text import, the form procfleet's relay stores and forwards, so that a
// remote write body joins the write-ahead log, spool and forwarding of
// import bodies unchanged. It is hand-written on protowire: it builds no
// message structs, and writes each sample straight from the wire to its
// line (the series' name and labels are formatted once per series).
//
// Every line a Decoder writes is one promtext.Check accepts with the same
// Limits, so that a remote write body is held to the import path's checks:
// legacy metric and label names, valid UTF-8 label values without NUL,
// no label twice, label counts and lengths. Where remote write carries
// what the import format cannot, the Decoder says so:
//
//   - a series without __name__, or with a name PromQL cannot select
//     plainly, is refused (VictoriaMetrics' import would drop it);
//   - a timestamp in [-2^31, 2^31) ms is refused: VictoriaMetrics' import
//     takes such a value for seconds;
//   - native histogram samples and exemplars are not written; they are
//     counted in DecodeResult, and a relay reports them (remote write 2.0
//     answers say how many of each were written: none);
//   - NaN values, staleness markers included, are written as NaN, which
//     VictoriaMetrics' import does not store;
//   - labels with an empty value are left out, as Prometheus reads them;
//   - label order is kept: the specification asks senders to sort labels,
//     but vmagent does not by default, and neither Prometheus'
//     receiver nor VictoriaMetrics refuses unsorted ones.
//
// Metadata (1.0's metadata, 2.0's per-series metadata and start
// timestamps) is skipped.
//
// A fault is a *DecodeError that names the timeseries, label or sample and
// the byte offset in the decompressed message; a body whose snappy header
// claims more than Limits.MaxBytes is refused before anything is
// allocated for it (ErrDecodedTooLarge).
package remotewrite

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/snappy"

	"github.com/procfleet/procfleet/prom/promtext"
)

// ErrDecodedTooLarge is returned, wrapped, for a body whose snappy header
// claims more than Limits.MaxBytes once decompressed.
var ErrDecodedTooLarge = errors.New("remotewrite: decompressed body too large")

// ErrSnappy is returned, wrapped, for a body that is not a valid snappy
// block.
var ErrSnappy = errors.New("remotewrite: not a valid snappy block")

// maxSnappyRatio bounds how many times a snappy block expands: its best
// element, a copy with a 2-byte offset, is 3 bytes long and stands for at
// most 64. A header that claims more is refused before anything is
// allocated for it.
const maxSnappyRatio = 22

// DecodedLen returns the length body claims once decompressed, after
// checking it against lim.MaxBytes (an error wrapping ErrDecodedTooLarge)
// and against what a snappy block of its size can hold (ErrSnappy). It
// reads the header only.
func DecodedLen(body []byte, lim promtext.Limits) (int, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return 0, fmt.Errorf("%w: cannot read its header: %v", ErrSnappy, err)
	}
	switch {
	case int64(n) > lim.MaxBytes:
		return 0, fmt.Errorf("%w: the snappy header says %d bytes, over the limit of %d", ErrDecodedTooLarge, n, lim.MaxBytes)
	case int64(n) > maxSnappyRatio*int64(len(body)):
		return 0, fmt.Errorf("%w: the header says %d bytes from %d, more than a snappy block holds (%d times its size)",
			ErrSnappy, n, len(body), maxSnappyRatio)
	case int64(n) >= 1<<32:
		return 0, fmt.Errorf("%w: the snappy header says %d bytes; at most 4GiB are read", ErrDecodedTooLarge, n)
	}
	return n, nil
}

// Decompress decompresses the snappy block body into dst, which must be at
// least DecodedLen(body) long, and returns the decompressed message.
func Decompress(dst, body []byte) ([]byte, error) {
	out, err := snappy.Decode(dst, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnappy, err)
	}
	return out, nil
}

// DecodeResult is what a Decoder found in a request.
type DecodeResult struct {
	// Series is the number of timeseries in the request, Samples the
	// number of float samples written, one line each.
	Series, Samples int
	// Histograms and Exemplars are the native histogram samples and
	// exemplars left out.
	Histograms, Exemplars int
}

// DecodeError is a fault of a request: what is wrong and where.
type DecodeError struct {
	// Series is the index of the timeseries in the request, -1 for a
	// fault outside any.
	Series int
	// Name is the series' metric name once known, else "".
	Name string
	// Offset is the byte offset of the fault in the decompressed message.
	Offset int
	// Reason says what is wrong, and what would be accepted.
	Reason string
}

func (e *DecodeError) Error() string {
	switch {
	case e.Series < 0:
		return fmt.Sprintf("remotewrite: at byte %d: %s", e.Offset, e.Reason)
	case e.Name != "":
		return fmt.Sprintf("remotewrite: timeseries[%d] (%s), at byte %d: %s", e.Series, e.Name, e.Offset, e.Reason)
	}
	return fmt.Sprintf("remotewrite: timeseries[%d], at byte %d: %s", e.Series, e.Offset, e.Reason)
}

// flushBytes is how much of the output a Decoder gathers before it hands
// it on.
const flushBytes = 64 << 10

// Decoder decodes remote write requests. It keeps its buffers from one
// request to the next; it is not safe for concurrent use.
type Decoder struct {
	lim     promtext.Limits
	emit    func([]byte) error
	msg     []byte // the decompressed message being decoded
	out     []byte // lines not yet emitted
	prefix  []byte // name{labels} of the current series, and a space
	labels  []label
	refs    []uint32 // 2.0: labels_refs of the current series
	symbols []uint32 // 2.0: offsets of the symbols' lengths in msg
	res     DecodeResult
	series  int // index of the current series
	name    []byte
}

// label is a label of the current series, both slices of the message.
type label struct {
	name, value []byte
	off         int // offset of the label in the message
}

// NewDecoder returns a Decoder that holds requests to lim (see the package
// documentation); lim.MaxBytes bounds the decompressed message.
func NewDecoder(lim promtext.Limits) (*Decoder, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{lim: lim}, nil
}

// SetLimits sets the limits of the next requests.
func (d *Decoder) SetLimits(lim promtext.Limits) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	d.lim = lim
	return nil
}

// Decode decodes msg, a decompressed request of remote write version 1 or
// 2, and hands its lines to emit in pieces of about 64KiB, each ending in
// a newline. emit must not keep its argument; an error from it ends
// Decode with that error. Decode returns a *DecodeError for a fault of
// msg; emit may have been called by then, and its caller must drop what
// it was given.
func (d *Decoder) Decode(msg []byte, version int, emit func([]byte) error) (DecodeResult, error) {
	d.msg, d.emit, d.out, d.res = msg, emit, d.out[:0], DecodeResult{}
	defer func() { d.msg, d.emit, d.name = nil, nil, nil }()
	var err error
	switch version {
	case 1:
		err = d.decodeV1()
	case 2:
		err = d.decodeV2()
	default:
		return DecodeResult{}, fmt.Errorf("remotewrite: version %d is not decoded; want 1 or 2", version)
	}
	if err == nil && len(d.out) > 0 {
		err = d.emit(d.out)
		d.out = d.out[:0]
	}
	if err != nil {
		return DecodeResult{}, err
	}
	if cap(d.out) > 4*flushBytes {
		d.out = nil
	}
	return d.res, nil
}

// fail returns a DecodeError at offset off of the current series (-1 for
// none).
func (d *Decoder) fail(off int, format string, args ...any) error {
	e := &DecodeError{Series: d.series, Offset: off, Reason: fmt.Sprintf(format, args...)}
	if e.Series >= 0 && d.name != nil {
		e.Name = string(d.name)
	}
	return e
}

// flush hands the gathered lines on once there are enough of them.
func (d *Decoder) flush() error {
	if len(d.out) < flushBytes {
		return nil
	}
	err := d.emit(d.out)
	d.out = d.out[:0]
	return err
}
