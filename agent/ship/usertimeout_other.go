//go:build !linux

package ship

import (
	"syscall"
	"time"
)

// userTimeout does nothing outside Linux.
func userTimeout(time.Duration) func(network, address string, c syscall.RawConn) error { return nil }
