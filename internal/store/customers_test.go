package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/store"
)

func putCustomer(t *testing.T, s *store.Store, c *store.Customer) {
	t.Helper()
	c.CreatedAt, c.UpdatedAt = time.Now().UTC(), time.Now().UTC()
	tx := s.Tx()
	if err := tx.PutCustomer(c); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// customerInput is a call of a personal key (no user, no team) naming end user id.
func customerInput(key *store.Key, reqID, endUser string, cached *store.Customer, cost float64) store.ReserveInput {
	now := time.Now()
	return store.ReserveInput{
		RequestID: reqID, Key: key, EndUser: endUser, Customer: cached,
		Model: "gpt-4o", Cost: cost, Estimate: cost, Now: now, TTL: time.Minute,
		Log: store.SpendLog{RequestID: reqID, APIKey: key.Token, EndUser: endUser, Model: "gpt-4o", StartTime: now.UTC()},
	}
}

// A request naming a customer is charged to it, whether the caller had its record cached
// or not; a blocked customer and one over budget are refused; an unknown one is not created.
func TestReserve_ChargesTheCustomerTheRequestNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	key := newKey("h-" + t.Name())
	if err := s.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	putCustomer(t, s, &store.Customer{UserID: "cust", Budget: store.Budget{MaxBudget: ptr(1.0)}})
	putCustomer(t, s, &store.Customer{UserID: "blocked", Blocked: true})

	// Not cached: the transaction finds the customer and charges it.
	r, err := s.Reserve(ctx, customerInput(key, "r1", "cust", nil, 0.4))
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if r.Customer() == nil || r.Customer().UserID != "cust" {
		t.Errorf("Reservation.Customer() = %+v, want the customer record", r.Customer())
	}
	log := store.SpendLog{RequestID: "r1", APIKey: key.Token, EndUser: "cust", Model: "gpt-4o", Status: store.StatusSuccess, StartTime: time.Now().UTC()}
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.3, Log: &log}); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	c, err := s.GetCustomer(ctx, "cust")
	if err != nil || c.Spend != 0.3 || *c.Remaining != 0.7 {
		t.Fatalf("customer after settle = %+v, %v; want spend 0.3, remaining 0.7", c, err)
	}
	// Cached (stale: spend 0): 0.8 does not fit the 0.7 left.
	var ref *store.Refusal
	_, err = s.Reserve(ctx, customerInput(key, "r2", "cust", r.Customer(), 0.8))
	if !errors.As(err, &ref) || ref.Reason != store.ReasonBudget || ref.Scope != store.ScopeEndUser || ref.ID != "cust" || ref.Spend != 0.3 {
		t.Errorf("over the customer's budget: %v (%+v), want a budget refusal of end_user cust at spend 0.3", err, ref)
	}
	_, err = s.Reserve(ctx, customerInput(key, "r3", "blocked", nil, 0.1))
	if !errors.As(err, &ref) || ref.Reason != store.ReasonBlocked || ref.Scope != store.ScopeEndUser {
		t.Errorf("blocked customer: %v, want a blocked refusal of end_user", err)
	}
	r, err = s.Reserve(ctx, customerInput(key, "r4", "stranger", nil, 0.1))
	if err != nil || r.Customer() != nil {
		t.Fatalf("unknown customer: %v, customer %+v; want admitted, no customer", err, r.Customer())
	}
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCustomer(ctx, "stranger"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown customer after a call: %v, want not created", err)
	}
	// A customer deleted since it was cached is dropped from the call, not an error.
	old, _ := s.GetCustomer(ctx, "cust")
	tx := s.Tx()
	if err := tx.DeleteCustomer(old); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, customerInput(key, "r5", "cust", old, 0.1)); err != nil {
		t.Errorf("customer deleted since cached: %v, want admitted", err)
	}
}

// Concurrent calls of several keys against one customer's budget never overspend it.
func TestReserve_ConcurrentCallsNeverPassACustomerBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	const budget, cost, calls, fit = 1.0, 0.15, 20, 6 // 6 calls of 0.15 fit in 1.0
	putCustomer(t, s, &store.Customer{UserID: "shared", Budget: store.Budget{MaxBudget: ptr(budget)}})
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range calls {
		key := newKey(fmt.Sprintf("h-%s-%d", t.Name(), i))
		if err := s.CreateKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Reserve(ctx, customerInput(key, fmt.Sprintf("c%d", i), "shared", nil, cost))
			var ref *store.Refusal
			switch {
			case errors.As(err, &ref):
				return
			case err != nil:
				t.Errorf("Reserve: %v", err)
				return
			}
			mu.Lock()
			admitted++
			mu.Unlock()
			if err := s.Settle(ctx, r, store.Settlement{Cost: cost}); err != nil {
				t.Errorf("Settle: %v", err)
			}
		}()
	}
	wg.Wait()
	c, err := s.GetCustomer(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if c.Spend > budget || admitted != fit || c.Reserved != 0 {
		t.Errorf("customer spend %v (reserved %v) after %d admitted calls of %v; want %d calls, spend <= %v",
			c.Spend, c.Reserved, admitted, cost, fit, budget)
	}
}
