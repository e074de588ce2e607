package testenv

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
)

// Sample is one parsed line of text exposition format.
type Sample struct {
	Name      string
	Labels    map[string]string
	Value     float64
	Timestamp int64 // 0 when the line had none
}

// Key returns name{a="1",b="2"} with labels sorted by name and values
// escaped, a canonical form for comparing series from different sources.
func (s Sample) Key() string { return SeriesKey(s.Name, s.Labels) }

// SeriesKey builds the canonical key of a series. A label with an empty
// value is the same as no label (as Prometheus and VictoriaMetrics treat it)
// and is left out.
func SeriesKey(name string, labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return name
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(labels[k])
		b.WriteString(v)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// ParseText parses text exposition format into canonical series keys and
// values. Comment lines are skipped; a series given twice keeps the last value.
func ParseText(data []byte) (map[string]float64, error) {
	samples, err := ParseSamples(data)
	if err != nil {
		return nil, err
	}
	m := make(map[string]float64, len(samples))
	for _, s := range samples {
		m[s.Key()] = s.Value
	}
	return m, nil
}

// ParseSamples parses text exposition format line by line.
func ParseSamples(data []byte) ([]Sample, error) {
	var out []Sample
	for n, line := range bytes.Split(data, []byte("\n")) {
		l := strings.TrimSpace(string(line))
		if l == "" || l[0] == '#' {
			continue
		}
		s, err := parseLine(l)
		if err != nil {
			return nil, errorf("line %d: %v: %q", n+1, err, l)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseLine(l string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(l, "{ ")
	if i < 0 {
		return s, errorf("no value")
	}
	s.Name = l[:i]
	rest := l[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return s, errorf("bad label")
			}
			name := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			j := 0
			for ; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					break
				}
				v.WriteByte(c)
			}
			if j >= len(rest) {
				return s, errorf("unterminated label value")
			}
			s.Labels[name] = v.String()
			rest = rest[j+1:]
		}
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return s, errorf("want value and optional timestamp")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, err
	}
	s.Value = v
	if len(f) == 2 {
		ts, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return s, err
		}
		s.Timestamp = ts
	}
	return s, nil
}
