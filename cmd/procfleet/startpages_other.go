//go:build !linux

package main

import (
	"context"
	"log/slog"
	"time"
)

const (
	startPagesDelay = 5 * time.Second
	randomReadFor   = 5 * time.Minute
)

// releaseStartPagesAfter does nothing outside Linux.
func releaseStartPagesAfter(context.Context, time.Duration, time.Duration, *slog.Logger) {}
