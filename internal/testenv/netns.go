package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// NetnsVM is the pinned VictoriaMetrics in a network namespace of its own,
// reached from the test over a veth pair at an address of its own, so that
// the test can cut the path the way a vanished host or a partition does:
// packets are dropped, nothing answers, no connection is reset.
type NetnsVM struct {
	*VM
	ns string
}

var netnsSeq atomic.Int32

// StartNetnsVM starts VictoriaMetrics in a new network namespace and waits
// until it is healthy. It skips the test when not root or without ip(8).
func StartNetnsVM(t testing.TB) *NetnsVM {
	t.Helper()
	NeedNetns(t)
	n := netnsSeq.Add(1)
	ns := fmt.Sprintf("pfvm%d-%d", os.Getpid()%100000, n)
	host := fmt.Sprintf("pfh%d-%d", os.Getpid()%100000, n)
	// A /30 per namespace in 10.213.0.0/16, from the PID and a sequence,
	// so that parallel test binaries do not share one.
	k := (os.Getpid()*7 + int(n)) % 16000
	hostIP := fmt.Sprintf("10.213.%d.%d", k/64, (k%64)*4+1)
	vmIP := fmt.Sprintf("10.213.%d.%d", k/64, (k%64)*4+2)
	IP(t, "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	IP(t, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	IP(t, "addr", "add", hostIP+"/30", "dev", host)
	IP(t, "link", "set", host, "up")
	IP(t, "-n", ns, "addr", "add", vmIP+"/30", "dev", "eth0")
	IP(t, "-n", ns, "link", "set", "eth0", "up")
	IP(t, "-n", ns, "link", "set", "lo", "up")

	addr := vmIP + ":8428"
	args := []string{"netns", "exec", ns, Bin(t, "victoria-metrics"),
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + t.TempDir(),
		"-search.latencyOffset=0s",
		"-loggerLevel=WARN",
	}
	cmd := startProcess(t, "ip", args...)
	vm := &VM{Addr: addr, ImportURL: "http://" + addr + "/api/v1/import/prometheus", cmd: cmd}
	vm.waitHealthy(t)
	return &NetnsVM{VM: vm, ns: ns}
}

// Cut takes the namespace's end of the link down: whatever the test sends
// to VictoriaMetrics from then on is dropped, and nothing comes back.
func (n *NetnsVM) Cut(t testing.TB) {
	t.Helper()
	IP(t, "-n", n.ns, "link", "set", "eth0", "down")
}

// NeedNetns skips the test, saying why, unless it can make network
// namespaces: it runs as root and ip(8) is installed.
func NeedNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: no ip command (iproute2) to make network namespaces")
	}
}

// IP runs ip(8) with args and fails the test when it fails.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
