package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/dynamoproxy"
	"github.com/llmgate/llmgate/internal/store"
)

// escrowKey is a key split into escrow shards, charging nothing else.
type escrowKey struct {
	s     *store.Store
	c     *dynamodb.Client
	table string
	key   *store.Key
}

// newEscrowUserKey creates user (budget $1,000) and a key of theirs with budget max split
// into up to shards shards.
func newEscrowUserKey(t *testing.T, s *store.Store, c *dynamodb.Client, table, user string, shards int, max float64) (*store.User, *escrowKey) {
	t.Helper()
	u := &store.User{UserID: user, UserRole: "internal_user", Models: []string{}, Teams: []string{}, Metadata: map[string]any{}}
	u.MaxBudget = ptr(1000.0)
	tx := s.Tx()
	if err := tx.PutUser(u); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return u, newEscrowKey(t, s, c, table, shards, max, func(k *store.Key) { k.UserID = ptr(user) })
}

// newEscrowKey creates a key with budget max split into up to shards shards.
func newEscrowKey(t *testing.T, s *store.Store, c *dynamodb.Client, table string, shards int, max float64, mods ...func(*store.Key)) *escrowKey {
	t.Helper()
	s.SetEscrowShards(shards)
	k := newKey("ek-"+t.Name(), mods...)
	k.MaxBudget = ptr(max)
	if err := s.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if want := min(shards, int(max)); k.EscrowShards != want {
		t.Fatalf("key split into %d shards, want %d", k.EscrowShards, want)
	}
	return &escrowKey{s: s, c: c, table: table, key: k}
}

func (e *escrowKey) input(i int, cost float64) store.ReserveInput {
	now := time.Now()
	id := fmt.Sprintf("kreq-%d-%d", i, now.UnixNano())
	return store.ReserveInput{
		RequestID: id, Key: e.key, Model: "gpt-4o", Cost: cost, Estimate: cost,
		Now: now, TTL: time.Minute, Check: store.CheckReserve,
		Log: store.SpendLog{RequestID: id, APIKey: e.key.Token, Model: "gpt-4o", StartTime: now.UTC()},
	}
}

func (e *escrowKey) settle(t *testing.T, r *store.Reservation, cost float64) {
	t.Helper()
	log := store.SpendLog{RequestID: r.RequestID(), APIKey: e.key.Token, Model: "gpt-4o", StartTime: time.Now().UTC()}
	if err := e.s.Settle(context.Background(), r, store.Settlement{Cost: cost, Log: &log}); err != nil {
		t.Fatalf("settle %s: %v", r.RequestID(), err)
	}
}

// update changes the key as /key/update does; calls made later use the result.
func (e *escrowKey) update(t *testing.T, change func(*store.Key)) {
	t.Helper()
	k, err := e.s.UpdateKey(context.Background(), e.key.Token, func(k *store.Key) error { change(k); return nil })
	if err != nil {
		t.Fatal(err)
	}
	e.key = k
}

// shards reads the key's shard items.
func (e *escrowKey) shards(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	out, err := e.c.Query(context.Background(), &dynamodb.QueryInput{
		TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :p AND begins_with(sk, :s)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": &types.AttributeValueMemberS{Value: store.PrefixKey + e.key.Token},
			":s": &types.AttributeValueMemberS{Value: store.SortKeyEscrow},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

// check asserts the key as admin reads it (shards added up): spend, remaining = max -
// spend, nothing reserved, no entry left on the record or a shard.
func (e *escrowKey) check(t *testing.T, wantSpend float64) {
	t.Helper()
	k, err := e.s.GetKey(context.Background(), e.key.Token)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(k.Spend-wantSpend) > 1e-9 || k.Reserved != 0 {
		t.Errorf("key spend %v reserved %v, want %v and 0", k.Spend, k.Reserved, wantSpend)
	}
	if k.Remaining == nil || math.Abs(*k.Remaining-(*k.MaxBudget-k.Spend)) > 1e-9 {
		t.Errorf("key remaining %v, want max %v - spend %v", k.Remaining, *k.MaxBudget, k.Spend)
	}
	for _, it := range append(e.shards(t), raw(t, e.c, e.table, store.PrefixKey+e.key.Token, store.SortKey)) {
		if ids := entries(it); len(ids) > 0 {
			t.Errorf("%v still holds %v", it["sk"], ids)
		}
	}
}

// Many calls on one split key, most of them in flight at once, with and without 20 % of
// DynamoDB calls failed: the key never spends more than its budget, its spend (added up over
// the shards) is exactly what the settled calls cost, nothing stays reserved, the calls were
// spread over the shards, and the key record was written only to lend and sweep headroom.
func TestKeyEscrow_ManyCallsOnOneKeyNeverPassItsBudget(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0, 0.2} {
		t.Run(fmt.Sprintf("faults %v", rate), func(t *testing.T) {
			t.Parallel()
			p, s, c, table := proxiedStoreWith(t, dynamoproxy.Options{Price: true})
			e := newEscrowKey(t, s, c, table, 8, 8)
			p.Reset()
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
					case errors.As(err, &ref) && ref.Reason == store.ReasonBudget && ref.Scope == store.ScopeKey:
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
			u := p.Usage()
			if rate > 0 && (u.Faults[dynamoproxy.Conflict] == 0 || u.Faults[dynamoproxy.Throughput]+u.Faults[dynamoproxy.Throttling] == 0) {
				t.Errorf("faults injected: %v; want conflicts and throttles", u.Faults)
			}
			spend := float64(settled.Load()) * 0.04
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
			var writes, shardWrites, spills int64
			var recordWCU, shardWCU float64 // the key record's, the busiest shard's
			for _, it := range u.Items {
				if strings.HasPrefix(it.PK, store.PrefixReservation) {
					spills++
				}
				switch {
				case it.PK != store.PrefixKey+e.key.Token:
				case it.SK == store.SortKey:
					writes, recordWCU = writes+it.Writes, it.WCU
				default:
					shardWrites, shardWCU = shardWrites+it.Writes, max(shardWCU, it.WCU)
				}
			}
			// Each item's WCU per call scaled to 2,000 calls/s on the key.
			calls := float64(settled.Load() + refused.Load())
			t.Logf("%d settled, %d refused, spend %v; key record written %d times (%.0f WCU/s at 2,000 calls/s), its shards %d (the busiest %.0f WCU/s); %d calls spilled",
				settled.Load(), refused.Load(), spend, writes, recordWCU/calls*2000, shardWrites, shardWCU/calls*2000, spills)
			// Each call would write the record twice; lends, sweeps and the few calls that
			// find their shard holding maxHeld entries write it at most a quarter of that.
			if writes == 0 || writes > settled.Load()/2 || shardWrites < 2*settled.Load() {
				t.Errorf("the key record was written %d times and its shards %d for %d calls, want the shards charged and the record only lending", writes, shardWrites, settled.Load())
			}
		})
	}
}

// Headroom spread over the shards is brought together for a call whose own shard is empty:
// the calls of a budget that fits exactly eight of them are all admitted, in flight at once,
// and the ninth is refused with the key's summed spend.
func TestKeyEscrow_RefusesOnlyWhenTheShardsTogetherCannotPay(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t)
	e := newEscrowKey(t, s, c, table, 8, 8)
	rs := make([]*store.Reservation, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { rs[i], errs[i] = s.Reserve(context.Background(), e.input(i, 1)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d of 8 at $1 on a budget of $8: %v", i, err)
		}
	}
	_, err := s.Reserve(context.Background(), e.input(8, 0.01))
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonBudget || ref.Scope != store.ScopeKey || ref.Spend != 8 || ref.Max != 8 {
		t.Fatalf("ninth call: %v (%+v), want the key's budget refusal at spend 8", err, ref)
	}
	for _, r := range rs {
		e.settle(t, r, 1)
	}
	e.check(t, 8)
}

// Lowering a split key's budget below what calls in flight hold closes its shards: their
// refunds land there, but no call is admitted until the budget has room again; blocking the
// key refuses its next call at once although an instance still holds it unblocked.
func TestKeyEscrow_LoweredBudgetAndBlockCloseTheShards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowKey(t, s, c, table, 8, 8)
	var rs []*store.Reservation
	for i := range 4 {
		r, err := s.Reserve(ctx, e.input(i, 1))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	cached := e.key
	e.update(t, func(k *store.Key) { k.MaxBudget = ptr(2.0) }) // below the 4 reserved
	for _, r := range rs {
		e.settle(t, r, 0.5)
	}
	e.key = cached // as another instance still holds it
	for i := range 5 {
		_, err := s.Reserve(ctx, onShardOf(e.input(10+i, 0.1), rs[i%4].RequestID(), cached.EscrowShards))
		var ref *store.Refusal
		if !errors.As(err, &ref) || ref.Reason != store.ReasonBudget || ref.Scope != store.ScopeKey {
			t.Fatalf("call after the budget was lowered to the spend: %v, want the key's budget refusal", err)
		}
	}
	e.check(t, 2)
	e.update(t, func(k *store.Key) { k.MaxBudget = ptr(2.5) })
	r, err := s.Reserve(ctx, onShardOf(e.input(20, 0.4), rs[0].RequestID(), cached.EscrowShards))
	if err != nil {
		t.Fatalf("call after the budget was raised: %v", err)
	}
	e.settle(t, r, 0.4)
	cached = e.key
	e.update(t, func(k *store.Key) { k.Blocked = true })
	e.key = cached
	_, err = s.Reserve(ctx, onShardOf(e.input(21, 0.01), r.RequestID(), cached.EscrowShards))
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonBlocked || ref.Scope != store.ScopeKey {
		t.Fatalf("call of a blocked key: %v, want the key's blocked refusal", err)
	}
	e.check(t, 2.4)
}

// A budget reset, and /key/reset_spend, with calls in flight on the shards: the new period
// starts with what they reserved, their settlements count in it, and its budget is then
// spent exactly.
func TestKeyEscrow_ResetKeepsWhatCallsInFlightReserved(t *testing.T) {
	t.Parallel()
	for _, spendReset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset_spend %v", spendReset), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, c, table := newStore(t)
			e := newEscrowKey(t, s, c, table, 8, 8, func(k *store.Key) {
				k.BudgetDuration, k.BudgetResetAt = "1d", ptr(time.Now().Add(-time.Minute).UTC())
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
			if spendReset {
				prev, _, err := s.ResetKeySpend(ctx, e.key.Token, func(*store.Key) error { return nil }, 0)
				if err != nil || prev != 6 {
					t.Fatalf("reset_spend: previous spend %v, %v; want 6", prev, err)
				}
			} else {
				rec, err := s.GetBudgetRecord(ctx, store.Ref{PK: store.PrefixKey + e.key.Token, SK: store.SortKey})
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
			}
			k, err := s.GetKey(ctx, e.key.Token)
			if err != nil {
				t.Fatal(err)
			}
			if k.Spend != 3 || k.Reserved != 3 || *k.Remaining != 5 {
				t.Fatalf("after the reset: spend %v reserved %v remaining %v, want 3, 3, 5 (the calls in flight)", k.Spend, k.Reserved, *k.Remaining)
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
			e.check(t, 7.5)
		})
	}
}

// A call whose process died after its shard was charged is settled by the rotator, once,
// on that shard.
func TestKeyEscrow_RotatorSettlesAShardOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowKey(t, s, c, table, 8, 8)
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

// Regenerating a split key with calls in flight on its shards loses no spend: the calls
// settle on the shards where they now live (under the new hash), a call with the old
// secret in its grace period is charged there too, and the budget binds across it.
func TestKeyEscrow_RegenerateLosesNoSpend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	e := newEscrowKey(t, s, c, table, 4, 4)
	var rs []*store.Reservation
	for i := range 3 {
		r, err := s.Reserve(ctx, e.input(i, 1))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	crashed := e.input(3, 0.5)
	crashed.TTL = time.Second
	if _, err := s.Reserve(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	old := e.key
	k, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: old.Token, NewToken: old.Token + "-new", KeyName: "sk-...new", Grace: time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		e.settle(t, r, 0.5)
	}
	e.key = k
	if left := (&escrowKey{s: s, c: c, table: table, key: old}).shards(t); len(left) > 0 {
		t.Errorf("the old hash kept %d shards", len(left))
	}
	if n := overlappingRotators(t, s, time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("the crashed call was settled %d times, want once", n)
	}
	e.check(t, 2) // 3 × 0.5 and the crashed call's estimate
	// With the old secret (its cached record) and the new one: 2 left.
	stale := (&escrowKey{s: s, c: c, table: table, key: old}).input(10, 1)
	r, err := s.Reserve(ctx, stale)
	if err != nil {
		t.Fatalf("a call with the old secret in its grace period: %v", err)
	}
	e.settle(t, r, 1)
	r, err = s.Reserve(ctx, e.input(11, 1))
	if err != nil {
		t.Fatal(err)
	}
	e.settle(t, r, 1)
	if _, err := s.Reserve(ctx, e.input(12, 0.01)); err == nil {
		t.Fatal("a call passed the budget after the rotation")
	}
	e.check(t, 4)
}

// Deleting a split key with calls in flight on its shards that charged its user too hands
// them over: the user's spend is exactly what they cost, whether the calls settle or
// crash (the rotator then settles them from the handed-over reservation).
func TestKeyEscrow_DeleteHandsOverCallsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	u, e := newEscrowUserKey(t, s, c, table, "keu", 4, 4)
	input := func(i int, cost float64) store.ReserveInput {
		in := e.input(i, cost)
		in.User = u
		return in
	}
	var rs []*store.Reservation
	for i := range 4 {
		in := input(i, 0.5)
		if i == 3 {
			in.TTL = time.Second // this one crashes
		}
		r, err := s.Reserve(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if len(e.shards(t)) == 0 {
		t.Fatal("the calls did not charge the key's shards")
	}
	k, err := s.GetKey(ctx, e.key.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKeys(ctx, []*store.Key{k}); err != nil {
		t.Fatal(err)
	}
	if left := e.shards(t); len(left) > 0 {
		t.Errorf("the deleted key left %d shards", len(left))
	}
	for _, r := range rs[:3] {
		e.settle(t, r, 0.25)
	}
	// Past the crashed call's expiry, before the others' (their handed-over reservations
	// are left to the rotator too, but were settled by their calls).
	if n := overlappingRotators(t, s, time.Now().Add(30*time.Second)); n != 1 {
		t.Fatalf("the crashed call was settled %d times, want once", n)
	}
	checkUserSettled(t, s, "keu", 1.25, "3 × 0.25 and the crashed call's 0.5")
}

// A busy split key's shards may hold more reservations charging its user than one
// transaction can hand over with the shards' deletion (32 shards × 4 entries, and DynamoDB's
// 100 writes): the key is then blocked and its shards deleted one at a time before its
// record. Every call in flight still settles once on the user.
func TestKeyEscrow_DeleteABusyKeyPastOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	u, e := newEscrowUserKey(t, s, c, table, "keu-busy", 32, 100)
	var rs []*store.Reservation
	for i := range 300 {
		in := e.input(i, 0.01)
		in.User = u
		r, err := s.Reserve(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	held := 0
	for _, sh := range e.shards(t) {
		held += len(entries(sh))
	}
	if held <= 70 {
		t.Fatalf("the shards hold %d calls; want more than one transaction hands over with them", held)
	}
	k, err := s.GetKey(ctx, e.key.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKeys(ctx, []*store.Key{k}); err != nil {
		t.Fatalf("delete a key whose shards hold %d calls: %v", held, err)
	}
	if _, err := s.GetKey(ctx, e.key.Token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the key after its deletion: %v, want not found", err)
	}
	if left := e.shards(t); len(left) > 0 {
		t.Errorf("the deleted key left %d shards", len(left))
	}
	for _, r := range rs {
		e.settle(t, r, 0.005)
	}
	checkUserSettled(t, s, "keu-busy", 1.5, "300 × 0.005")
}

// checkUserSettled fails the test unless user id has spent want (what makes it up: why) and
// holds nothing reserved.
func checkUserSettled(t *testing.T, s *store.Store, id string, want float64, why string) {
	t.Helper()
	got, err := s.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.Spend-want) > 1e-9 || got.Reserved != 0 {
		t.Errorf("user spend %v reserved %v, want %v (%s) and 0", got.Spend, got.Reserved, want, why)
	}
}

// A busy split key has more calls in flight than its shards hold entries (4 each), as a key
// does at a high call rate with LLM latencies: the calls past that hold RES# items and charge
// the shards too, so the key record holds nothing and is written by lends only. With and
// without 20 % faults the spend is exactly what the settled calls cost, and a crashed
// spilled call is settled once by overlapping rotators, on its shard.
func TestKeyEscrow_ABusyKeysSpilledCallsChargeShards(t *testing.T) {
	t.Parallel()
	withAndWithoutFaults(t, busyKey)
}

func busyKey(t *testing.T, rate float64) {
	p, s, c, table := proxiedStoreWith(t, dynamoproxy.Options{Price: true})
	e := newEscrowKey(t, s, c, table, 4, 8) // a lend ($1 and the call) pays for 20 calls
	p.Reset()
	p.SetRate(rate)
	const calls = 40 // 10 per shard in flight at once: 6 or more of them spill
	rs := reserveAtOnce(t, s, calls, func(i int) store.ReserveInput {
		in := e.input(i, 0.05)
		if i == 0 {
			in.TTL = time.Second // this one crashes
		}
		return in
	})
	if t.Failed() {
		return
	}
	p.SetRate(0) // while the test reads
	spilled := spilledOf(t, c, table, rs)
	if spilled < calls-4*4 {
		t.Errorf("%d of %d calls in flight on 4 shards hold RES# items, want all but the shards' 16 entries", spilled, calls)
	}
	rec := raw(t, c, table, store.PrefixKey+e.key.Token, store.SortKey)
	reserved := 0.0
	for _, sh := range e.shards(t) {
		reserved += num(sh, "reserved")
	}
	if ids := entries(rec); len(ids) > 0 || num(rec, "reserved") != 0 || math.Abs(reserved-calls*0.05) > 1e-9 {
		t.Errorf("the key record holds %v and reserved %v, its shards %v; want nothing, 0 and %v", ids, num(rec, "reserved"), reserved, calls*0.05)
	}
	p.SetRate(rate)
	for _, r := range rs[1:] {
		e.settle(t, r, 0.04)
	}
	p.SetRate(0)
	u := p.Usage()
	if rate > 0 && (u.Faults[dynamoproxy.Conflict] == 0 || u.Faults[dynamoproxy.Throughput]+u.Faults[dynamoproxy.Throttling] == 0) {
		t.Errorf("faults injected: %v; want conflicts and throttles", u.Faults)
	}
	// Past every call's expiry: a shard's due time is its first entry's.
	if n := overlappingRotators(t, s, time.Now().Add(2*time.Minute)); n != 1 {
		t.Errorf("the crashed call was settled %d times, want once", n)
	}
	e.check(t, (calls-1)*0.04+0.05)
	ms, _ := raw(t, c, table, store.PrefixKey+e.key.Token, store.SortKey)["model_spend"].(*types.AttributeValueMemberM)
	if ms != nil && num(ms.Value, "gpt-4o") != 0 {
		t.Errorf("calls settled on the key record: its model_spend is %v", num(ms.Value, "gpt-4o"))
	}
	var writes int64
	for _, it := range u.Items {
		if it.PK == store.PrefixKey+e.key.Token && it.SK == store.SortKey {
			writes += it.Writes
		}
	}
	t.Logf("%d of %d calls in flight held RES# items; the key record was written %d times (lends and sweeps)", spilled, calls, writes)
	// Lends race at the start (each call that finds its shard empty lends) and sweeps follow
	// under faults; calls charging the record would write it about 1.5 times per call.
	if writes > calls*3/4 {
		t.Errorf("the key record was written %d times for %d calls, want it written by lends and sweeps only", writes, calls)
	}
}

// At the end of a busy split key's budget, with most calls in flight held in RES# items, the
// shards' headroom is brought together: with and without 20 % faults exactly the calls the
// budget pays for are admitted, and the others refused with the key's summed spend.
func TestKeyEscrow_ABusyKeyIsRefusedOnlyAtItsBudget(t *testing.T) {
	t.Parallel()
	withAndWithoutFaults(t, busyKeyAtItsBudget)
}

func busyKeyAtItsBudget(t *testing.T, rate float64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, s, c, table := proxiedStore(t)
	e := newEscrowKey(t, s, c, table, 4, 4)
	p.SetRate(rate)
	const calls, fit = 48, 40 // $4 pays for 40 calls of $0.1
	var admitted []*store.Reservation
	var mu sync.Mutex
	var refused atomic.Int64
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			r, err := s.Reserve(ctx, e.input(i, 0.1))
			switch {
			case budgetRefusal(t, err, store.ScopeKey, 4):
				refused.Add(1)
			case err != nil:
				t.Errorf("reserve %d: %v", i, err)
			default:
				mu.Lock()
				admitted = append(admitted, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p.SetRate(0)
	if len(admitted) != fit || refused.Load() != calls-fit {
		t.Fatalf("%d calls admitted and %d refused, want %d and %d", len(admitted), refused.Load(), fit, calls-fit)
	}
	if spilled := spilledOf(t, c, table, admitted); spilled < fit-4*4 {
		t.Errorf("%d of %d calls in flight on 4 shards hold RES# items, want all but the shards' 16 entries", spilled, fit)
	}
	p.SetRate(rate)
	for _, r := range admitted {
		e.settle(t, r, 0.1)
	}
	p.SetRate(0)
	e.check(t, 4)
}

// reserveAtOnce reserves the n calls that in makes all at once; a call that fails fails the
// test (its reservation is nil).
func reserveAtOnce(t *testing.T, s *store.Store, n int, in func(i int) store.ReserveInput) []*store.Reservation {
	t.Helper()
	rs := make([]*store.Reservation, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := s.Reserve(context.Background(), in(i))
			if err != nil {
				t.Errorf("reserve %d: %v", i, err)
				return
			}
			rs[i] = r
		})
	}
	wg.Wait()
	return rs
}

// spilledOf counts the reservations of rs held in RES# items (not on a key record or shard).
func spilledOf(t *testing.T, c *dynamodb.Client, table string, rs []*store.Reservation) int {
	t.Helper()
	n := 0
	for _, r := range rs {
		if len(raw(t, c, table, store.PrefixReservation+r.RequestID(), store.SortReservation)) > 0 {
			n++
		}
	}
	return n
}

// budgetRefusal reports whether err is the budget refusal of scope, and checks that it
// reports a spend within max and max.
func budgetRefusal(t *testing.T, err error, scope string, max float64) bool {
	t.Helper()
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonBudget || ref.Scope != scope {
		return false
	}
	if ref.Spend > max || ref.Max != max {
		t.Errorf("refusal reports spend %v of %v", ref.Spend, ref.Max)
	}
	return true
}
