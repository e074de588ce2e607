package gossip

import (
	"context"
	"log/slog"
	"strings"
)

// logWriter turns memberlist's log lines ("[WARN] memberlist: text") into
// debug records of an slog.Logger, keeping memberlist's level as an
// attribute. Memberlist logs every failed probe and push/pull of a member
// that is gone, which is expected churn for a cluster, so none of it rises
// above debug; what matters (members gone, endpoints down) is reported by
// this package's own metrics and by the cluster's status.
type logWriter struct{ l *slog.Logger }

// Write logs one line. The log.Logger that calls it serializes calls.
func (w logWriter) Write(p []byte) (int, error) {
	if !w.l.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	msg := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(msg, "[") {
		if i := strings.IndexByte(msg, ']'); i > 0 {
			level, msg = msg[1:i], strings.TrimSpace(msg[i+1:])
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.l.Debug(msg, "memberlist_level", level)
	return len(p), nil
}
