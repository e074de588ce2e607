package config

import (
	"fmt"
	"net"
	"os"
	"time"
)

// Relay is the relay's configuration document. Every key is listed with its
// unit and default in deploy/relay.example.yaml.
type Relay struct {
	// Node is the relay's name in a cluster. Default: the host's name.
	Node string `yaml:"node"`
	// Listen is the address of the import API, which also serves /metrics,
	// /healthz and /readyz. Default "0.0.0.0:9478".
	Listen string `yaml:"listen"`
	// TLS turns on https for Listen, and mutual TLS with ClientCAFile.
	TLS RelayTLS `yaml:"tls"`
	// Auth requires a bearer token on import requests.
	Auth RelayAuth `yaml:"auth"`
	// Import bounds what one import request may hold.
	Import RelayImport `yaml:"import"`
	// WAL is the write-ahead log: every accepted body is stored in it
	// before the relay answers, and read from it to be forwarded. wal.dir
	// is required.
	WAL Spool `yaml:"wal"`
	// Forward shapes the requests to upstreams.
	Forward RelayForward `yaml:"forward"`
	// Ship sends the log's batches upstream, as for the agent. Upstreams
	// are required for a standalone relay; a clustered relay takes them,
	// and its limit, from the ring.
	Ship Ship `yaml:"ship"`
	// Limit caps the bandwidth of forwarding.
	Limit Limit `yaml:"limit"`
	// Log configures the relay's log.
	Log Log `yaml:"log"`
	// Credentials are this host's credentials for upstreams, by name, as
	// Agent.Credentials: a clustered relay sends to the upstreams the
	// cluster config names a credential for with these. Default none.
	Credentials map[string]Credential `yaml:"credentials"`
	// ConfigFile is the file the document was read from, empty if none.
	// Not a key: messages about host-local keys name it.
	ConfigFile string `yaml:"-"`
}

// RelayTLS configures TLS for the relay's listener.
type RelayTLS struct {
	// CertFile and KeyFile are the server certificate and key (PEM).
	// Setting them turns on https.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires every client to present a
	// certificate signed by one of these roots (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
}

// RelayAuth configures request authentication.
type RelayAuth struct {
	// BearerTokensFile holds the accepted bearer tokens, one per line
	// (blank lines and lines starting with # ignored); an import request
	// without one of them gets 401. Re-read when it changes. Empty turns
	// token checks off. /healthz, /readyz and /metrics need no token.
	BearerTokensFile string `yaml:"bearer_tokens_file"`
}

// RelayImport bounds import requests.
type RelayImport struct {
	// MaxBodyBytes bounds a request body as sent (compressed or not); a
	// larger one gets 413. Default 32MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxDecompressedBytes bounds a gzip body once decompressed; a larger
	// one (a gzip bomb among them) is cut off there and gets 413.
	// Default 256MiB.
	MaxDecompressedBytes ByteSize `yaml:"max_decompressed_bytes"`
	// MaxLineBytes bounds one line; a longer one gets 400. Default 256KiB,
	// the longest line VictoriaMetrics' parser takes.
	MaxLineBytes ByteSize `yaml:"max_line_bytes"`
	// MaxConcurrent bounds the bodies checked line by line at once; more
	// wait, holding their bytes of MaxInflightBytes. Reading a body and
	// waiting for its fsync take no such slot. Default 2 per CPU.
	MaxConcurrent int `yaml:"max_concurrent"`
	// ReadTimeout bounds reading one request body, from the moment its
	// headers are read: a client that has not sent its whole body by then
	// gets 408 (agents retry it). Default 60s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// MaxInflightBytes bounds the bytes of request bodies the relay holds
	// in memory at once, from the first byte read to the answer. A body
	// takes its bytes as they arrive, so a slow client holds only what it
	// sent. A request that finds the budget spent waits up to a second
	// for its first bytes, and gets 429 with Retry-After when that or any
	// later part of its body does not fit. At least max_body_bytes.
	// Default 64MiB.
	MaxInflightBytes ByteSize `yaml:"max_inflight_bytes"`
}

// MaxImportBodyBytes is the largest import.max_body_bytes: a body is
// stored whole as one record of the write-ahead log, which holds at most
// 256MiB with the request's query arguments and the record's header.
const MaxImportBodyBytes = 255 << 20

// RelayForward shapes forwarding.
type RelayForward struct {
	// BatchBytes is the most stored bodies one upstream request carries:
	// consecutive bodies with the same query arguments and encoding are
	// sent together (gzip members concatenate) up to this size.
	// Default 4MiB.
	BatchBytes ByteSize `yaml:"batch_bytes"`
}

// DefaultRelay returns the relay defaults.
func DefaultRelay() Relay {
	s := DefaultShip()
	s.Strategy = StrategyOrdered
	// Its requests merge spooled bodies up to BatchBytes.
	s.Timeouts.Response = Duration(30 * time.Second)
	// Kept in the write-ahead log, on disk, not in memory.
	s.RedeliverMaxBytes = 64 << 20
	// It sends from its log, merged, never fresh batches one by one.
	s.StreamFor = 0
	return Relay{
		Listen: "0.0.0.0:9478",
		Import: RelayImport{
			MaxBodyBytes:         32 << 20,
			MaxDecompressedBytes: 256 << 20,
			MaxLineBytes:         256 << 10,
			ReadTimeout:          Duration(time.Minute),
			MaxInflightBytes:     64 << 20,
		},
		WAL: Spool{
			MaxBytes:     10 << 30,
			Full:         SpoolRefuse,
			SegmentBytes: 64 << 20,
		},
		Forward: RelayForward{BatchBytes: 4 << 20},
		Ship:    s,
		Log:     Log{Level: "info", Format: "text"},
	}
}

// Validate checks the whole document and returns the first problem found,
// naming its key.
func (r Relay) Validate() error {
	if r.Node != "" {
		if err := ValidateNodeName(r.Node); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	if _, _, err := net.SplitHostPort(r.Listen); err != nil {
		return fmt.Errorf("listen: %q is not accepted; want host:port such as 0.0.0.0:9478", r.Listen)
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		return fmt.Errorf("tls: cert_file and key_file go together; set both or neither")
	}
	if r.TLS.ClientCAFile != "" && r.TLS.CertFile == "" {
		return fmt.Errorf("tls.client_ca_file: set without cert_file; mutual TLS needs the relay's own certificate too")
	}
	if err := r.Import.validate(); err != nil {
		return err
	}
	if r.WAL.Dir == "" {
		return fmt.Errorf("wal.dir: empty; want the directory of the write-ahead log, such as /var/lib/procfleet/relay (--data-dir)")
	}
	if err := r.WAL.Validate("wal"); err != nil {
		return err
	}
	if r.WAL.MaxBytes != 0 && r.WAL.MaxBytes < 2*r.Import.MaxBodyBytes {
		// A body over wal.max_bytes would get 429 forever, and one over
		// half of it whenever the log holds anything.
		return fmt.Errorf("wal.max_bytes: %s is not accepted with import.max_body_bytes %s; want 0 (unbounded) or at least twice max_body_bytes (%s), so that every accepted body can be stored",
			FormatBytes(int64(r.WAL.MaxBytes)), FormatBytes(int64(r.Import.MaxBodyBytes)), FormatBytes(int64(2*r.Import.MaxBodyBytes)))
	}
	if r.Forward.BatchBytes < 4<<10 || r.Forward.BatchBytes > 256<<20 {
		return fmt.Errorf("forward.batch_bytes: %s is not accepted; want 4KiB to 256MiB", FormatBytes(int64(r.Forward.BatchBytes)))
	}
	if err := r.Ship.Validate("ship"); err != nil {
		return err
	}
	if err := r.Limit.Validate("limit"); err != nil {
		return err
	}
	if err := validateCredentials("credentials", r.Credentials); err != nil {
		return err
	}
	return r.Log.Validate("log")
}

// validate checks the import block, its limits against each other and
// against what the write-ahead log can store.
func (im RelayImport) validate() error {
	if im.MaxBodyBytes < 1<<10 || im.MaxBodyBytes > MaxImportBodyBytes {
		return fmt.Errorf("import.max_body_bytes: %s is not accepted; want 1KiB to %s (the write-ahead log stores a body whole, in a record of at most 256MiB)",
			FormatBytes(int64(im.MaxBodyBytes)), FormatBytes(MaxImportBodyBytes))
	}
	if im.MaxDecompressedBytes < im.MaxBodyBytes || im.MaxDecompressedBytes > 4<<30 {
		return fmt.Errorf("import.max_decompressed_bytes: %s is not accepted; want max_body_bytes (%s) to 4GiB",
			FormatBytes(int64(im.MaxDecompressedBytes)), FormatBytes(int64(im.MaxBodyBytes)))
	}
	if im.MaxLineBytes < 1<<10 || im.MaxLineBytes > 256<<10 {
		return fmt.Errorf("import.max_line_bytes: %s is not accepted; want 1KiB to 256KiB", FormatBytes(int64(im.MaxLineBytes)))
	}
	if im.MaxConcurrent < 0 {
		return fmt.Errorf("import.max_concurrent: %d is not accepted; want 0 (2 per CPU) or more", im.MaxConcurrent)
	}
	if im.ReadTimeout < Duration(time.Second) || im.ReadTimeout > Duration(10*time.Minute) {
		return fmt.Errorf("import.read_timeout: %s is not accepted; want 1s to 10m", im.ReadTimeout)
	}
	if im.MaxInflightBytes < im.MaxBodyBytes || im.MaxInflightBytes > 64<<30 {
		return fmt.Errorf("import.max_inflight_bytes: %s is not accepted; want max_body_bytes (%s) to 64GiB, so that a body of max_body_bytes fits",
			FormatBytes(int64(im.MaxInflightBytes)), FormatBytes(int64(im.MaxBodyBytes)))
	}
	return nil
}

// LoadRelayFile reads and validates the relay configuration file at path,
// over the defaults. Errors name the file, and the line or key.
func LoadRelayFile(path string) (Relay, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Relay{}, fmt.Errorf("cannot read config: %w", err)
	}
	r, err := ParseRelay(data)
	if err != nil {
		return Relay{}, fmt.Errorf("%s: %w", path, err)
	}
	r.ConfigFile = path
	return r, nil
}

// ParseRelay decodes a relay document over the defaults. Unknown keys are
// errors. It does not validate: flags may still fill required keys.
func ParseRelay(data []byte) (Relay, error) {
	r := DefaultRelay()
	if err := decodeStrictRef(data, &r, "deploy/relay.example.yaml"); err != nil {
		return Relay{}, err
	}
	return r, nil
}
