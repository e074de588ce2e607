package relay

import (
	"testing"

	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/config"
)

// The largest body the config accepts, with the longest query the relay
// stores, fits in one record of the log: no accepted body gets 503 for
// its size (before, import.max_body_bytes took up to 1GiB, and a body
// over 256MiB was refused by the log on every try).
func TestBodyLimitFitsTheLog(t *testing.T) {
	if most := ship.MaxStoredBody(maxQueryBytes); config.MaxImportBodyBytes > most {
		t.Fatalf("config.MaxImportBodyBytes = %d; the log stores at most %d beside a query of %d bytes", config.MaxImportBodyBytes, most, maxQueryBytes)
	}
	cfg := testConfig(t)
	cfg.Import.MaxBodyBytes = config.MaxImportBodyBytes
	cfg.Import.MaxDecompressedBytes = config.MaxImportBodyBytes
	cfg.Import.MaxInflightBytes = config.MaxImportBodyBytes
	if _, err := New(cfg, nil); err != nil {
		t.Fatalf("New with import.max_body_bytes at its most: %v", err)
	}
	cfg.Import.MaxBodyBytes = 256 << 20
	cfg.Import.MaxInflightBytes = 256 << 20
	cfg.Import.MaxDecompressedBytes = 256 << 20
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("New with import.max_body_bytes 256MiB succeeded; a body that size cannot be stored")
	}
}
