package rotation_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
	"github.com/llmgate/llmgate/internal/store/schema"
)

// The rotator's IAM policy (infra) lets it query rotation.Indexes and no other index: in
// AWS a Query of another is denied. A run with every kind of work (a budget reset, a
// crashed call to settle, closed hours to roll up with a log of an older build, whose
// rollup reads by_kind) records the index of each Query it makes.
func TestRun_QueriesOnlyTheIndexesItIsGranted(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	queried := map[string]bool{}
	record := middleware.InitializeMiddlewareFunc("recordIndex", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if q, ok := in.Parameters.(*dynamodb.QueryInput); ok && q.IndexName != nil {
			mu.Lock()
			queried[aws.ToString(q.IndexName)] = true
			mu.Unlock()
		}
		return next.HandleInitialize(ctx, in)
	})
	st := store.NewWithClient(dynamotest.NewTable(t, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error { return s.Initialize.Add(record, middleware.Before) })
	}))
	ctx := context.Background()
	at := utc(2026, 11, 3, 11, 50, 0)
	due := at.Add(-time.Hour)
	tx := st.Tx()
	if err := tx.PutUser(&store.User{UserID: "u1", UserRole: "internal_user",
		Budget: store.Budget{MaxBudget: ptr(20.0), Spend: 12, BudgetDuration: "1d", BudgetResetAt: &due}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A call of an older build (its id carries no time) that settled, and one that crashed.
	l := store.SpendLog{RequestID: "older-build-call", APIKey: "k", ModelGroup: "m", Spend: 0.5, Status: store.StatusSuccess, StartTime: at}
	res, err := st.Reserve(ctx, store.ReserveInput{RequestID: l.RequestID, Model: "m", Now: at, TTL: time.Minute, Log: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx, res, store.Settlement{Cost: l.Spend, Log: &l}); err != nil {
		t.Fatal(err)
	}
	u := &store.User{UserID: "u2", UserRole: "internal_user", Budget: store.Budget{MaxBudget: ptr(5.0)}}
	crashed := store.SpendLog{RequestID: "crashed-call", APIKey: "k", ModelGroup: "m", StartTime: at}
	if _, err := st.Reserve(ctx, store.ReserveInput{RequestID: crashed.RequestID, Model: "m", User: u, Cost: 1, Now: at, TTL: time.Minute, Log: crashed, Check: store.CheckReserve}); err != nil {
		t.Fatal(err)
	}
	r, _ := newRotator(st, newClock(utc(2026, 11, 3, 13, 30, 0)), nil, func(o *rotation.Options) {
		o.Reconciler, o.RotationEnabled = st, true
		o.ReservationTTL, o.RollupBackfill = 20*time.Minute, 3*time.Hour
	})
	if rep := run(t, r); rep.Resets != 1 || rep.Rolled == 0 {
		t.Fatalf("run: %+v, want a reset and hours rolled up", rep)
	}
	mu.Lock()
	defer mu.Unlock()
	for ix := range queried {
		if !slices.Contains(rotation.Indexes, ix) {
			t.Errorf("the run queried index %s, which the rotator is not granted (rotation.Indexes %v)", ix, rotation.Indexes)
		}
	}
	for _, ix := range []string{schema.IndexByKind, schema.IndexDueReset, schema.IndexDueExpire} {
		if !queried[ix] {
			t.Errorf("the run never queried %s (queried %v): the test no longer covers that work", ix, queried)
		}
	}
}
