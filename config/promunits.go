package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// PromDuration is a duration written as Prometheus writes them in
// scrape_configs: an integer with a unit, units in decreasing order and
// each once (1m, 30s, 1h30m, 1d, 2w, 1y, 500ms), or 0. Units: ms, s, m,
// h, d (24h), w (7d), y (365d); no fractions, no negative values. The
// syntax is that of Prometheus' model.ParseDuration, implemented here so
// that config does not depend on Prometheus.
type PromDuration time.Duration

// D returns d as a time.Duration.
func (d PromDuration) D() time.Duration { return time.Duration(d) }

// String writes d as Prometheus does (model.Duration.String): 1m30s,
// 1d, 2w; "0s" for zero. Below a millisecond is not written.
func (d PromDuration) String() string { return FormatPromDuration(time.Duration(d)) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *PromDuration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParsePromDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration; want an integer with a unit such as 30s, 1m, 1h30m or 1d (units ms, s, m, h, d, w, y, largest first)", n.Line, n.Value)
	}
	*d = PromDuration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d PromDuration) MarshalYAML() (any, error) { return d.String(), nil }

var promUnits = []struct {
	unit string
	mult uint64
}{ // in the order they must appear
	{"y", uint64(365 * 24 * time.Hour)}, {"w", uint64(7 * 24 * time.Hour)}, {"d", uint64(24 * time.Hour)},
	{"h", uint64(time.Hour)}, {"m", uint64(time.Minute)}, {"s", uint64(time.Second)}, {"ms", uint64(time.Millisecond)},
}

// ParsePromDuration parses a duration as Prometheus' model.ParseDuration
// does: the same strings are accepted, with the same values.
func ParsePromDuration(s string) (time.Duration, error) {
	switch s {
	case "0":
		return 0, nil
	case "":
		return 0, errors.New("empty duration")
	}
	var dur uint64
	last := -1
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		v, err := strconv.ParseUint(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		pos := unitPos(rest[:j])
		if pos < 0 || pos <= last {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		last, rest = pos, rest[j:]
		mult := promUnits[pos].mult
		if v > 1<<63/mult {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		if dur += v * mult; dur > 1<<63-1 {
			return 0, fmt.Errorf("%q is out of range", s)
		}
	}
	return time.Duration(dur), nil
}

func unitPos(u string) int {
	for i, pu := range promUnits {
		if pu.unit == u {
			return i
		}
	}
	return -1
}

// FormatPromDuration writes d as Prometheus' model.Duration.String does.
func FormatPromDuration(d time.Duration) string {
	ms := int64(d / time.Millisecond)
	if ms == 0 {
		return "0s"
	}
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	var b strings.Builder
	b.WriteString(sign)
	for _, u := range promUnits {
		mult := int64(u.mult / uint64(time.Millisecond))
		if (u.unit == "y" || u.unit == "w") && ms%mult != 0 {
			continue // years and weeks only when exact: 90d, not 12w6d
		}
		if v := ms / mult; v > 0 {
			b.WriteString(strconv.FormatInt(v, 10))
			b.WriteString(u.unit)
			ms -= v * mult
		}
	}
	return b.String()
}

// PromByteSize is a size in bytes as Prometheus writes body_size_limit: a
// number with a unit, every unit a power of 1024 (B, KB or KiB, MB or MiB,
// GB or GiB, TB or TiB, PB or PiB, EB or EiB: 10MB is 10485760 bytes, as in
// Prometheus), or 0. A subset of what Prometheus' units.ParseBase2Bytes
// accepts, with the same values: one number (decimals allowed) and one unit.
type PromByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *PromByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParsePromByteSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a size; want a number with a unit such as 512KB, 10MB or 1GiB (every unit a power of 1024, as in Prometheus), or 0", n.Line, n.Value)
	}
	*b = PromByteSize(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b PromByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String writes b with the largest binary unit that divides it, "0" for
// zero.
func (b PromByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for i := len(promByteUnits) - 1; i > 0; i-- {
		if m := int64(1) << (10 * i); int64(b)%m == 0 {
			return strconv.FormatInt(int64(b)/m, 10) + promByteUnits[i] + "iB"
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

var promByteUnits = []string{"", "K", "M", "G", "T", "P", "E"}

// ParsePromByteSize parses "0" or a number and one unit of PromByteSize,
// computing the value as units.ParseBase2Bytes does.
func ParsePromByteSize(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	bad := fmt.Errorf("%q is not a size", s)
	whole, rest, ok := leadingInt(s)
	if !ok {
		return 0, bad
	}
	pre := len(rest) != len(s)
	f, post := float64(whole), false
	if rest != "" && rest[0] == '.' {
		frac, after, ok := leadingInt(rest[1:])
		if !ok {
			return 0, bad
		}
		scale := 1.0
		for n := len(rest) - 1 - len(after); n > 0; n-- {
			scale *= 10
		}
		f += float64(frac) / scale
		post, rest = len(after) != len(rest)-1, after
	}
	mult := -1.0
	for p, u := range promByteUnits {
		if rest == u+"B" || (p > 0 && rest == u+"iB") {
			mult = float64(int64(1) << (10 * p))
		}
	}
	if (!pre && !post) || mult < 0 {
		return 0, bad
	}
	if f *= mult; f >= 1<<63 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int64(f), nil
}

// leadingInt consumes the leading digits of s, failing as
// units.ParseBase2Bytes does on overflow.
func leadingInt(s string) (x int64, rest string, ok bool) {
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if x >= (1<<63-10)/10 {
			return 0, "", false
		}
		x = x*10 + int64(s[i]-'0')
	}
	return x, s[i:], true
}
