package relay

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/agent/ship"
)

// maxZstdWindow bounds the window a zstd body may ask the relay to hold
// while it decodes: agents write frames with windows of 64KiB (batches)
// to 512KiB (streams); VictoriaMetrics' own clients stay within a few MiB.
// A frame asking for more is refused, so that a hostile header cannot make
// the decoder allocate hundreds of MiB.
const maxZstdWindow = 8 << 20

var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow))
	if err != nil {
		panic(err) // only invalid options fail, and these are constant
	}
	return d
}}

// unzstd decompresses a zstd import body (Content-Encoding: zstd, as agents
// with compress.encoding zstd send) into a plain body of the relay's
// memory budget, holding a slot of import.max_concurrent meanwhile. The
// relay stores and forwards it as plain text, as it does uncompressed
// bodies, so that every upstream takes it. The decompressed body is held
// to import.max_decompressed_bytes and to what one log record holds.
func (r *Relay) unzstd(req *http.Request, in *body) (*body, error) {
	select {
	case r.sem <- struct{}{}:
	case <-req.Context().Done():
		return nil, refuse(http.StatusServiceUnavailable, reasonRead, "client went away while waiting")
	}
	defer func() { <-r.sem }()
	limit := min(int64(r.cfg.Import.MaxDecompressedBytes), ship.MaxStoredBody(maxQueryBytes))
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer func() {
		_ = d.Reset(nil)
		zstdDecoders.Put(d)
	}()
	if err := d.Reset(&partsReader{parts: in.parts()}); err != nil {
		return nil, refuse(http.StatusBadRequest, reasonBadZstd, "cannot decompress zstd body: %v", err)
	}
	out := &body{mem: r.mem, noWait: true}
	buf := make([]byte, 32<<10)
	for {
		k, err := d.Read(buf)
		if k > 0 {
			if out.n+int64(k) > limit {
				out.release()
				return nil, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, "decompressed body is over import.max_decompressed_bytes (%d)", limit)
			}
			if werr := out.write(req.Context(), buf[:k]); werr != nil {
				out.release()
				return nil, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			out.release()
			return nil, refuse(http.StatusBadRequest, reasonBadZstd, "cannot decompress zstd body: %v", err)
		}
	}
}
