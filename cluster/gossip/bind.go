package gossip

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// BindError is Run's error when the gossip cannot listen on its address:
// the port is taken (another member on the same host), or the address is
// not one of the host's. Check for it with errors.As.
type BindError struct {
	// Addr is the address, host:port, that could not be bound.
	Addr string
	// Proto is "tcp" or "udp": memberlist needs both.
	Proto string
	// Err is the system's reason, such as syscall.EADDRINUSE.
	Err error
}

func (e *BindError) Error() string {
	return fmt.Sprintf("cannot listen on %s (gossip, %s): %v", e.Addr, e.Proto, e.Err)
}

func (e *BindError) Unwrap() error { return e.Err }

// checkBind binds addr:port for TCP and UDP and lets go of them again, so
// that a taken port is reported as a BindError with the system's reason:
// memberlist reports it as text only. A port of 0 picks a free one, which
// cannot be taken. Another process could take the port between this check
// and memberlist's own bind; memberlist then fails with its text, which
// Run reports too.
func checkBind(addr string, port int) error {
	if port == 0 {
		return nil
	}
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	ln, err := net.Listen("tcp", hp)
	if err != nil {
		return &BindError{Addr: hp, Proto: "tcp", Err: sysErr(err)}
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", hp)
	if err != nil {
		return &BindError{Addr: hp, Proto: "udp", Err: sysErr(err)}
	}
	return pc.Close()
}

// sysErr returns the system's reason inside err ("address already in
// use"), without net's "listen tcp ADDR: bind:" prefix; err when there is
// none.
func sysErr(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
