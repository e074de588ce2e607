package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRelayMemoryLargeBodies posts four 32MiB bodies at once to the relay
// binary with its defaults, each again after a 429 until it is taken, and
// reads the relay's peak resident memory (VmHWM in /proc/PID/status). A
// body is held once, in chunks counted against import.max_inflight_bytes
// (64MiB), and written to the log from them, so the peak stays under
// 192MiB. Before, each body was read whole by io.ReadAll, copied into a
// record and that into the log's write buffer, four at a time (2 per
// CPU): 446MB here.
func TestRelayMemoryLargeBodies(t *testing.T) {
	r := newRelay(t, t.TempDir(), relayShipConfig, "http://127.0.0.1:1/api/v1/import/prometheus")
	r.start()
	r.waitReady()
	const bodies, size = 4, 32 << 20
	var sb strings.Builder
	ts := time.Now().UnixMilli()
	for i := 0; sb.Len() < size-100; i++ {
		fmt.Fprintf(&sb, "relay_memory{i=\"%d\"} %d %d\n", i, i, ts)
	}
	body := []byte(sb.String())
	client := &http.Client{Timeout: 2 * time.Minute}
	var wg sync.WaitGroup
	var mu sync.Mutex
	busy := 0
	errs := make([]error, bodies)
	for i := range bodies {
		wg.Go(func() {
			deadline := time.Now().Add(3 * time.Minute)
			for time.Now().Before(deadline) {
				resp, err := client.Post(r.importURL(), "text/plain", bytes.NewReader(body))
				if err != nil {
					errs[i] = err
					return
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusNoContent:
					return
				case http.StatusTooManyRequests:
					mu.Lock()
					busy++
					mu.Unlock()
					time.Sleep(200 * time.Millisecond)
				default:
					errs[i] = fmt.Errorf("%d %s", resp.StatusCode, msg)
					return
				}
			}
			errs[i] = fmt.Errorf("not taken within 3 minutes")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	hwm := statusKiB(t, string(status), "VmHWM")
	t.Logf("4 concurrent bodies of %d bytes: relay peak RSS %.0f MiB, %d answers 429 on the way", len(body), float64(hwm)/1024, busy)
	if hwm > 192<<10 {
		t.Fatalf("relay peak RSS %d KiB; want under 192MiB for 4 bodies of 32MiB with import.max_inflight_bytes 64MiB", hwm)
	}
}

// statusKiB returns the field of /proc/PID/status text in KiB.
func statusKiB(t *testing.T, status, field string) int64 {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}
