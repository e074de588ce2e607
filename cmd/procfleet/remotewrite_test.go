package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

func TestRemoteWriteUpstreams(t *testing.T) {
	s := config.Ship{Protocols: map[string]config.UpstreamProtocol{
		"http://p2/api/v1/write": {Protocol: config.ProtocolRemoteWrite, RemoteWriteVersion: 2},
		"http://imp/x":           {Protocol: config.ProtocolRemoteWrite},
	}}
	got := remoteWriteUpstreams(&s, []string{"http://imp/x"}, []string{"http://p1/api/v1/write", "http://p2/api/v1/write"})
	if want := []string{"http://imp/x", "http://p1/api/v1/write", "http://p2/api/v1/write"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("upstreams %q; want %q", got, want)
	}
	want := map[string]config.UpstreamProtocol{
		"http://p1/api/v1/write": {Protocol: config.ProtocolRemoteWrite},
		// The file's version 2 stays.
		"http://p2/api/v1/write": {Protocol: config.ProtocolRemoteWrite, RemoteWriteVersion: 2},
	}
	if !reflect.DeepEqual(s.Protocols, want) {
		t.Fatalf("protocols %+v; want %+v", s.Protocols, want)
	}
}

// procfleet agent --remote-write URL pushes to VictoriaMetrics' remote
// write API: the series arrive with the agent's instance and job labels.
func TestAgentBinaryRemoteWrite(t *testing.T) {
	vm := testenv.StartVM(t)
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	writeFile(t, cfg, "hostname: rw-host\nlisten: 127.0.0.1:0\n")
	cmd := exec.Command(binary, "agent", "--config", cfg, "--remote-write", "http://"+vm.Addr+"/api/v1/write")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		vm.Flush(t)
		s, err := vm.TryExport(`node_context_switches_total{instance="rw-host",job="procfleet"}`)
		if err == nil && len(s) == 1 && len(s[0].Values) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no series from the agent's remote write in VictoriaMetrics (err %v, %d series):\n%s", err, len(s), stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
