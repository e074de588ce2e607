package config

import (
	"fmt"
	"net"
	"time"
)

// Agent is the agent's configuration document. Every key is listed with its
// unit and default in deploy/agent.example.yaml.
type Agent struct {
	// Hostname is the value of the instance label on every sample. Default:
	// the host's name.
	Hostname string `yaml:"hostname"`
	// Job is the value of the job label on every sample. Default "procfleet".
	Job string `yaml:"job"`
	// Listen is the address of the self HTTP server (/metrics, /healthz).
	// Empty turns it off. Default "127.0.0.1:9477".
	Listen string `yaml:"listen"`
	// ProcfsRoot is where procfs is mounted. Default "/proc".
	ProcfsRoot string `yaml:"procfs_root"`
	// SysfsRoot is where sysfs is mounted. Default "/sys".
	SysfsRoot string `yaml:"sysfs_root"`
	// FullEvery is how many cycles may pass before a series whose value did
	// not change is written again. Default 10 (every 10 s at 1 s intervals).
	FullEvery int `yaml:"full_every"`
	// Generators enables the /proc sources and sets their intervals.
	Generators Generators `yaml:"generators"`
	// Scheduler runs the generators.
	Scheduler Scheduler `yaml:"scheduler"`
	// Compress batches and compresses what the generators write.
	Compress Compress `yaml:"compress"`
	// Ship sends compressed batches upstream.
	Ship Ship `yaml:"ship"`
	// Limit caps the bandwidth of all sends together.
	Limit Limit `yaml:"limit"`
	// Spool holds batches on disk while no upstream takes them. Host-local.
	Spool Spool `yaml:"spool"`
	// Log configures the agent's log.
	Log Log `yaml:"log"`
	// Debug turns on debugging surfaces (pprof). Off by default. Host-local.
	Debug Debug `yaml:"debug"`
	// Credentials are this host's credentials for upstreams, by name: the
	// names a cluster config may give upstreams (upstreams[].credential,
	// agents.ship.credential). Host-local; a standalone agent uses
	// ship.auth and ship.tls instead. Default none.
	Credentials map[string]Credential `yaml:"credentials"`
	// ConfigFile is the file the document was read from, empty if none.
	// Not a key: messages about host-local keys name it.
	ConfigFile string `yaml:"-"`
}

// Scheduler configures the scheduler.
type Scheduler struct {
	// Workers is how many generators may run at once. Default 2.
	Workers int `yaml:"workers"`
	// Buffers bounds the 16 KiB buffers that hold lines not yet compressed;
	// generators wait for one when all are in use. Default 64 (1 MiB).
	Buffers int `yaml:"buffers"`
}

// Encodings of Compress.Encoding, as sent in Content-Encoding.
const (
	EncodingGzip = "gzip"
	EncodingZstd = "zstd"
)

// Compress configures batching and compression.
type Compress struct {
	// Encoding is gzip or zstd. zstd (klauspost/compress at SpeedFastest,
	// 64 KiB window) costs about half of gzip level 5's CPU and two
	// thirds of its bytes; VictoriaMetrics and vmagent take it on their
	// import API, a procfleet relay does not. Default gzip (also when
	// empty).
	Encoding string `yaml:"encoding"`
	// Level is the gzip level, 1 (fastest) to 9 (smallest); zstd ignores
	// it. Default 5.
	Level int `yaml:"level"`
	// TargetBytes flushes a batch once its compressed size reaches it.
	// Default 512KiB.
	TargetBytes ByteSize `yaml:"target_bytes"`
	// FlushAge flushes a batch once its oldest line is this old: the most
	// a line waits in the agent when scans never pause (a scan still running
	// when the next one starts). Default 1s.
	FlushAge Duration `yaml:"flush_age"`
	// MinFlushInterval: a batch is also flushed as soon as every scan due
	// has finished (the scheduler is idle), so that a tick's lines leave
	// without waiting for FlushAge, but not sooner than this after the
	// previous flush, which bounds the requests per second of sub-second
	// intervals. 0 flushes at every idle point; above FlushAge it is
	// FlushAge. Default 500ms.
	MinFlushInterval Duration `yaml:"min_flush_interval"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// DefaultAgent returns the agent defaults.
func DefaultAgent() Agent {
	return Agent{
		Job:        "procfleet",
		Listen:     "127.0.0.1:9477",
		ProcfsRoot: "/proc",
		SysfsRoot:  "/sys",
		FullEvery:  10,
		Generators: DefaultGenerators(),
		Scheduler:  Scheduler{Workers: 2, Buffers: 64},
		Compress: Compress{
			Encoding:         EncodingGzip,
			Level:            5,
			TargetBytes:      512 << 10,
			FlushAge:         Duration(time.Second),
			MinFlushInterval: Duration(500 * time.Millisecond),
		},
		Ship:  DefaultShip(),
		Spool: DefaultAgentSpool(),
		Log:   Log{Level: "info", Format: "text"},
	}
}

// Validate checks the whole document and returns the first problem found,
// naming its key.
func (a Agent) Validate() error {
	if a.Job == "" {
		return fmt.Errorf("job: empty; want a label value such as procfleet")
	}
	if a.Listen != "" {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			return fmt.Errorf("listen: %q is not accepted; want host:port such as 127.0.0.1:9477, or empty to turn it off", a.Listen)
		}
	}
	if a.ProcfsRoot == "" {
		return fmt.Errorf("procfs_root: empty; want a directory such as /proc")
	}
	if a.FullEvery < 1 || a.FullEvery > 3600 {
		return fmt.Errorf("full_every: %d is not accepted; want 1 to 3600 cycles", a.FullEvery)
	}
	if err := a.Generators.Validate("generators"); err != nil {
		return err
	}
	if a.Scheduler.Workers < 1 || a.Scheduler.Workers > 64 {
		return fmt.Errorf("scheduler.workers: %d is not accepted; want 1 to 64", a.Scheduler.Workers)
	}
	if a.Scheduler.Buffers < 2 {
		return fmt.Errorf("scheduler.buffers: %d is not accepted; want 2 or more", a.Scheduler.Buffers)
	}
	if err := a.Compress.Validate("compress"); err != nil {
		return err
	}
	if err := a.Ship.Validate("ship"); err != nil {
		return err
	}
	if err := a.validateRefresh(); err != nil {
		return err
	}
	if err := a.Limit.Validate("limit"); err != nil {
		return err
	}
	if err := a.Spool.Validate("spool"); err != nil {
		return err
	}
	if err := a.Debug.Validate("debug", a.Listen); err != nil {
		return err
	}
	if err := validateCredentials("credentials", a.Credentials); err != nil {
		return err
	}
	return a.Log.Validate("log")
}

// Validate checks c.
func (c Compress) Validate(key string) error {
	if c.Encoding != "" && c.Encoding != EncodingGzip && c.Encoding != EncodingZstd {
		return fmt.Errorf("%s.encoding: %q is not accepted; want %s or %s", key, c.Encoding, EncodingGzip, EncodingZstd)
	}
	if c.Level < 1 || c.Level > 9 {
		return fmt.Errorf("%s.level: %d is not accepted; want 1 (fastest) to 9 (smallest)", key, c.Level)
	}
	if c.TargetBytes < 4<<10 || c.TargetBytes > 64<<20 {
		return fmt.Errorf("%s.target_bytes: %s is not accepted; want 4KiB to 64MiB", key, FormatBytes(int64(c.TargetBytes)))
	}
	if c.FlushAge < Duration(10*time.Millisecond) || c.FlushAge > Duration(time.Minute) {
		return fmt.Errorf("%s.flush_age: %s is not accepted; want 10ms to 1m", key, c.FlushAge)
	}
	if c.MinFlushInterval < 0 || c.MinFlushInterval > Duration(time.Minute) {
		return fmt.Errorf("%s.min_flush_interval: %s is not accepted; want 0 to 1m", key, c.MinFlushInterval)
	}
	return nil
}

// Validate checks l.
func (l Log) Validate(key string) error {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("%s.level: %q is not accepted; want debug, info, warn or error", key, l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		return fmt.Errorf("%s.format: %q is not accepted; want text or json", key, l.Format)
	}
	return nil
}
