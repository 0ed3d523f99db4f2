package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// TestHandler_ReplaysTheScheduledEvent feeds events/rotator-scheduled.json, the event the
// EventBridge rule sends, to the handler with a real rotator on DynamoDB Local: the key whose
// budget period ended is reset.
func TestHandler_ReplaysTheScheduledEvent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "rotator-scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("decode the scheduled event: %v", err)
	}
	ctx := context.Background()
	st := store.NewWithClient(dynamotest.NewTable(t))
	due := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	k := &store.Key{Token: "h1", KeyName: "sk-...abcd"}
	k.MaxBudget, k.Spend, k.BudgetDuration, k.BudgetResetAt = ptr(10.0), 4, "1d", &due
	k.CreatedAt, k.UpdatedAt = due.Add(-time.Hour), due.Add(-time.Hour)
	if err := st.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	r := rotation.New(rotation.Options{
		Store: st, Rekeyer: keyvault.NewRekeyer(st, nil), Reconciler: st, Logger: log,
		Now: func() time.Time { return ev.Time },
	})
	if err := handler(r)(ctx, ev); err != nil {
		t.Fatalf("handler: %v", err)
	}
	got, err := st.GetKey(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spend != 0 || !got.BudgetResetAt.Equal(due.AddDate(0, 0, 1)) {
		t.Errorf("key after the scheduled run: spend %v, next reset %v; want 0 and %v", got.Spend, got.BudgetResetAt, due.AddDate(0, 0, 1))
	}
	// One summary line per run, with the run's counts and the event that started it.
	var summaries []map[string]any
	for line := range strings.Lines(logs.String()) {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "rotator run") {
			summaries = append(summaries, l)
		}
	}
	if len(summaries) != 1 || summaries[0]["resets"] != 1.0 || summaries[0]["event_id"] != ev.ID {
		t.Errorf("summary lines = %v; want exactly one, with resets 1 and event_id %s", summaries, ev.ID)
	}
}

func ptr[T any](v T) *T { return &v }
