package configstore

import (
	"log/slog"
	"time"
)

// Option changes a default of New.
type Option func(*options)

type options struct {
	historyLimit int
	retryMin     time.Duration
	retryMax     time.Duration
	logger       *slog.Logger
	author       Author
}

func defaultOptions() options {
	return options{
		historyLimit: 100,
		retryMin:     100 * time.Millisecond,
		retryMax:     2 * time.Second,
		logger:       slog.New(slog.DiscardHandler),
	}
}

// WithHistoryLimit sets how many earlier versions of the config are kept
// under config-history/, besides the current one. Default 100; 0 keeps
// none. Each write drops the versions beyond the limit.
func WithHistoryLimit(n int) Option {
	return func(o *options) { o.historyLimit = n }
}

// WithRetry sets the least and the most time Watch waits before watching
// again after an error; the wait doubles from least to most. Default 100ms
// and 2s.
func WithRetry(least, most time.Duration) Option {
	return func(o *options) { o.retryMin, o.retryMax = least, most }
}

// WithAuthor sets who the store's writes are recorded as written by (see
// Meta). Default: nobody; the time and note are recorded still.
func WithAuthor(a Author) Option {
	return func(o *options) { o.author = a }
}

// WithLogger sets the logger. Default: discard. Watch logs when it loses
// etcd and when it has it back, not each failed attempt.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}
