package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	smithymw "github.com/aws/smithy-go/middleware"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// ops counts the DynamoDB operations a client sends.
type ops struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *ops) option(opts *dynamodb.Options) {
	opts.APIOptions = append(opts.APIOptions, func(s *smithymw.Stack) error {
		return s.Initialize.Add(smithymw.InitializeMiddlewareFunc("countOps",
			func(ctx context.Context, in smithymw.InitializeInput, next smithymw.InitializeHandler) (smithymw.InitializeOutput, smithymw.Metadata, error) {
				o.mu.Lock()
				o.n[middleware.GetOperationName(ctx)]++
				o.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), smithymw.After)
	})
}

func (o *ops) take() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.n
	o.n = map[string]int{}
	return n
}

// A call of a key with no user or team holds its reservation on the key record: reserving
// is one UpdateItem, settling a PutItem of the spend log and one UpdateItem (no transaction,
// no RES# item). Past maxHeld (4) calls in flight, a call holds a RES# item instead; every
// call settles exactly once and the key's spend is what its spend logs add up to, also for
// the calls the rotator settles.
func TestReserve_HoldsOnTheKeyRecordThenSpillsToReservationItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := &ops{n: map[string]int{}}
	c, table := dynamotest.NewTable(t, o.option)
	s := store.NewWithClient(c, table)
	k := newKey("h-held", func(k *store.Key) {
		k.MaxBudget, k.MaxParallelRequests = ptr(10.0), ptr(int64(100))
		k.RPMLimit, k.TPMLimit = ptr(int64(100)), ptr(int64(100000))
	})
	tx := s.Tx()
	if err := tx.PutKey(k); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	input := func(id string) store.ReserveInput {
		now := time.Now()
		return store.ReserveInput{
			RequestID: id, Key: k, Model: "gpt-4o", Cost: 0.5, Estimate: 0.5, Tokens: 100, Now: now, TTL: time.Minute,
			Log: store.SpendLog{RequestID: id, APIKey: k.Token, Model: "gpt-4o", StartTime: now.UTC()},
		}
	}
	settle := func(r *store.Reservation, cost float64) error {
		return s.Settle(ctx, r, store.Settlement{Cost: cost, Tokens: 50, Log: &store.SpendLog{
			RequestID: r.RequestID(), APIKey: k.Token, Model: "gpt-4o", StartTime: time.Now().UTC(), Status: store.StatusSuccess,
		}})
	}

	// Warm: the first call of a minute may try the minute the record does not count yet.
	r, err := s.Reserve(ctx, input("warm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := settle(r, 0.25); err != nil {
		t.Fatal(err)
	}
	o.take()
	r, err = s.Reserve(ctx, input("one"))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.take(); len(got) != 1 || got["UpdateItem"] != 1 {
		t.Errorf("Reserve made %v, want one UpdateItem", got)
	}
	if err := settle(r, 0.25); err != nil {
		t.Fatal(err)
	}
	if got := o.take(); len(got) != 2 || got["PutItem"] != 1 || got["UpdateItem"] != 1 {
		t.Errorf("Settle made %v, want one PutItem and one UpdateItem", got)
	}
	// A call in the next minute starts the key's rpm/tpm counts over in one write too: the
	// store remembers which minute the record counts.
	next := input("next-minute")
	next.Now = next.Now.Add(time.Minute)
	r, err = s.Reserve(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.take(); len(got) != 1 || got["UpdateItem"] != 1 {
		t.Errorf("Reserve in the next minute made %v, want one UpdateItem", got)
	}
	if err := settle(r, 0.25); err != nil {
		t.Fatal(err)
	}
	o.take()

	// Six calls in flight: four on the key record, two spilled into RES# items.
	var held []*store.Reservation
	for i := range 6 {
		r, err := s.Reserve(ctx, input(fmt.Sprintf("flight-%d", i)))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		held = append(held, r)
	}
	if got := o.take(); got["TransactWriteItems"] != 2 {
		t.Errorf("six reservations in flight made %v, want the two past the fourth in transactions (RES# items)", got)
	}
	kr, err := s.GetKey(ctx, k.Token)
	if err != nil {
		t.Fatal(err)
	}
	if kr.Reserved != 3 || kr.Inflight != 6 {
		t.Errorf("key reserved %v inflight %d with six calls in flight, want 3 and 6", kr.Reserved, kr.Inflight)
	}
	// Three settle (two held, one spilled); three never do and the rotator charges their
	// estimate once, however many runs overlap.
	for _, r := range []*store.Reservation{held[0], held[1], held[5]} {
		if err := settle(r, 0.125); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 3 {
		wg.Go(func() {
			n, err := s.SettleStale(ctx, time.Now().Add(2*time.Minute), 100)
			if err != nil {
				t.Errorf("SettleStale: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 3 {
		t.Errorf("SettleStale settled %d in all, want 3", total)
	}
	for _, r := range held[2:5] {
		if err := settle(r, 0.125); err == nil {
			t.Errorf("late Settle of %s = nil, want ErrSettled", r.RequestID())
		}
	}
	if n, err := s.SettleStale(ctx, time.Now().Add(4*time.Minute), 100); err != nil || n != 0 {
		t.Errorf("SettleStale once all are settled = %d, %v; want 0", n, err)
	}

	kr, err = s.GetKey(ctx, k.Token)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := s.SpendLogs(ctx, store.SpendLogFilter{APIKey: k.Token})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, l := range logs {
		sum += l.Spend
	}
	// warm, one and next-minute 0.25 each + three settled at 0.125 + three expired at their
	// 0.5 estimate.
	if len(logs) != 9 || kr.Spend != 2.625 || sum != 2.625 || kr.Reserved != 0 || kr.Inflight != 0 || *kr.Remaining != 7.375 {
		t.Errorf("after all settled: %d logs adding up to %v; key spend %v reserved %v inflight %d remaining %v; want 9 logs, 2.625, 2.625, 0, 0, 7.375",
			len(logs), sum, kr.Spend, kr.Reserved, kr.Inflight, *kr.Remaining)
	}
}

// A key deleted while calls that also charged its user and team are in flight: the entries
// held on the key record are handed over to RES# items in the deletion's transaction, so the
// call that settles afterwards is charged once to the user and team, and the one that never
// settles is charged its estimate by the rotator; nothing stays reserved.
func TestDeleteKeys_HandsReservationsInFlightOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, func(a *accounts) {
		a.user.MaxBudget, a.team.MaxBudget = ptr(10.0), ptr(10.0)
		a.team.MaxParallelRequests = ptr(int64(5))
	})
	settles, err := s.Reserve(ctx, a.input("settles", 0.5))
	if err != nil {
		t.Fatal(err)
	}
	crashed, err := s.Reserve(ctx, a.input("crashed", 0.5))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKeys(ctx, []*store.Key{a.key}); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, settles, store.Settlement{Cost: 0.25, Log: &store.SpendLog{RequestID: "settles", StartTime: time.Now().UTC()}}); err != nil {
		t.Fatalf("Settle after the key was deleted: %v", err)
	}
	if n, err := s.SettleStale(ctx, crashed.ExpireAt().Add(time.Second), 10); err != nil || n != 1 {
		t.Fatalf("SettleStale = %d, %v; want 1", n, err)
	}
	u, err := s.GetUser(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := s.GetTeam(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Spend != 0.75 || u.Reserved != 0 || tm.Spend != 0.75 || tm.Reserved != 0 || tm.Inflight != 0 {
		t.Errorf("user spend %v reserved %v, team spend %v reserved %v inflight %d; want 0.75 0 0.75 0 0",
			u.Spend, u.Reserved, tm.Spend, tm.Reserved, tm.Inflight)
	}
	for id, want := range map[string]float64{"settles": 0.25, "crashed": 0.5} {
		if l, err := s.GetSpendLog(ctx, id); err != nil || l.Spend != want {
			t.Errorf("spend log %s = %+v, %v; want spend %v", id, l, err, want)
		}
	}
}
