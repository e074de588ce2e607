package gossip

import (
	"errors"
	"fmt"
	"os"
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
