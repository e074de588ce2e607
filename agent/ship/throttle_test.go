package ship

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := throttle{every: 10 * time.Second, now: func() time.Time { return now }}
	f := func(key string, advance time.Duration, wantOK bool, wantHeld int) {
		t.Helper()
		now = now.Add(advance)
		ok, held := th.allow(key)
		if ok != wantOK || held != wantHeld {
			t.Fatalf("allow(%q) after +%s = %v, %d; want %v, %d", key, advance, ok, held, wantOK, wantHeld)
		}
	}
	f("a", 0, true, 0)
	f("a", time.Second, false, 0)
	f("b", 0, true, 0) // keys are independent
	f("a", 5*time.Second, false, 0)
	f("a", 4*time.Second, true, 2) // 10s after the first: two held back
	f("a", 9*time.Second, false, 0)
}
