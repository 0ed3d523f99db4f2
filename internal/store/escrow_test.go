package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/dynamoproxy"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// escrowTeam is a team split into escrow shards and keys that charge it (no user).
type escrowTeam struct {
	s     *store.Store
	c     *dynamodb.Client
	table string
	team  *store.Team
	keys  []*store.Key
}

// newEscrowTeam creates team "et" with budget max split into up to shards shards, and n
// keys in it.
func newEscrowTeam(t *testing.T, s *store.Store, c *dynamodb.Client, table string, shards int, max float64, n int, mods ...func(*store.Team)) *escrowTeam {
	t.Helper()
	s.SetEscrowShards(shards)
	now := time.Now().UTC()
	team := &store.Team{TeamID: "et", Admins: []string{}, Members: []string{}, MembersWithRoles: []store.Member{}, Models: []string{}, Metadata: map[string]any{}}
	team.MaxBudget, team.CreatedAt, team.UpdatedAt = ptr(max), now, now
	for _, m := range mods {
		m(team)
	}
	tx := s.Tx()
	if err := tx.PutTeam(team); err != nil {
		t.Fatal(err)
	}
	e := &escrowTeam{s: s, c: c, table: table, team: team}
	for i := range n {
		k := newKey(fmt.Sprintf("h-%s-%d", t.Name(), i))
		k.TeamID = ptr("et")
		if err := tx.PutKey(k); err != nil {
			t.Fatal(err)
		}
		e.keys = append(e.keys, k)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatalf("create team: %v", err)
	}
	if team.EscrowShards != min(shards, int(max)) {
		t.Fatalf("team split into %d shards, want %d", team.EscrowShards, min(shards, int(max)))
	}
	return e
}

func (e *escrowTeam) input(i int, cost float64) store.ReserveInput {
	now := time.Now()
	k := e.keys[i%len(e.keys)]
	id := fmt.Sprintf("req-%d-%d", i, now.UnixNano())
	return store.ReserveInput{
		RequestID: id, Key: k, Team: e.team, Model: "gpt-4o", Cost: cost, Estimate: cost,
		Now: now, TTL: time.Minute, Check: store.CheckReserve,
		Log: store.SpendLog{RequestID: id, APIKey: k.Token, TeamID: "et", Model: "gpt-4o", StartTime: now.UTC()},
	}
}

func (e *escrowTeam) settle(t *testing.T, r *store.Reservation, cost float64) {
	t.Helper()
	log := store.SpendLog{RequestID: r.RequestID(), TeamID: "et", Model: "gpt-4o", StartTime: time.Now().UTC()}
	if err := e.s.Settle(context.Background(), r, store.Settlement{Cost: cost, Log: &log}); err != nil {
		t.Fatalf("settle %s: %v", r.RequestID(), err)
	}
}

// update changes the team as an admin update does, and uses the result in later calls.
func (e *escrowTeam) update(t *testing.T, change func(*store.Team)) {
	t.Helper()
	ctx := context.Background()
	old, err := e.s.GetTeam(ctx, "et")
	if err != nil {
		t.Fatal(err)
	}
	nt, err := store.Clone(old)
	if err != nil {
		t.Fatal(err)
	}
	change(nt)
	tx := e.s.Tx()
	if err := tx.UpdateTeam(old, nt); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.team = nt
}

// shards reads the team's shard items.
func (e *escrowTeam) shards(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	out, err := e.c.Query(context.Background(), &dynamodb.QueryInput{
		TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :p AND begins_with(sk, :s)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": &types.AttributeValueMemberS{Value: store.PrefixTeam + "et"},
			":s": &types.AttributeValueMemberS{Value: store.SortEscrow},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

// check asserts the team as admin reads it (shards added up) and the ledger's invariant:
// team record remaining + Σ shard remaining = max_budget - spend, nothing reserved, no entry
// left on a shard. model_spend (never reset) is spend unless given.
func (e *escrowTeam) check(t *testing.T, wantSpend float64, modelSpend ...float64) {
	t.Helper()
	tm, err := e.s.GetTeam(context.Background(), "et")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(tm.Spend-wantSpend) > 1e-9 || tm.Reserved != 0 {
		t.Errorf("team spend %v reserved %v, want %v and 0", tm.Spend, tm.Reserved, wantSpend)
	}
	if tm.Remaining == nil || math.Abs(*tm.Remaining-(*tm.MaxBudget-tm.Spend)) > 1e-9 {
		t.Errorf("team remaining %v, want max %v - spend %v", tm.Remaining, *tm.MaxBudget, tm.Spend)
	}
	wantModel := wantSpend
	if len(modelSpend) > 0 {
		wantModel = modelSpend[0]
	}
	if ms := tm.ModelSpend["gpt-4o"]; math.Abs(ms-wantModel) > 1e-9 {
		t.Errorf("team model_spend %v, want %v", ms, wantModel)
	}
	for _, sh := range e.shards(t) {
		if ids := entries(sh); len(ids) > 0 {
			t.Errorf("shard %v still holds %v", sh["sk"], ids)
		}
	}
}

// Many calls over many keys of one split team, most of them in flight at once, with and
// without 20 % of DynamoDB calls failed (TransactionConflict, ProvisionedThroughputExceeded,
// ThrottlingException): the team never spends more than its budget, its spend (added up
// over the shards) is exactly what the settled calls cost, nothing stays reserved, and the
// calls were spread over shards.
func TestEscrow_ManyKeysOfOneTeamNeverPassItsBudget(t *testing.T) {
	t.Parallel()
	withAndWithoutFaults(t, manyKeysOfOneTeam)
}

// withAndWithoutFaults runs run in parallel subtests without faults and with 20 % of
// DynamoDB calls failed.
func withAndWithoutFaults(t *testing.T, run func(t *testing.T, rate float64)) {
	for _, rate := range []float64{0, 0.2} {
		t.Run(fmt.Sprintf("faults %v", rate), func(t *testing.T) {
			t.Parallel()
			run(t, rate)
		})
	}
}

func manyKeysOfOneTeam(t *testing.T, rate float64) {
	p, s, c, table := proxiedStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 50)
	p.SetRate(rate)
	var settled, refused atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range 240 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := s.Reserve(context.Background(), e.input(i, 0.05))
			var ref *store.Refusal
			switch {
			case errors.As(err, &ref) && ref.Reason == store.ReasonBudget && ref.Scope == store.ScopeTeam:
				if ref.Spend > 8 || ref.Max != 8 {
					t.Errorf("refusal reports spend %v of %v", ref.Spend, ref.Max)
				}
				refused.Add(1)
				return
			case err != nil:
				t.Errorf("reserve %d: %v", i, err)
				return
			}
			e.settle(t, r, 0.04)
			settled.Add(1)
		})
	}
	wg.Wait()
	p.SetRate(0)
	if u := p.Usage(); rate > 0 && (u.Faults[dynamoproxy.Conflict] == 0 || u.Faults[dynamoproxy.Throughput]+u.Faults[dynamoproxy.Throttling] == 0) {
		t.Errorf("faults injected: %v; want conflicts and throttles", u.Faults)
	}
	spend := float64(settled.Load()) * 0.04
	t.Logf("%d settled, %d refused, spend %v", settled.Load(), refused.Load(), spend)
	if spend > 8+1e-9 || refused.Load() == 0 || settled.Load() < 190 {
		t.Errorf("%d calls settled (spend %v of 8), %d refused", settled.Load(), spend, refused.Load())
	}
	e.check(t, spend)
	used := 0
	for _, sh := range e.shards(t) {
		if num(sh, "spend") > 0 {
			used++
		}
	}
	if used < 4 {
		t.Errorf("calls charged %d shards, want them spread over most of 8", used)
	}
	if rec := raw(t, c, table, store.PrefixTeam+"et", store.SortTeam); len(entries(rec)) > 0 || num(rec, "reserved") != 0 {
		t.Errorf("the team record was charged by calls: %v", rec)
	}
}

// Headroom spread over the shards is brought together for a call whose own shard is empty:
// the calls of a budget that fits exactly eight of them are all admitted, in flight at once
// or one after the other, and the ninth is refused with the team's summed spend.
func TestEscrow_RefusesOnlyWhenTheShardsTogetherCannotPay(t *testing.T) {
	t.Parallel()
	for _, inFlight := range []bool{true, false} {
		t.Run(fmt.Sprintf("in flight %v", inFlight), func(t *testing.T) {
			t.Parallel()
			s, c, table := newStore(t)
			e := newEscrowTeam(t, s, c, table, 8, 8, 8)
			var rs []*store.Reservation
			errs := make([]error, 8)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range 8 {
				run := func() {
					r, err := s.Reserve(context.Background(), e.input(i, 1))
					errs[i] = err
					if err != nil {
						return
					}
					if !inFlight {
						e.settle(t, r, 1)
						return
					}
					mu.Lock()
					rs = append(rs, r)
					mu.Unlock()
				}
				if inFlight {
					wg.Go(run)
				} else {
					run()
				}
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("call %d of 8 at $1 on a budget of $8: %v", i, err)
				}
			}
			_, err := s.Reserve(context.Background(), e.input(8, 0.01))
			var ref *store.Refusal
			if !errors.As(err, &ref) || ref.Reason != store.ReasonBudget || ref.Spend != 8 || ref.Max != 8 {
				t.Fatalf("ninth call: %v (%+v), want the team's budget refusal at spend 8", err, ref)
			}
			for _, r := range rs {
				e.settle(t, r, 1)
			}
			e.check(t, 8)
		})
	}
}

// Lowering a split team's budget below what calls in flight hold: refunds of those calls
// land on their shards, but no call is admitted until the team's budget has room again
// (the shards were closed with the change); a budget raised again admits calls.
func TestEscrow_LoweredBudgetClosesTheShards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 4)
	var rs []*store.Reservation
	for i := range 4 {
		r, err := s.Reserve(ctx, e.input(i, 1))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	setBudget := func(max float64) {
		t.Helper()
		e.update(t, func(tm *store.Team) { tm.MaxBudget = ptr(max) })
	}
	setBudget(2) // below the 4 reserved
	for _, r := range rs {
		e.settle(t, r, 0.5) // refunds of 0.5 each reach the shards
	}
	for i := range 5 {
		_, err := s.Reserve(ctx, e.input(10+i, 0.1))
		var ref *store.Refusal
		if !errors.As(err, &ref) || ref.Reason != store.ReasonBudget {
			t.Fatalf("call after the budget was lowered to the spend: %v, want a budget refusal", err)
		}
	}
	e.check(t, 2)
	setBudget(2.5)
	// On a shard that holds refunds, closed: its headroom goes back to the team first.
	in := onShardOf(e.input(20, 0.5), rs[0].RequestID(), e.team.EscrowShards)
	r, err := s.Reserve(ctx, in)
	if err != nil {
		t.Fatalf("call after the budget was raised: %v", err)
	}
	e.settle(t, r, 0.5)
	if _, err := s.Reserve(ctx, e.input(21, 0.01)); err == nil {
		t.Fatal("a call passed the raised budget")
	}
	e.check(t, 2.5)
}

// Blocking a split team refuses its next call at once, although its shard has headroom.
func TestEscrow_BlockingTheTeamRefusesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 1)
	in := e.input(1, 0.01)
	r, err := s.Reserve(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	e.settle(t, r, 0.01)
	cached := e.team
	e.update(t, func(tm *store.Team) { tm.Blocked = true })
	e.team = cached
	again := onShardOf(e.input(1, 0.01), in.RequestID, e.team.EscrowShards) // the cached team is not blocked
	_, err = s.Reserve(ctx, again)
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonBlocked || ref.Scope != store.ScopeTeam {
		t.Fatalf("call of a blocked team: %v, want the team's blocked refusal", err)
	}
}

// A budget reset with calls in flight on the shards: the new period starts with what they
// reserved, their settlements count in it, and the period's budget is then spent exactly.
func TestEscrow_ResetKeepsWhatCallsInFlightReserved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 4, func(tm *store.Team) {
		tm.BudgetDuration, tm.BudgetResetAt = "1d", ptr(time.Now().Add(-time.Minute).UTC())
	})
	var rs []*store.Reservation
	for i := range 6 {
		r, err := s.Reserve(ctx, e.input(i, 1))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for _, r := range rs[:3] {
		e.settle(t, r, 1) // spent in the old period
	}
	rec, err := s.GetBudgetRecord(ctx, store.Ref{PK: store.PrefixTeam + "et", SK: store.SortTeam})
	if err != nil {
		t.Fatal(err)
	}
	reset := store.BudgetReset{Budget: true, Next: ptr(time.Now().Add(24 * time.Hour))}
	if err := s.ResetBudgets(ctx, rec, reset); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetBudgets(ctx, rec, reset); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second rotator run resetting the same period: %v, want ErrConflict", err)
	}
	tm, err := s.GetTeam(ctx, "et")
	if err != nil {
		t.Fatal(err)
	}
	if tm.Spend != 3 || tm.Reserved != 3 || *tm.Remaining != 5 {
		t.Fatalf("after the reset: spend %v reserved %v remaining %v, want 3, 3, 5 (the calls in flight)", tm.Spend, tm.Reserved, *tm.Remaining)
	}
	for _, r := range rs[3:] {
		e.settle(t, r, 0.5)
	}
	// 6.5 left: six calls of 1 pass, the seventh does not.
	for i := range 7 {
		r, err := s.Reserve(ctx, e.input(100+i, 1))
		if i == 6 {
			if err == nil {
				t.Fatal("a call passed the budget after the reset")
			}
			break
		}
		if err != nil {
			t.Fatalf("call %d after the reset: %v", i, err)
		}
		e.settle(t, r, 1)
	}
	e.check(t, 7.5, 10.5)
}

// A call whose process died after its shard was charged is settled by the rotator, once,
// on that shard.
func TestEscrow_RotatorSettlesAShardOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 1)
	in := e.input(1, 0.3)
	in.TTL = time.Second
	if _, err := s.Reserve(ctx, in); err != nil {
		t.Fatal(err)
	}
	if n := overlappingRotators(t, s, time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("settled %d times, want once", n)
	}
	e.check(t, 0.3)
}

// A busy key has more calls in flight than its record holds entries (maxHeld): its 5th and
// later calls hold their reservations in RES# items and reserve in a transaction, and they
// charge the team's shards as the key's first four do, with and without 20 % of DynamoDB
// calls failed. No call writes the team record (while they are in flight it holds nothing
// reserved; after they settle it has no model_spend): only lends do. The spend is exact.
func TestEscrow_ABusyKeysSpilledCallsChargeShards(t *testing.T) {
	t.Parallel()
	withAndWithoutFaults(t, busyKeyOfASplitTeam)
}

func busyKeyOfASplitTeam(t *testing.T, rate float64) {
	p, s, c, table := proxiedStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 1)
	p.SetRate(rate)
	const calls = 16
	rs := reserveAtOnce(t, s, calls, func(i int) store.ReserveInput {
		in := e.input(i, 0.05)
		if i%2 == 0 {
			in.ProxyMaxBudget = ptr(100.0) // a transaction, also while held on the key record
		}
		return in
	})
	if t.Failed() {
		return
	}
	p.SetRate(0) // while the test reads
	if spilled := spilledOf(t, c, table, rs); spilled < calls-4 {
		t.Errorf("%d of %d calls in flight hold RES# items, want all but the key record's 4", spilled, calls)
	}
	reserved := 0.0
	for _, sh := range e.shards(t) {
		reserved += num(sh, "reserved")
	}
	if rec := raw(t, c, table, store.PrefixTeam+"et", store.SortTeam); num(rec, "reserved") != 0 || math.Abs(reserved-calls*0.05) > 1e-9 {
		t.Errorf("calls in flight reserved %v on the team record and %v on its shards, want 0 and %v", num(rec, "reserved"), reserved, calls*0.05)
	}
	p.SetRate(rate)
	for _, r := range rs {
		e.settle(t, r, 0.04)
	}
	p.SetRate(0)
	if u := p.Usage(); rate > 0 && u.Faults[dynamoproxy.Conflict] == 0 {
		t.Errorf("faults injected: %v; want conflicts", u.Faults)
	}
	e.check(t, calls*0.04)
	if ms := teamModelSpend(t, c, table); ms != 0 {
		t.Errorf("calls settled on the team record: its model_spend is %v", ms)
	}
}

// teamModelSpend is the model_spend of gpt-4o on team et's record (the bank): calls that
// charge shards add theirs to the shards.
func teamModelSpend(t *testing.T, c *dynamodb.Client, table string) float64 {
	t.Helper()
	ms, _ := raw(t, c, table, store.PrefixTeam+"et", store.SortTeam)["model_spend"].(*types.AttributeValueMemberM)
	if ms == nil {
		return 0
	}
	return num(ms.Value, "gpt-4o")
}

// A busy key's spilled call (its RES# item names the shard) whose process died is settled
// by the rotator once, on that shard, as are the key's calls held on its record.
func TestEscrow_RotatorSettlesASpilledCallOnItsShard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 1)
	var fifth string
	for i := range 5 { // none settled: the first four fill the key record's entries
		in := e.input(i, 0.3)
		fifth = in.RequestID
		if _, err := s.Reserve(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if len(raw(t, c, table, store.PrefixReservation+fifth, store.SortReservation)) == 0 {
		t.Fatal("the fifth call in flight of a key holds no RES# item")
	}
	if n := overlappingRotators(t, s, time.Now().Add(time.Hour)); n != 5 {
		t.Fatalf("settled %d calls, want each of 5 once", n)
	}
	e.check(t, 1.5)
	if ms := teamModelSpend(t, c, table); ms != 0 {
		t.Errorf("the rotator settled on the team record: its model_spend is %v", ms)
	}
}

// onShardOf is in with a request id that charges the same one of n shards as request id of.
func onShardOf(in store.ReserveInput, of string, n int) store.ReserveInput {
	id := in.RequestID
	for i := 0; store.EscrowShardOf(in.RequestID, n) != store.EscrowShardOf(of, n); i++ {
		in.RequestID = fmt.Sprintf("%s-%d", id, i)
	}
	in.Log.RequestID = in.RequestID
	return in
}

// A call of a split team that charges the team record itself (a parallel limit given to
// the team since its shards were lent headroom keeps its calls there) is not refused while
// the shards hold the headroom it needs: their headroom is swept back into the team record
// first.
func TestEscrow_ACallOnTheTeamRecordGetsTheShardsHeadroom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 2, 1)
	r, err := s.Reserve(ctx, e.input(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	e.settle(t, r, 1) // the team record lent 1.5 to a shard, which holds 0.5 of it now
	e.update(t, func(tm *store.Team) { tm.MaxParallelRequests = ptr(int64(10)) })
	r, err = s.Reserve(ctx, e.input(2, 0.8))
	if err != nil {
		t.Fatalf("a call of 0.8 with 1.0 of the team's budget left: %v", err)
	}
	e.settle(t, r, 0.8)
	e.check(t, 1.8)
}

// A split team deleted and created again under its id starts from its new budget: the old
// team's shards, which still held headroom it had lent them, go with it.
func TestEscrow_ATeamCreatedAgainGetsNoneOfTheOldShards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 4)
	for i := range 8 {
		r, err := s.Reserve(ctx, e.input(i, 0.5))
		if err != nil {
			t.Fatal(err)
		}
		e.settle(t, r, 0.1)
	}
	old, err := s.GetTeam(ctx, "et")
	if err != nil {
		t.Fatal(err)
	}
	tx := s.Tx() // as /team/delete does: the team's keys and the team
	for _, k := range e.keys {
		if err := tx.DeleteKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.DeleteTeam(old); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if left := e.shards(t); len(left) > 0 {
		t.Errorf("the deleted team left %d shards", len(left))
	}

	again := newEscrowTeam(t, s, c, table, 8, 2, 4)
	again.check(t, 0)
	admitted := 0
	for i := range 8 {
		r, err := s.Reserve(ctx, again.input(100+i, 0.5))
		if err != nil {
			continue
		}
		again.settle(t, r, 0.5)
		admitted++
	}
	if admitted != 4 {
		t.Errorf("%d calls of 0.5 admitted on the new team's budget of 2, want 4", admitted)
	}
	again.check(t, 2)
}

// A limit given to a split team besides its budget binds at once, although calls on the
// shards do not write the team record and other instances still hold the team without it.
func TestEscrow_ANewLimitBindsAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 2)
	first := e.input(0, 0.1)
	r, err := s.Reserve(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	e.settle(t, r, 0.1)
	cached := e.team
	e.update(t, func(tm *store.Team) { tm.MaxParallelRequests = ptr(int64(1)) })
	e.team = cached // as another instance still holds it
	held, err := s.Reserve(ctx, e.input(1, 0.1))
	if err != nil {
		t.Fatal(err)
	}
	second := onShardOf(e.input(2, 0.1), first.RequestID, cached.EscrowShards) // the shard lent to first
	_, err = s.Reserve(ctx, second)
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Scope != store.ScopeTeam || ref.Reason != store.ReasonParallel {
		t.Fatalf("a second call in flight on a team now limited to one: %v, want the team's parallel-request refusal", err)
	}
	e.settle(t, held, 0.1)
	e.check(t, 0.2)
}

// At the end of a split team's budget, calls refused one after another do not each read all
// the shards: the first refusal's snapshot serves the others for a moment, and a raised
// budget is seen at once by the process that raised it.
func TestEscrow_RefusalsAtTheEndOfTheBudgetDoNotReadEveryShard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, s, c, table := proxiedStore(t)
	e := newEscrowTeam(t, s, c, table, 8, 8, 4)
	for i := range 8 {
		r, err := s.Reserve(ctx, e.input(i, 1))
		if err != nil {
			t.Fatal(err)
		}
		e.settle(t, r, 1)
	}
	reads := func() int64 {
		u := p.Usage()
		return u.Calls["Query"] + u.Calls["TransactGetItems"]
	}
	before, start := reads(), time.Now()
	const refused = 20
	for i := range refused {
		_, err := s.Reserve(ctx, e.input(100+i, 0.5))
		var ref *store.Refusal
		if !errors.As(err, &ref) || ref.Reason != store.ReasonBudget || ref.Scope != store.ScopeTeam || ref.Spend != 8 {
			t.Fatalf("call %d on a spent team: %v, want the team's budget refusal at spend 8", i, err)
		}
	}
	// A read (a Query and a snapshot) serves the refusals of the next second: on a loaded
	// machine the calls may take a few.
	if n, most := reads()-before, 2*(2+int64(time.Since(start)/time.Second)); n > most {
		t.Errorf("%d refused calls read the shards %d times in %v, want the first refusal's read to serve the rest of its second (at most %d)", refused, n, time.Since(start), most)
	}
	e.update(t, func(tm *store.Team) { tm.MaxBudget = ptr(9.0) })
	r, err := s.Reserve(ctx, e.input(200, 0.5))
	if err != nil {
		t.Fatalf("a call right after the budget was raised: %v", err)
	}
	e.settle(t, r, 0.5)
	e.check(t, 8.5)
}

// proxiedStore is a store on a fresh table behind a dynamoproxy (which counts requests and
// injects faults when told).
func proxiedStore(t *testing.T) (*dynamoproxy.Proxy, *store.Store, *dynamodb.Client, string) {
	t.Helper()
	return proxiedStoreWith(t, dynamoproxy.Options{})
}

// proxiedStoreWith is proxiedStore with the proxy's options o (its target set here).
func proxiedStoreWith(t *testing.T, o dynamoproxy.Options) (*dynamoproxy.Proxy, *store.Store, *dynamodb.Client, string) {
	t.Helper()
	o.Target = dynamotest.Endpoint(t)
	p, err := dynamoproxy.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	c, table := dynamotest.NewTable(t, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.URL()) })
	return p, store.NewWithClient(c, table), c, table
}
