package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// VM is a running VictoriaMetrics single-node server.
type VM struct {
	// Addr is host:port.
	Addr string
	// ImportURL is its Prometheus text import endpoint.
	ImportURL string

	cmd  *exec.Cmd
	args []string
}

// Kill stops the server at once with SIGKILL, as a crash would.
func (vm *VM) Kill() {
	if vm.cmd != nil {
		_ = vm.cmd.Process.Kill()
	}
}

// Pause stops the server with SIGSTOP: it still accepts connections (the
// kernel does) but answers nothing, as a stalled server. Resume or Kill
// ends it.
func (vm *VM) Pause() {
	if vm.cmd != nil {
		_ = vm.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume continues a server stopped by Pause.
func (vm *VM) Resume() {
	if vm.cmd != nil {
		_ = vm.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Restart starts the server again on the same address and storage after
// Kill (an outage that ends), and waits until it is healthy.
func (vm *VM) Restart(t testing.TB) {
	t.Helper()
	vm.Kill()
	_ = vm.cmd.Wait()
	vm.cmd = startProcess(t, Bin(t, "victoria-metrics"), vm.args...)
	vm.waitHealthy(t)
}

// StartVM starts the pinned VictoriaMetrics on a free loopback port with a
// storage directory under t.TempDir(), and waits until it is healthy.
func StartVM(t testing.TB, extra ...string) *VM {
	t.Helper()
	addr := FreeAddr(t)
	args := append([]string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + t.TempDir(),
		"-search.latencyOffset=0s",
		"-loggerLevel=WARN",
	}, extra...)
	cmd := startProcess(t, Bin(t, "victoria-metrics"), args...)
	vm := &VM{Addr: addr, ImportURL: "http://" + addr + "/api/v1/import/prometheus", cmd: cmd, args: args}
	vm.waitHealthy(t)
	return vm
}

func (vm *VM) waitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + vm.Addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: VictoriaMetrics did not get healthy on %s: %v", vm.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Series is one exported series with all its samples.
type Series struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// Key returns the canonical key of s (see SeriesKey).
func (s Series) Key() string {
	labels := make(map[string]string, len(s.Metric))
	name := ""
	for k, v := range s.Metric {
		if k == "__name__" {
			name = v
			continue
		}
		labels[k] = v
	}
	return SeriesKey(name, labels)
}

// Export returns every raw sample of the series matching match, as stored.
func (vm *VM) Export(t testing.TB, match string) []Series {
	t.Helper()
	out, err := vm.TryExport(match)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TryExport is Export that returns its error, for polling.
func (vm *VM) TryExport(match string) ([]Series, error) {
	u := "http://" + vm.Addr + "/api/v1/export?" + url.Values{"match[]": {match}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		return nil, errorf("export: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, errorf("export: %s: %s", resp.Status, b)
	}
	var out []Series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var s Series
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, errorf("export line: %v", err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// Query runs an instant query and returns its result vector as
// canonical series keys and values.
func (vm *VM) Query(t testing.TB, expr string) map[string]float64 {
	t.Helper()
	u := "http://" + vm.Addr + "/api/v1/query?" + url.Values{"query": {expr}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("testenv: query %s: %v", expr, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("testenv: query %s: %v", expr, err)
	}
	out := map[string]float64{}
	for _, res := range r.Data.Result {
		var v float64
		fmt.Sscan(fmt.Sprint(res.Value[1]), &v)
		out[Series{Metric: res.Metric}.Key()] = v
	}
	return out
}

// Flush asks VictoriaMetrics to make recently imported data searchable now.
func (vm *VM) Flush(t testing.TB) {
	t.Helper()
	resp, err := http.Get("http://" + vm.Addr + "/internal/force_flush")
	if err != nil {
		t.Fatalf("testenv: force_flush: %v", err)
	}
	resp.Body.Close()
}

// TryFlush is Flush that returns its error, for polling a server that may
// not be up yet.
func (vm *VM) TryFlush() (bool, error) {
	resp, err := http.Get("http://" + vm.Addr + "/internal/force_flush")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}
