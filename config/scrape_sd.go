package config

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultFileSDDir is the host directory that file_sd_configs' files are
// read from. The cluster document names files relative to it and can
// name no other: whoever writes the cluster config must not be able to
// make a member read any file and publish what it holds as targets. Only
// files a host's administrator put there are read.
const DefaultFileSDDir = "/etc/procfleet/file_sd"

// FileSDConfig reads target groups from files in the host's file_sd
// directory (DefaultFileSDDir), as Prometheus' file_sd_configs: JSON or
// YAML lists of {targets, labels}, re-read when they change and every
// RefreshInterval.
type FileSDConfig struct {
	// Files are paths relative to the file_sd directory, ending in .json,
	// .yml or .yaml; the last element may hold one '*' (db/*.yaml). No
	// absolute paths, no "..". Required.
	Files []string `yaml:"files"`
	// RefreshInterval re-reads the files even without a change. Default 5m.
	RefreshInterval PromDuration `yaml:"refresh_interval"`
}

// UnmarshalYAML implements yaml.Unmarshaler, with the defaults.
func (c *FileSDConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain FileSDConfig
	d := plain{RefreshInterval: PromDuration(5 * time.Minute)}
	if err := n.Decode(&d); err != nil {
		return err
	}
	*c = FileSDConfig(d)
	return nil
}

// fileSDName is Prometheus' pattern for file_sd file names.
var fileSDName = lazyRegexp(`^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`)

// Validate checks c; key prefixes errors.
func (c FileSDConfig) Validate(key string) error {
	if len(c.Files) == 0 {
		return fmt.Errorf("%s.files: empty; want file names relative to %s, such as [db/*.yaml]", key, DefaultFileSDDir)
	}
	for i, f := range c.Files {
		if err := validateFileSDName(f); err != nil {
			return fmt.Errorf("%s.files[%d]: %w", key, i, err)
		}
	}
	return positive(key+".refresh_interval", c.RefreshInterval)
}

func validateFileSDName(f string) error {
	if strings.HasPrefix(f, "/") || filepath.IsAbs(f) {
		return fmt.Errorf("%q is not accepted: the cluster config names files relative to each host's file_sd directory (%s), never an absolute path", f, DefaultFileSDDir)
	}
	if path.Clean(f) != f || f == "." || strings.HasPrefix(f, "../") || strings.Contains(f, "\\") || strings.ContainsRune(f, 0) {
		return fmt.Errorf("%q is not accepted; want a clean path inside the file_sd directory (%s), without '..', such as db/*.yaml", f, DefaultFileSDDir)
	}
	if !fileSDName().MatchString(f) {
		return fmt.Errorf("%q is not accepted; want a name ending in .json, .yml or .yaml, with at most one '*' in its last element", f)
	}
	return nil
}

// FileSDPath returns the host path of the file_sd file (or pattern) name
// in the file_sd directory dir. name is one that validated; a caller that
// reads it must still refuse a symbolic link leading out of dir.
func FileSDPath(dir, name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }

// DNS record types of dns_sd_configs.
const (
	DNSSRV  = "SRV"
	DNSA    = "A"
	DNSAAAA = "AAAA"
)

// DNSSDConfig resolves targets from DNS, as Prometheus' dns_sd_configs: SRV
// records give host and port; A and AAAA records give addresses, with Port.
type DNSSDConfig struct {
	// Names are the DNS names queried. Required.
	Names []string `yaml:"names"`
	// Type is SRV, A or AAAA (case-insensitive). Default SRV.
	Type string `yaml:"type"`
	// Port of the targets of A and AAAA records, 1 to 65535; required for
	// them, unused for SRV.
	Port int `yaml:"port,omitempty"`
	// RefreshInterval is the time between two resolutions. Default 30s.
	RefreshInterval PromDuration `yaml:"refresh_interval"`
}

// UnmarshalYAML implements yaml.Unmarshaler, with the defaults.
func (c *DNSSDConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain DNSSDConfig
	d := plain{Type: DNSSRV, RefreshInterval: PromDuration(30 * time.Second)}
	if err := n.Decode(&d); err != nil {
		return err
	}
	d.Type = strings.ToUpper(d.Type)
	*c = DNSSDConfig(d)
	return nil
}

var dnsName = lazyRegexp(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$`)

// Validate checks c; key prefixes errors.
func (c DNSSDConfig) Validate(key string) error {
	if len(c.Names) == 0 {
		return fmt.Errorf("%s.names: empty; want DNS names such as [_node._tcp.example.com]", key)
	}
	for i, n := range c.Names {
		if len(n) > 253 || !dnsName().MatchString(n) {
			return fmt.Errorf("%s.names[%d]: %q is not a DNS name; want one such as _node._tcp.example.com", key, i, n)
		}
	}
	switch c.Type {
	case DNSSRV:
	case DNSA, DNSAAAA:
		if c.Port < 1 || c.Port > 65535 {
			return fmt.Errorf("%s.port: %d is not accepted; %s records need the targets' port, 1 to 65535", key, c.Port, c.Type)
		}
	default:
		return fmt.Errorf("%s.type: %q is not accepted; want SRV, A or AAAA", key, c.Type)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("%s.port: %d is not accepted; want 1 to 65535", key, c.Port)
	}
	return positive(key+".refresh_interval", c.RefreshInterval)
}

// HTTPSDConfig fetches target groups from an HTTP endpoint, as
// Prometheus' http_sd_configs: a JSON list of {targets, labels}.
type HTTPSDConfig struct {
	// URL is the http:// or https:// URL fetched. Required.
	URL string `yaml:"url"`
	// RefreshInterval is the time between two fetches. Default 60s.
	RefreshInterval PromDuration `yaml:"refresh_interval"`
	// ScrapeAuth names the host credentials the fetch uses.
	ScrapeAuth `yaml:",inline"`
}

// UnmarshalYAML implements yaml.Unmarshaler, with the defaults.
func (c *HTTPSDConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain HTTPSDConfig
	d := plain{RefreshInterval: PromDuration(time.Minute)}
	if err := n.Decode(&d); err != nil {
		return err
	}
	*c = HTTPSDConfig(d)
	return nil
}

// Validate checks c; key prefixes errors.
func (c HTTPSDConfig) Validate(key string) error {
	if err := ValidateUpstreamURL(c.URL); err != nil {
		return fmt.Errorf("%s.url: %w", key, err)
	}
	if err := c.ScrapeAuth.validate(key); err != nil {
		return err
	}
	return positive(key+".refresh_interval", c.RefreshInterval)
}

func positive(key string, d PromDuration) error {
	if d <= 0 {
		return fmt.Errorf("%s: %s is not accepted; want a positive duration such as 30s", key, d)
	}
	return nil
}
