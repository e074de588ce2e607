// Package config holds procfleet's configuration schemas (the YAML documents
// of the agent and, later, of the cluster), their defaults, their validation
// and their loading. It imports no other procfleet package: components take
// the types defined here.
//
// Errors name the key (as a dotted path such as ship.timeouts.send), the bad
// value and what would be accepted.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string ("1s",
// "250ms", "1m30s") in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration; want a number with a unit, such as 500ms, 1s or 2m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String implements fmt.Stringer.
func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a number of bytes, written in YAML as an integer or with a
// unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a size; want bytes such as 65536, 64KiB or 10MB", n.Line, n.Value)
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return FormatBytes(int64(b)), nil }

// ByteRate is a bandwidth in bytes per second, written like a ByteSize with
// an optional "/s" suffix ("10MiB/s"). 0 means unlimited where a field says so.
type ByteRate int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *ByteRate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(strings.TrimSuffix(strings.TrimSpace(n.Value), "/s"))
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a rate; want bytes per second such as 1048576, 512KiB/s or 10MiB/s", n.Line, n.Value)
	}
	*r = ByteRate(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r ByteRate) MarshalYAML() (any, error) { return FormatBytes(int64(r)) + "/s", nil }

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseByteSize parses "65536", "64KiB", "1.5MB" and the like.
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			mult = u.mult
			break
		}
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i < 0 || (i > 0 && mult > (1<<63-1)/i) {
			return 0, fmt.Errorf("%q out of range", s)
		}
		return i * mult, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(f * float64(mult)), nil
}

// FormatBytes writes n with the largest binary unit that divides it.
func FormatBytes(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}
