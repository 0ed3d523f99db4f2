package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/llmgate/llmgate/internal/rotation"
)

// Runner is one idempotent rotator pass (*rotation.Rotator); attrs are added to the lines
// the pass logs.
type Runner interface {
	Run(ctx context.Context, attrs ...any) (rotation.Report, error)
}

// handler runs r once per scheduled event. The pass logs the run's one summary line, tagged
// with the event. A pass that could not run returns its error, so Lambda counts it (the
// Errors alarm); items that failed inside a pass are left for the next run, which the
// schedule starts anyway.
func handler(r Runner) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, ev events.EventBridgeEvent) error {
		if _, err := r.Run(ctx, "event_id", ev.ID, "scheduled_at", ev.Time); err != nil {
			return fmt.Errorf("rotator run: %w", err)
		}
		return nil
	}
}
