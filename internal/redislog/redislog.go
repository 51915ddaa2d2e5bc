package redislog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Message is the fixed message of every line Logger writes.
const Message = "redis: client log"

// Logger implements go-redis's internal logging interface
// (Printf(ctx, format, v...)) on a *slog.Logger.
type Logger struct {
	log *slog.Logger
}

// New returns a Logger writing to log; a nil log discards.
func New(log *slog.Logger) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Logger{log: log}
}

// Printf logs one go-redis line at level Warn: go-redis logs only what went
// wrong or was worked around (a failed close, a truncated duration, a
// sentinel failover).
func (l *Logger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, Message, "detail", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// Install makes log receive go-redis's own log lines, process-wide
// (redis.SetLogger).
func Install(log *slog.Logger) {
	redis.SetLogger(New(log))
}
