package testenv

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// MainWithLeakCheck runs the package's tests and fails them when
// goroutines outlive the tests: every Run must return after its goroutines
// exit. Call it from TestMain; it does not return.
func MainWithLeakCheck(m *testing.M) {
	before, _ := goroutines()
	code := m.Run()
	// The fuzzing engine keeps goroutines of its own.
	fuzzing := false
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		fuzzing = true
	}
	if code == 0 && !fuzzing {
		// Keep-alive connections of the tests' own HTTP clients are not leaks.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		n, stacks := goroutines()
		for n > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			n, stacks = goroutines()
		}
		if n > before {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after\n%s\n", before, n, stacks)
			code = 1
		}
	}
	os.Exit(code)
}

// libraryGoroutines are started once per process by libraries and live on
// by design.
var libraryGoroutines = []string{
	"metrics.summariesSwapCron", // VictoriaMetrics/metrics, on the first Summary
	// An embedded etcd member's peer /version handler that came in while
	// the member closed can stay blocked on the closed backend's lock for
	// good (etcd v3.7.3); seen once under -race in cluster/configstore.
	"etcdhttp.newPeerHandler.versionHandler",
}

// goroutines counts the live goroutines other than the libraries' own and
// returns their stacks.
func goroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var kept []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		lib := false
		for _, l := range libraryGoroutines {
			lib = lib || strings.Contains(g, l)
		}
		if !lib && strings.TrimSpace(g) != "" {
			kept = append(kept, g)
		}
	}
	return len(kept), strings.Join(kept, "\n\n")
}
