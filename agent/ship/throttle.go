package ship

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// throttle lets one log line per key through per period and counts the
// ones it held back. Safe for concurrent use.
type throttle struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// allow reports whether a line for key may be written now and how many
// were held back since the last one.
func (t *throttle) allow(key string) (ok bool, held int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last, t.held = make(map[string]time.Time), make(map[string]int)
	}
	now := t.now()
	if last, seen := t.last[key]; seen && now.Sub(last) < t.every {
		t.held[key]++
		return false, 0
	}
	t.last[key] = now
	held = t.held[key]
	delete(t.held, key)
	return true, held
}

// warnThrottled logs a warning at most once per key (an endpoint) per 10s.
func (s *Shipper) warnThrottled(key, msg string, args ...any) {
	s.logThrottled(slog.LevelWarn, key, msg, args...)
}

// logThrottled logs at most once per key per 10s and reports how many
// lines it held back since the last one.
func (s *Shipper) logThrottled(level slog.Level, key, msg string, args ...any) {
	ok, held := s.logs.allow(key)
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	s.log.Log(context.Background(), level, msg, args...)
}
