package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/llmgate/llmgate/internal/rotation"
)

// Runner is one idempotent rotator pass (*rotation.Rotator).
type Runner interface {
	Run(ctx context.Context) (rotation.Report, error)
}

// handler runs r once per scheduled event. A pass that could not run returns its error, so
// Lambda counts it (the Errors alarm); items that failed inside a pass are left for the next
// run, which the schedule starts anyway.
func handler(r Runner, log *slog.Logger) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, ev events.EventBridgeEvent) error {
		start := time.Now()
		rep, err := r.Run(ctx)
		attrs := []any{"event_id", ev.ID, "scheduled_at", ev.Time, "duration_ms", time.Since(start).Milliseconds(), "failures", rep.Failures, "more", rep.More}
		if err != nil {
			log.ErrorContext(ctx, "rotator run failed", append(attrs, "error", err)...)
			return fmt.Errorf("rotator run: %w", err)
		}
		log.InfoContext(ctx, "rotator run done", attrs...)
		return nil
	}
}
