package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/llmgate/llmgate/internal/rotation"
)

type runnerFunc func(context.Context) error

func (f runnerFunc) Run(ctx context.Context) (rotation.Report, error) {
	return rotation.Report{}, f(ctx)
}

func TestHandler(t *testing.T) {
	failure := errors.New("table unreachable")
	tests := []struct {
		name    string
		runner  Runner
		wantErr error
		wantMsg string
	}{
		{name: "successful pass logs done", runner: runnerFunc(func(context.Context) error { return nil }), wantMsg: "rotator run done"},
		{name: "failed pass logs and returns its error", runner: runnerFunc(func(context.Context) error { return failure }), wantErr: failure, wantMsg: "rotator run failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := handler(tt.runner, slog.New(slog.NewJSONHandler(&logs, nil)))
			err := h(context.Background(), events.EventBridgeEvent{ID: "ev-1", DetailType: "Scheduled Event", Time: time.Unix(0, 0)})
			wantFail := tt.wantMsg == "rotator run failed"
			if (err != nil) != wantFail || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want failure %v (wrapping %v)", err, wantFail, tt.wantErr)
			}
			var line struct {
				Msg     string `json:"msg"`
				EventID string `json:"event_id"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Msg != tt.wantMsg || line.EventID != "ev-1" {
				t.Errorf("log = %s, want msg %q with event_id ev-1", logs.Bytes(), tt.wantMsg)
			}
		})
	}
}
