package store_test

import (
	"context"
	"testing"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestPing_ReportsActiveTable(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestPing_FailsForMissingTable(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.Client(t), "no-such-table")
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping on a missing table succeeded")
	}
}

func TestEnsureTable_CreatesOnceAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := store.New(ctx, store.Options{Table: dynamotest.TableName(t), Region: "us-east-1", Endpoint: dynamotest.Endpoint(t)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.EnsureTable(ctx); err != nil {
			t.Fatalf("EnsureTable #%d: %v", i+1, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after EnsureTable: %v", err)
	}
}
