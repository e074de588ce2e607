package ship

import (
	"syscall"
	"time"
)

// tcpUserTimeout is TCP_USER_TIMEOUT (linux/tcp.h), which the syscall
// package does not name.
const tcpUserTimeout = 0x12

// userTimeout returns a dialer control that sets TCP_USER_TIMEOUT to d on
// TCP connections: the kernel closes a connection whose sent data went
// unacknowledged for d. A streamed request writes into its connection's
// buffer whether or not the upstream is still there, so without it a
// path that went silent (a vanished host, a partition: packets dropped,
// nothing reset) would be found only when the stream ends; see
// docs/design/agent.md ("A silent upstream ends its stream within the
// response timeout (2026-12-05)"). An idle connection has nothing
// unacknowledged and is not affected.
func userTimeout(d time.Duration) func(network, address string, c syscall.RawConn) error {
	ms := int(d / time.Millisecond)
	return func(network, _ string, c syscall.RawConn) error {
		if ms <= 0 || (network != "tcp" && network != "tcp4" && network != "tcp6") {
			return nil
		}
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, ms)
		}); err != nil {
			return err
		}
		return serr
	}
}
