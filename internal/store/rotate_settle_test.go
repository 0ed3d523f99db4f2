package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store"
)

// budgetedAccounts gives the key every kind of budget and a parallel limit, and the user a
// budget, so a settlement touches every counter a rotation must carry.
func budgetedAccounts(a *accounts) {
	a.key.MaxBudget = ptr(10.0)
	a.key.MaxParallelRequests = ptr(int64(2))
	a.key.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 5}}
	a.key.ModelMaxBudget = map[string]store.ModelBudget{"gpt-4o": {BudgetLimit: 3}}
	a.user.MaxBudget = ptr(20.0)
}

// settled runs a reserved call to its end with the given cost.
func settled(t *testing.T, s *store.Store, a *accounts, id string, reserve, cost float64) {
	t.Helper()
	ctx := context.Background()
	r, err := s.Reserve(ctx, a.input(id, reserve))
	if err != nil {
		t.Fatalf("Reserve %s: %v", id, err)
	}
	log := a.input(id, reserve).Log
	if err := s.Settle(ctx, r, store.Settlement{Cost: cost, Log: &log}); err != nil {
		t.Fatalf("Settle %s: %v", id, err)
	}
}

// ledger adds up the spend logs of user u1.
func ledger(t *testing.T, s *store.Store) float64 {
	t.Helper()
	logs, err := s.SpendLogs(context.Background(), store.SpendLogFilter{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, l := range logs {
		sum += l.Spend
	}
	return sum
}

func TestSettle_AfterRotationChargesTheActiveRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		grace time.Duration
		stale bool // the call never settles: SettleStale charges its estimate
	}{
		{"with grace, settled by the call", time.Hour, false},
		{"without grace, settled by the call", 0, false},
		{"with grace, settled by SettleStale", time.Hour, true},
		{"without grace, settled by SettleStale", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, _, _ := newStore(t)
			a := newAccounts(t, s, budgetedAccounts)
			settled(t, s, a, "before", 0.5, 0.125) // amounts exact in binary

			in := a.input("in-flight", 0.5)
			in.Estimate = 0.375
			r, err := s.Reserve(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: a.key.Token, NewToken: "rotated", KeyName: "sk-...new", Grace: tt.grace, Now: time.Now()}); err != nil {
				t.Fatalf("RotateKey: %v", err)
			}
			actual := 0.25
			if tt.stale {
				actual = in.Estimate
				if n, err := s.SettleStale(ctx, r.ExpireAt().Add(time.Second), 10); err != nil || n != 1 {
					t.Fatalf("SettleStale = %d, %v; want 1 settled", n, err)
				}
			} else {
				log := in.Log
				if err := s.Settle(ctx, r, store.Settlement{Cost: actual, Log: &log}); err != nil {
					t.Fatalf("Settle after the rotation: %v", err)
				}
			}

			want := 0.125 + actual
			k, err := s.GetKey(ctx, "rotated")
			if err != nil {
				t.Fatal(err)
			}
			w, mb := k.BudgetLimits[0], k.ModelMaxBudget["gpt-4o"]
			if k.Spend != want || *k.Remaining != 10-want || k.Reserved != 0 || k.Inflight != 0 || k.ModelSpend["gpt-4o"] != want {
				t.Errorf("new record: spend %v remaining %v reserved %v inflight %v model_spend %v; want %v %v 0 0 %v",
					k.Spend, *k.Remaining, k.Reserved, k.Inflight, k.ModelSpend["gpt-4o"], want, 10-want, want)
			}
			if w.Spend != want || w.Remaining != 5-want || w.Reserved != 0 {
				t.Errorf("window: spend %v remaining %v reserved %v; want %v %v 0", w.Spend, w.Remaining, w.Reserved, want, 5-want)
			}
			if mb.Spend != want || mb.Remaining != 3-want || mb.Reserved != 0 {
				t.Errorf("model budget: spend %v remaining %v reserved %v; want %v %v 0", mb.Spend, mb.Remaining, mb.Reserved, want, 3-want)
			}
			if sum := ledger(t, s); sum != k.Spend {
				t.Errorf("spend logs add up to %v, key spend is %v", sum, k.Spend)
			}
			if u, err := s.GetUser(ctx, "u1"); err != nil || u.Spend != want || u.Reserved != 0 {
				t.Errorf("user = %+v, %v; want spend %v, reserved 0", u, err, want)
			}
			old, err := s.GetKey(ctx, a.key.Token)
			switch {
			case tt.grace == 0 && !errors.Is(err, store.ErrNotFound):
				t.Errorf("old hash after a rotation without grace: %+v, %v; want ErrNotFound", old, err)
			case tt.grace > 0 && (err != nil || !old.IsPointer() || old.Spend != 0 || old.Reserved != 0 || old.Inflight != 0):
				t.Errorf("pointer after the settle = %+v, %v; want a pointer without counters", old, err)
			}
		})
	}
}

func TestSettle_FollowsSeveralRotations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, budgetedAccounts)
	r, err := s.Reserve(ctx, a.input("call", 0.5))
	if err != nil {
		t.Fatal(err)
	}
	prev := a.key.Token
	for i, grace := range []time.Duration{time.Hour, 0} {
		next := "rotated-" + fmtInt(i)
		if _, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: prev, NewToken: next, Grace: grace, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		prev = next
	}
	log := a.input("call", 0.5).Log
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.3, Log: &log}); err != nil {
		t.Fatal(err)
	}
	k, err := s.GetKey(ctx, prev)
	if err != nil {
		t.Fatal(err)
	}
	if k.Spend != 0.3 || *k.Remaining != 9.7 || k.Reserved != 0 || k.Inflight != 0 {
		t.Errorf("record after two rotations: spend %v remaining %v reserved %v inflight %v; want 0.3 9.7 0 0", k.Spend, *k.Remaining, k.Reserved, k.Inflight)
	}
}

func TestReserve_WithAKeyCachedBeforeItsRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, budgetedAccounts)
	cached := *a.key
	now := time.Now()
	if _, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: a.key.Token, NewToken: "rotated", Grace: time.Hour, Now: now}); err != nil {
		t.Fatal(err)
	}
	in := a.input("during-grace", 0.5)
	in.Key = &cached
	if _, err := s.Reserve(ctx, in); err != nil {
		t.Fatalf("Reserve with the old key during its grace period: %v", err)
	}
	k, _ := s.GetKey(ctx, "rotated")
	if k.Spend != 0.5 || k.Reserved != 0.5 || k.Inflight != 1 {
		t.Errorf("new record: spend %v reserved %v inflight %v; want the call charged to it (0.5 0.5 1)", k.Spend, k.Reserved, k.Inflight)
	}
	if p, _ := s.GetKey(ctx, a.key.Token); p.Spend != 0 || p.Inflight != 0 {
		t.Errorf("pointer charged: spend %v inflight %v", p.Spend, p.Inflight)
	}

	in = a.input("after-revoke", 0.5)
	in.Key, in.Now = &cached, now.Add(time.Hour)
	_, err := s.Reserve(ctx, in)
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonKeyMissing {
		t.Errorf("Reserve with the old key after its revoke time = %v, want a key_missing refusal", err)
	}
}

// rawNumber reads a number attribute of a key item as DynamoDB stores it.
func rawNumber(t *testing.T, c *dynamodb.Client, table, token, attr string) string {
	t.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: store.PrefixKey + token},
			"sk": &types.AttributeValueMemberS{Value: store.SortKey},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := out.Item[attr].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("%s of %s = %v, want a number", attr, token, out.Item[attr])
	}
	return n.Value
}

func TestRotateKey_CarriesCountersDecimalForDecimal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	if err := s.CreateKey(ctx, newKey("old", func(k *store.Key) { k.MaxBudget = ptr(100000.0) })); err != nil {
		t.Fatal(err)
	}
	// 17 significant digits: more than a float64 holds.
	_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: store.PrefixKey + "old"},
			"sk": &types.AttributeValueMemberS{Value: store.SortKey},
		},
		UpdateExpression: aws.String("SET spend = :s, remaining = :r, reserved = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": &types.AttributeValueMemberN{Value: "12345.123456789012"},
			":r": &types.AttributeValueMemberN{Value: "87654.876543210988"},
			":v": &types.AttributeValueMemberN{Value: "0.000000000001"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: "old", NewToken: "new", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]string{"spend": "12345.123456789012", "remaining": "87654.876543210988", "reserved": "0.000000000001"} {
		if got := rawNumber(t, c, table, "new", attr); got != want {
			t.Errorf("%s after the rotation = %s, want %s", attr, got, want)
		}
	}

	// A change of max_budget in the rotation (regenerate with fields) re-bases remaining exactly.
	if _, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: "new", NewToken: "newer", Now: time.Now(),
		Change: func(k *store.Key) error { k.MaxBudget = ptr(20000.0); return nil }}); err != nil {
		t.Fatal(err)
	}
	if got := rawNumber(t, c, table, "newer", "remaining"); got != "7654.876543210988" {
		t.Errorf("remaining after a rotation that sets max_budget 20000 = %s, want 7654.876543210988", got)
	}
}

func TestRotateKey_RetriesWhenACallReservesDuringIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, func(a *accounts) { a.key.MaxParallelRequests = ptr(int64(5)) })
	calls := 0
	_, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: a.key.Token, NewToken: "new", Now: time.Now(), Change: func(*store.Key) error {
		calls++
		if calls == 1 {
			// A zero-cost call changes neither spend nor updated_at: only reserved bookkeeping
			// and the lease count.
			if _, err := s.Reserve(ctx, a.input("free", 0)); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("change ran %d times, want 2 (the first write conflicts with the reservation)", calls)
	}
	if k, _ := s.GetKey(ctx, "new"); k.Inflight != 1 {
		t.Errorf("inflight after the rotation = %d, want the lease taken during it (1)", k.Inflight)
	}
}

func TestUpdateKey_KeptWindowKeepsWhatCallsInFlightReserved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, func(a *accounts) {
		a.key.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 5, ResetAt: ptr(time.Now().Add(time.Hour).UTC())}}
	})
	r, err := s.Reserve(ctx, a.input("call", 0.5))
	if err != nil {
		t.Fatal(err)
	}
	// The admin replaces budget_limits as /key/update does: new windows, with the spend of
	// a window of the same budget_duration and nothing else.
	if _, err := s.UpdateKey(ctx, a.key.Token, func(k *store.Key) error {
		old := k.BudgetLimits[0]
		k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 6, Spend: old.Spend, Remaining: 6 - old.Spend, ResetAt: old.ResetAt}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	log := a.input("call", 0.5).Log
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.2, Log: &log}); err != nil {
		t.Fatal(err)
	}
	k, _ := s.GetKey(ctx, a.key.Token)
	if w := k.BudgetLimits[0]; w.Spend != 0.2 || w.Reserved != 0 || w.MaxBudget != 6 {
		t.Fatalf("window after the settle = %+v, want spend 0.2, reserved 0, max 6", w)
	}
	rec, err := s.GetBudgetRecord(ctx, store.Ref{PK: store.PrefixKey + a.key.Token, SK: store.SortKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ResetBudgets(ctx, rec, store.BudgetReset{Windows: map[int]*time.Time{0: ptr(time.Now().Add(25 * time.Hour))}}); err != nil {
		t.Fatal(err)
	}
	k, _ = s.GetKey(ctx, a.key.Token)
	if w := k.BudgetLimits[0]; w.Spend != 0 || w.Remaining != 6 {
		t.Errorf("window after its reset = spend %v remaining %v, want 0 and 6", w.Spend, w.Remaining)
	}
}

// TestDeleteRevoked_KeepsAHashWhoseDeliveryIsPending: until its successor's value is current
// in Secrets Manager, a rotated-out hash past its revoke time is the only working value
// applications can read, so the rotator must not delete it.
func TestDeleteRevoked_KeepsAHashWhoseDeliveryIsPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	if err := s.CreateKey(ctx, newKey("old", func(k *store.Key) { k.KeyAlias = ptr("svc") })); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.PutDelivery(ctx, &store.Delivery{NewToken: "new", OldToken: "old", KeyAlias: "svc", Version: "new", RevokeAt: now, RetryAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: "old", NewToken: "new", KeyName: "sk-...wxyz", Grace: time.Hour, Now: now}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Hour)
	if deleted, err := s.DeleteRevoked(ctx, "old", later); err != nil || deleted {
		t.Fatalf("DeleteRevoked with the delivery pending = %v, %v; want kept", deleted, err)
	}
	// A failed delivery retry pushes the revoke time back; a finished one brings it forward.
	if err := s.ExtendPointer(ctx, "old", "new", later.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ExtendPointer(ctx, "old", "new", later); err != nil { // never shortens
		t.Fatal(err)
	}
	if p, err := s.GetKey(ctx, "old"); err != nil || p.RevokeAt == nil || !p.RevokeAt.Equal(later.Add(24*time.Hour)) {
		t.Fatalf("after ExtendPointer the old hash = %+v, %v; want it revoked at %v", p, err, later.Add(24*time.Hour))
	}
	if err := s.RevokePointerAt(ctx, "old", "new", later.Add(time.Hour), later); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDelivery(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if deleted, err := s.DeleteRevoked(ctx, "old", later.Add(time.Hour)); err != nil || !deleted {
		t.Errorf("DeleteRevoked once delivered and revoked = %v, %v; want deleted", deleted, err)
	}
}
