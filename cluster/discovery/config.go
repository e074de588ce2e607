package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/procfleet/procfleet/config"
)

// Config bounds what discovery reads and holds, and sets how often files
// are looked at. The bounds apply to each job: a source that crosses one
// fails (keeping its last good groups) with an error naming the bound.
type Config struct {
	// MaxTargets bounds the targets of one job, summed over its sources,
	// before relabeling. Default 100,000.
	MaxTargets int
	// MaxLabels bounds the label pairs of one job's discovered targets
	// before relabeling: for each target, its own labels and its group's.
	// It bounds the memory of a job's groups and of its resolved set (a
	// group label is repeated in each of the group's targets). Default
	// 3,000,000 (30 labels for each of 100,000 targets; about 100 MB).
	MaxLabels int
	// MaxTargetLabels bounds the labels of one target (its own and its
	// group's), and so the labels of one group. Default 1,000.
	MaxTargetLabels int
	// MaxBytes bounds a file read by file_sd_configs and a body fetched by
	// http_sd_configs. Default 64 MiB.
	MaxBytes int64
	// MaxYAMLNodes bounds the nodes of a YAML file, counted from its
	// indicators before it is parsed: a YAML parser holds the whole tree,
	// about 300 bytes a node. JSON is read as a stream and needs no such
	// bound. Default 300,000 (100,000 targets in a block or flow list take
	// 100,000 or 200,000; the parser then holds at most about 100 MB).
	MaxYAMLNodes int
	// FilePoll is how often file_sd_configs' files are listed and looked
	// at (modification time, size, inode); a changed file is read again at
	// once, and every file each refresh_interval. Default 5s.
	FilePoll time.Duration
	// FetchTimeout bounds one HTTP SD fetch (body included) and one DNS
	// resolution of a dns_sd_config's names. Default 20s.
	FetchTimeout time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		MaxTargets:      100_000,
		MaxLabels:       3_000_000,
		MaxTargetLabels: 1_000,
		MaxBytes:        64 << 20,
		MaxYAMLNodes:    300_000,
		FilePoll:        5 * time.Second,
		FetchTimeout:    20 * time.Second,
	}
}

// Validate reports the first invalid field, naming it and what would be
// accepted.
func (c Config) Validate() error {
	switch {
	case c.MaxTargets < 1 || c.MaxLabels < 1 || c.MaxTargetLabels < 1 || c.MaxYAMLNodes < 1:
		return fmt.Errorf("discovery: MaxTargets %d, MaxLabels %d, MaxTargetLabels %d, MaxYAMLNodes %d; want each 1 or more",
			c.MaxTargets, c.MaxLabels, c.MaxTargetLabels, c.MaxYAMLNodes)
	case c.MaxBytes < 1:
		return fmt.Errorf("discovery: MaxBytes %d; want 1 or more", c.MaxBytes)
	case c.FilePoll <= 0 || c.FetchTimeout <= 0:
		return fmt.Errorf("discovery: FilePoll %v, FetchTimeout %v; want each above 0", c.FilePoll, c.FetchTimeout)
	}
	return nil
}

// Resolver looks up DNS records for dns_sd_configs. *net.Resolver
// implements it; a resolver that reports a name that does not exist (or
// has no records of the type) with a *net.DNSError whose IsNotFound is set
// empties the name's targets, as Prometheus does with NXDOMAIN, and any
// other error keeps the name's last targets. It must be safe for
// concurrent use.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
}

// Deps are what a Job or a Manager uses from its host. The zero value of
// each field takes the default it documents.
type Deps struct {
	// Config bounds and paces discovery. Zero: DefaultConfig().
	Config Config
	// Logger logs a source's failure when it starts or changes, and its
	// recovery. Default: discard.
	Logger *slog.Logger
	// FileSDDir is the host directory file_sd_configs' names are relative
	// to; no file outside it is read, even through a symbolic link.
	// Default config.DefaultFileSDDir.
	FileSDDir string
	// Resolver resolves dns_sd_configs. Default net.DefaultResolver.
	Resolver Resolver
	// Credentials returns the host's credentials (agent.yaml's
	// credentials:) and where they are defined (for messages), which
	// http_sd_configs' basic_auth, authorization and tls_config name. It is
	// called before each fetch, from several goroutines, so that a host's
	// changed credentials apply without a restart. Default: none defined.
	Credentials func() (creds map[string]config.Credential, source string)
	// Transport, when not nil, replaces the HTTP transport that http SD
	// builds from a tls_config credential (tests). Default nil.
	Transport http.RoundTripper
}

// withDefaults returns d with the defaults of its zero fields, or an error
// when d.Config is set and invalid.
func (d Deps) withDefaults() (Deps, error) {
	if d.Config == (Config{}) {
		d.Config = DefaultConfig()
	}
	if err := d.Config.Validate(); err != nil {
		return d, err
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.FileSDDir == "" {
		d.FileSDDir = config.DefaultFileSDDir
	}
	if d.Resolver == nil {
		d.Resolver = net.DefaultResolver
	}
	if d.Credentials == nil {
		d.Credentials = func() (map[string]config.Credential, string) {
			return nil, "none: this host defines no credentials"
		}
	}
	return d, nil
}
