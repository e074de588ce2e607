package testenv

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// StopOnce returns a func that cancels a Run started with the cancel's
// context and returns what Run returned on done, or an error naming what
// when it has not returned within timeout. Later calls return the same.
func StopOnce(cancel context.CancelFunc, done <-chan error, what string, timeout time.Duration) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(timeout):
				err = fmt.Errorf("%s did not return within %s", what, timeout)
			}
		})
		return err
	}
}
