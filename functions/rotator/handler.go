package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Runner is one idempotent rotator pass.
type Runner interface {
	Run(ctx context.Context) error
}

// handler runs r once per scheduled event and logs the outcome. A failed pass returns its
// error, so Lambda counts it (the Errors alarm) and EventBridge's next run tries again.
func handler(r Runner, log *slog.Logger) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, ev events.EventBridgeEvent) error {
		start := time.Now()
		err := r.Run(ctx)
		attrs := []any{"event_id", ev.ID, "scheduled_at", ev.Time, "duration_ms", time.Since(start).Milliseconds()}
		if err != nil {
			log.ErrorContext(ctx, "rotator run failed", append(attrs, "error", err)...)
			return fmt.Errorf("rotator run: %w", err)
		}
		log.InfoContext(ctx, "rotator run done", attrs...)
		return nil
	}
}

// notBuilt stands in for the rotation pass until internal/rotation exists: every run fails,
// so a deployed schedule shows errors instead of silently doing nothing.
type notBuilt struct{}

func (notBuilt) Run(context.Context) error {
	return errors.New("the rotation pass is not built yet (internal/rotation)")
}
