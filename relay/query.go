package relay

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxQueryBytes bounds the query arguments stored with a body, encoded.
// With import.max_body_bytes it must fit in one record of the log, which
// New checks.
const maxQueryBytes = 64 << 10

// Bounds of the timestamp argument, unix milliseconds. VictoriaMetrics
// takes it as the time of every line without its own, and stamps lines
// with its clock at import when it is 0 or below: for a relay, the time of
// forwarding, however late. It drops samples more than two days ahead of
// its clock (-futureRetention, at least 2d). A time before 2000 is most
// likely seconds sent as milliseconds.
const (
	minTimestamp   = 946684800000 // 2000-01-01T00:00:00Z
	timestampAhead = 48 * time.Hour
)

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// importQuery checks the query arguments of an import request taken at
// now: extra_label (name=value, each name once, not __name__, which would
// rename every series of the body) and timestamp (unix milliseconds from
// 2000 to two days ahead of now), as VictoriaMetrics takes them.
func importQuery(raw string, now time.Time) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, reasonQuery, "cannot parse query: %v", err)
	}
	for k, vs := range q {
		switch k {
		case "extra_label":
			if err := checkExtraLabels(vs); err != nil {
				return nil, err
			}
		case "timestamp":
			if len(vs) != 1 {
				return nil, refuse(http.StatusBadRequest, reasonQuery, "timestamp given %d times; want once", len(vs))
			}
			if err := checkTimestamp(vs[0], now); err != nil {
				return nil, err
			}
		default:
			return nil, refuse(http.StatusBadRequest, reasonQuery, "query argument %q is not accepted; want extra_label or timestamp", k)
		}
	}
	return q, nil
}

func checkExtraLabels(vs []string) error {
	seen := make(map[string]bool, len(vs))
	for _, v := range vs {
		name, _, ok := strings.Cut(v, "=")
		switch {
		case !ok || !labelName.MatchString(name):
			return refuse(http.StatusBadRequest, reasonQuery, "extra_label %q is not accepted; want name=value with a label name", v)
		case name == "__name__":
			return refuse(http.StatusBadRequest, reasonQuery, "extra_label %q is not accepted: __name__ would rename every series of the body", v)
		case seen[name]:
			return refuse(http.StatusBadRequest, reasonQuery, "extra_label %s given twice; want each label once", name)
		}
		seen[name] = true
	}
	return nil
}

func checkTimestamp(v string, now time.Time) error {
	ts, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return refuse(http.StatusBadRequest, reasonQuery, "timestamp %q is not accepted; want unix milliseconds, an integer", v)
	}
	if maxTS := now.Add(timestampAhead).UnixMilli(); ts < minTimestamp || ts > maxTS {
		return refuse(http.StatusBadRequest, reasonQuery, "timestamp %d is not accepted; want unix milliseconds from %d (2000-01-01) to %d (two days ahead of the relay's clock)",
			ts, int64(minTimestamp), maxTS)
	}
	return nil
}
