package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/llmgate/llmgate/internal/rotation"
)

// runnerFunc is a Runner that records the attributes it was given.
type runnerFunc func(ctx context.Context, attrs ...any) error

func (f runnerFunc) Run(ctx context.Context, attrs ...any) (rotation.Report, error) {
	return rotation.Report{}, f(ctx, attrs...)
}

func TestHandler(t *testing.T) {
	failure := errors.New("table unreachable")
	for _, runErr := range []error{nil, failure} {
		var got []any
		h := handler(runnerFunc(func(_ context.Context, attrs ...any) error {
			got = attrs
			return runErr
		}))
		err := h(context.Background(), events.EventBridgeEvent{ID: "ev-1", DetailType: "Scheduled Event", Time: time.Unix(0, 0)})
		if !errors.Is(err, runErr) || (runErr == nil) != (err == nil) {
			t.Errorf("run error %v: handler returned %v, want it wrapped", runErr, err)
		}
		if i := slices.Index(got, any("event_id")); i < 0 || i+1 >= len(got) || got[i+1] != "ev-1" {
			t.Errorf("attrs passed to Run = %v, want event_id ev-1", got)
		}
	}
}
