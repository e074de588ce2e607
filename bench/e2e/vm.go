package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
)

// vmServer is a running VictoriaMetrics single-node and its HTTP API.
type vmServer struct {
	addr string
	proc *benchproc.Proc
}

// waitOK polls http://addr/path every 100 ms until it answers 200.
func waitOK(ctx context.Context, what, addr, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := benchproc.Get(ctx, addr, path)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within %s: %w", what, path, timeout, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// flush makes everything ingested so far searchable.
func (vm *vmServer) flush(ctx context.Context) error {
	_, err := benchproc.Get(ctx, vm.addr, "/internal/force_flush")
	return err
}

// rowsInserted is vm_rows_inserted_total summed over its types (one per
// ingestion protocol) from VictoriaMetrics' own /metrics.
func (vm *vmServer) rowsInserted(ctx context.Context) (float64, error) {
	b, err := benchproc.Get(ctx, vm.addr, "/metrics")
	if err != nil {
		return 0, err
	}
	return sumMetric(string(b), "vm_rows_inserted_total"), nil
}

// sumMetricWith is sumMetric over the samples whose line holds label
// (such as `path="/api/v1/write"`).
func sumMetricWith(text, name, label string) float64 {
	var sel strings.Builder
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			sel.WriteString(line)
		}
	}
	return sumMetric(sel.String(), name)
}

// sumMetric adds the values of every sample of name in Prometheus text.
func sumMetric(text, name string) float64 {
	var sum float64
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// queryScalar runs an instant query at t and returns the value of its
// single result (0 when the result is empty).
func (vm *vmServer) queryScalar(ctx context.Context, expr string, t time.Time) (float64, error) {
	res, err := vm.query(ctx, expr, "", t)
	if err != nil {
		return 0, err
	}
	if len(res) > 1 {
		return 0, fmt.Errorf("query %s: %d results, want 1", expr, len(res))
	}
	return res[""], nil
}

// scalarQuery is one expression of queryScalars and where its value goes.
type scalarQuery struct {
	expr string
	into *float64
}

// queryScalars runs each query at t with queryScalar, in order, and stops
// at the first error.
func (vm *vmServer) queryScalars(ctx context.Context, t time.Time, qs []scalarQuery) error {
	for _, q := range qs {
		v, err := vm.queryScalar(ctx, q.expr, t)
		if err != nil {
			return err
		}
		*q.into = v
	}
	return nil
}

// query runs an instant query at t, bypassing the rollup cache, and returns
// its results by the value of label (all under "" when label is "").
func (vm *vmServer) query(ctx context.Context, expr, label string, t time.Time) (map[string]float64, error) {
	q := url.Values{
		"query":   {expr},
		"time":    {strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)},
		"nocache": {"1"},
	}
	b, err := benchproc.Get(ctx, vm.addr, "/api/v1/query?"+q.Encode())
	if err != nil {
		return nil, err
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	out := map[string]float64{}
	for _, res := range r.Data.Result {
		s, _ := res.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %q: %w", expr, s, err)
		}
		out[res.Metric[label]] += v
	}
	return out, nil
}

// exported is one series of /api/v1/export: its labels and raw samples.
type exported struct {
	Metric     map[string]string `json:"metric"`
	Timestamps []int64           `json:"timestamps"`
}

// export returns the raw samples since start of every series matching any
// of match: what is stored, without query-time processing or cache. end is
// a minute ahead: left out, it defaults to now rounded down to the second
// (lib/httputil.GetTime), which would hide the samples of the current
// second until the next one begins.
func (vm *vmServer) export(ctx context.Context, match []string, start time.Time) ([]exported, error) {
	q := url.Values{
		"match[]": match,
		"start":   {strconv.FormatInt(start.Unix(), 10)},
		"end":     {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)},
	}
	b, err := benchproc.Get(ctx, vm.addr, "/api/v1/export?"+q.Encode())
	if err != nil {
		return nil, err
	}
	var out []exported
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("export line: %w", err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	return sleep(ctx, time.Until(t))
}
