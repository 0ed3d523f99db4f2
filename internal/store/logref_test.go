package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/store"
)

// A log is found by its call id or by its response's id; a response id two calls share
// (an upstream may repeat one) finds the later call, on the step path and the transaction
// path alike.
func TestSpendLogByID_FindsALogByItsResponseID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _, cr := newCrashStore(t)
	a := newAccounts(t, s, budgeted(10, 10, 10))
	start := time.Now().UTC().Add(-time.Minute)
	settle := func(id, response string, at time.Time, in store.ReserveInput) {
		t.Helper()
		r, err := s.Reserve(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Settle(ctx, r, store.Settlement{Cost: 0.1, Log: &store.SpendLog{
			RequestID: id, ResponseID: response, APIKey: a.key.Token, Model: "gpt-4o", StartTime: at, Status: store.StatusSuccess,
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	settle("r1", "chatcmpl-shared", start, a.input("r1", 0.1))
	settle("r2", "chatcmpl-shared", start.Add(time.Second), a.input("r2", 0.1))
	viaTx := a.input("r3", 0.1)
	viaTx.ProxyMaxBudget = ptr(100.0) // a proxy budget takes the transaction path
	cr.ops.take()
	settle("r3", "chatcmpl-3", start, viaTx)
	if got := cr.ops.take(); got["TransactWriteItems"] < 2 {
		t.Fatalf("r3 sent %v, want its reservation and settlement in transactions", got)
	}
	for id, want := range map[string]string{"r1": "r1", "chatcmpl-shared": "r2", "chatcmpl-3": "r3"} {
		if l, err := s.SpendLogByID(ctx, id); err != nil || l.RequestID != want {
			t.Errorf("SpendLogByID(%q) = %+v, %v; want %s's log", id, l, err, want)
		}
	}
	if _, err := s.SpendLogByID(ctx, "chatcmpl-unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SpendLogByID of an unknown id: %v, want ErrNotFound", err)
	}
}
