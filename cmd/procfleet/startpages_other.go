//go:build !linux

package main

import (
	"context"
	"log/slog"
	"time"
)

const startPagesDelay = 5 * time.Second

// releaseStartPagesAfter does nothing outside Linux.
func releaseStartPagesAfter(context.Context, time.Duration, *slog.Logger) {}
