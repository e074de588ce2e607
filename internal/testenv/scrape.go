package testenv

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scrape returns the body of GET url, a page of text exposition format
// such as a /metrics page, or an error for a failed request or a status
// other than 200.
func Scrape(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", errorf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", errorf("scrape %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", errorf("scrape %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// SumMetric returns the value of the series named exactly name (labels
// included, as written) in page or, when name has no labels, the sum of
// every series of that metric name. It reports false when page has none.
// Unlike ParseText it reads only the lines it needs, so that a page with
// lines it cannot parse still answers.
func SumMetric(page, name string) (float64, bool) {
	var sum float64
	found := false
	for l := range strings.Lines(page) {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || rest == "" {
			continue
		}
		switch {
		case rest[0] == ' ':
		case rest[0] == '{' && !strings.Contains(name, "{"):
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// ScrapeMetric scrapes url and returns SumMetric of name, with an error
// when the scrape fails or the page has no such series.
func ScrapeMetric(url, name string) (float64, error) {
	page, err := Scrape(url)
	if err != nil {
		return 0, err
	}
	v, ok := SumMetric(page, name)
	if !ok {
		return 0, errorf("%s: no series %s", url, name)
	}
	return v, nil
}

// Eventually calls cond every interval until it returns nil, and fails the
// test with cond's last error when timeout passes first. It returns how
// long it waited.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(interval)
	}
}

// RowsInserted returns VictoriaMetrics' count of rows taken by the
// Prometheus text import since it started (vm_rows_inserted_total
// {type="prometheus"}), duplicates included: the difference from the
// distinct samples stored counts re-delivered samples.
func (vm *VM) RowsInserted() (float64, error) {
	v, err := ScrapeMetric("http://"+vm.Addr+"/metrics", `vm_rows_inserted_total{type="prometheus"}`)
	if err != nil {
		return 0, fmt.Errorf("rows inserted: %w", err)
	}
	return v, nil
}
