package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

const headerSize = 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends the encoded record to dst.
func appendRecord(dst, data []byte, createdMs int64) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(createdMs))
	dst = append(dst, data...)
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// header is a decoded record header.
type header struct {
	crc       uint32
	length    uint32
	createdMs int64
}

func parseHeader(b []byte) header {
	return header{
		crc:       binary.LittleEndian.Uint32(b),
		length:    binary.LittleEndian.Uint32(b[4:]),
		createdMs: int64(binary.LittleEndian.Uint64(b[8:])),
	}
}

// checksum returns the CRC32-C a record with header h and payload p carries.
func (h header) checksum(hdr, p []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[4:headerSize])
	return crc32.Update(c, castagnoli, p)
}

// damage says how a segment scan ended.
type damage int

const (
	clean   damage = iota // every byte belongs to a valid record
	torn                  // incomplete record or zero bytes at the end
	corrupt               // a checksum mismatch or an impossible length
)

// scanResult describes the valid prefix of a segment.
type scanResult struct {
	n      uint64 // valid records
	end    int64  // offset just past the last valid record
	damage damage
	reason string // for torn and corrupt: what was found at end
}

// scanSegment reads a segment of size bytes from r and returns its valid
// prefix. It is a pure function of the bytes, so that recovery can be
// tested and fuzzed without files. Only read errors other than a short read
// are returned. The size keeps a damaged length from allocating a buffer
// larger than the file.
func scanSegment(r io.Reader, size int64) (scanResult, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var res scanResult
	var hdr [headerSize]byte
	var payload []byte
	for {
		n, err := io.ReadFull(br, hdr[:])
		if err == io.EOF {
			return res, nil
		}
		if err == io.ErrUnexpectedEOF {
			return res.tail(hdr[:n], br, "partial header")
		}
		if err != nil {
			return res, err
		}
		h := parseHeader(hdr[:])
		if h.length > MaxRecordBytes {
			return res.tail(hdr[:], br, "length "+strconv.FormatUint(uint64(h.length), 10)+" over the limit")
		}
		if res.end+headerSize+int64(h.length) > size {
			rest := make([]byte, size-res.end-headerSize)
			n, _ := io.ReadFull(br, rest)
			return res.tail(append(hdr[:], rest[:n]...), br, "partial payload")
		}
		if cap(payload) < int(h.length) {
			payload = make([]byte, h.length)
		}
		payload = payload[:h.length]
		n, err = io.ReadFull(br, payload)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return res.tail(append(hdr[:], payload[:n]...), br, "partial payload")
		}
		if err != nil {
			return res, err
		}
		if h.checksum(hdr[:], payload) != h.crc {
			return res.tail(append(hdr[:], payload...), br, "checksum mismatch")
		}
		res.n++
		res.end += headerSize + int64(h.length)
	}
}

// tail classifies the bytes from res.end on: seen were already read from br
// and the rest follows. A record cut short by the end of the file, or
// nothing but zeros (what a filesystem may leave of a write it had not
// finished), is torn; anything else is corrupt, even at the end. A damaged
// length field that points past the end of the file therefore looks torn:
// the records after it are cut away and show up in Recovery.Truncated.
func (res scanResult) tail(seen []byte, br *bufio.Reader, reason string) (scanResult, error) {
	res.reason = reason
	res.damage = torn
	if strings.HasPrefix(reason, "partial") {
		return res, nil
	}
	rest, err := allZeroReader(br)
	if err != nil {
		return res, err
	}
	if !allZero(seen) || !rest {
		res.damage = corrupt
	}
	return res, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// allZeroReader reports whether the rest of r is zero bytes.
func allZeroReader(r io.Reader) (bool, error) {
	buf := make([]byte, 64<<10)
	zero := true
	for {
		n, err := r.Read(buf)
		zero = zero && allZero(buf[:n])
		if errors.Is(err, io.EOF) {
			return zero, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// segmentName returns the file name of the segment starting at seq.
func segmentName(seq uint64) string { return fmt.Sprintf("%016x.seg", seq) }

// parseSegmentName returns the first sequence number of a segment file
// name, or false for any other file.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil
}
