package store_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithymw "github.com/aws/smithy-go/middleware"

	"github.com/llmgate/llmgate/internal/callid"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// crasher plays a process that dies between the steps of a reservation: once a write to an
// item whose pk starts with at was attempted, that write and every later settlement write
// (an UpdateItem that removes an entry: the undo) fail; the steps already sent, and those
// running alongside, go through.
type crasher struct {
	at      atomic.Value // string
	crashed atomic.Bool
	ops     ops
}

var errCrash = errors.New("process crashed")

func (c *crasher) option(opts *dynamodb.Options) {
	c.ops.option(opts)
	opts.APIOptions = append(opts.APIOptions, func(s *smithymw.Stack) error {
		return s.Initialize.Add(smithymw.InitializeMiddlewareFunc("crash",
			func(ctx context.Context, in smithymw.InitializeInput, next smithymw.InitializeHandler) (smithymw.InitializeOutput, smithymw.Metadata, error) {
				if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok {
					at, _ := c.at.Load().(string)
					if pk, _ := u.Key["pk"].(*types.AttributeValueMemberS); at != "" && pk != nil && strings.HasPrefix(pk.Value, at) {
						c.crashed.Store(true)
						return smithymw.InitializeOutput{}, smithymw.Metadata{}, errCrash
					}
					if c.crashed.Load() && strings.Contains(aws.ToString(u.UpdateExpression), "REMOVE") {
						return smithymw.InitializeOutput{}, smithymw.Metadata{}, errCrash
					}
				}
				return next.HandleInitialize(ctx, in)
			}), smithymw.Before)
	})
}

func newCrashStore(t *testing.T) (*store.Store, *dynamodb.Client, string, *crasher) {
	cr := &crasher{ops: ops{n: map[string]int{}}}
	c, table := dynamotest.NewTable(t, cr.option)
	return store.NewWithClient(c, table), c, table, cr
}

// budgeted gives the key, its user and its team budgets (the bench's "key + user + team").
func budgeted(key, user, team float64) func(*accounts) {
	return func(a *accounts) {
		a.key.MaxBudget, a.key.MaxParallelRequests = ptr(key), ptr(int64(10))
		a.key.RPMLimit, a.key.TPMLimit = ptr(int64(100)), ptr(int64(100000))
		a.user.MaxBudget, a.team.MaxBudget = ptr(user), ptr(team)
	}
}

// raw reads an item as stored.
func raw(t *testing.T, c *dynamodb.Client, table, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// num reads a number attribute (absent reads as 0).
func num(it map[string]types.AttributeValue, name string) float64 {
	n, _ := it[name].(*types.AttributeValueMemberN)
	if n == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(n.Value, 64)
	return f
}

// entries lists the r#<request id> entries an item holds.
func entries(it map[string]types.AttributeValue) []string {
	var ids []string
	for a := range it {
		if id, ok := strings.CutPrefix(a, "r#"); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// A call whose key, user and team have budgets (and whose membership has none) is reserved
// with one single-item UpdateItem per record and a read of the membership, and settled with
// the spend log's PutItem and one UpdateItem per record: no transaction (a transactional
// write costs twice). Each record holds the call's entry until its own settlement.
func TestReserve_KeyUserTeamInSingleItemSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table, cr := newCrashStore(t)
	a := newAccounts(t, s, budgeted(10, 10, 10))
	cr.ops.take()

	in := a.input("r1", 0.5)
	in.Membership = nil // no budgeted membership cached: the reservation checks there is none
	r, err := s.Reserve(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := cr.ops.take(); got["UpdateItem"] != 3 || got["GetItem"] != 1 || got["TransactWriteItems"] != 0 {
		t.Errorf("reserve sent %v, want 3 UpdateItem (key, user, team) and 1 GetItem (membership), no transaction", got)
	}
	for _, pk := range []string{store.PrefixKey + a.key.Token, store.PrefixUser + "u1", store.PrefixTeam + "t1"} {
		sk := map[byte]string{'K': store.SortKey, 'U': store.SortUser, 'T': store.SortTeam}[pk[0]]
		if ids := entries(raw(t, c, table, pk, sk)); len(ids) != 1 || ids[0] != "r1" {
			t.Errorf("%s holds %v, want the entry of r1", pk, ids)
		}
	}
	err = s.Settle(ctx, r, store.Settlement{Cost: 0.2, Tokens: 10, Log: &store.SpendLog{
		RequestID: "r1", ResponseID: "chatcmpl-1", APIKey: a.key.Token, User: "u1", TeamID: "t1", Model: "gpt-4o",
		StartTime: time.Now().UTC(), Status: store.StatusSuccess,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := cr.ops.take(); got["UpdateItem"] != 3 || got["PutItem"] != 1 || got["TransactWriteItems"] != 0 {
		t.Errorf("settle sent %v, want 1 PutItem (the log) and 3 UpdateItem, no transaction", got)
	}
	key, user, team, _ := a.spends(t, s)
	if key != 0.2 || user != 0.2 || team != 0.2 {
		t.Errorf("spend key %v user %v team %v, want 0.2 each", key, user, team)
	}
	for _, pk := range []string{store.PrefixUser + "u1", store.PrefixTeam + "t1"} {
		sk := map[byte]string{'U': store.SortUser, 'T': store.SortTeam}[pk[0]]
		it := raw(t, c, table, pk, sk)
		if ids := entries(it); len(ids) != 0 || num(it, "reserved") != 0 {
			t.Errorf("%s after settle: entries %v, reserved %v; want none and 0", pk, ids, num(it, "reserved"))
		}
	}
	// Settling again changes nothing.
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.2}); !errors.Is(err, store.ErrSettled) {
		t.Errorf("second settle: %v, want ErrSettled", err)
	}
	if key, user, team, _ := a.spends(t, s); key != 0.2 || user != 0.2 || team != 0.2 {
		t.Errorf("after a second settle: spend key %v user %v team %v, want 0.2 each", key, user, team)
	}
}

// A refusal by a later record (the team's budget) undoes what the earlier steps charged:
// the key's and the user's spend, reserved and lease, their entries, and the request the
// key's rpm counted.
func TestReserve_ARefusalByALaterStepUndoesTheEarlierOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table, _ := newCrashStore(t)
	a := newAccounts(t, s, budgeted(10, 10, 0.3))
	_, err := s.Reserve(ctx, a.input("r1", 0.5))
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Scope != store.ScopeTeam || ref.Reason != store.ReasonBudget {
		t.Fatalf("Reserve: %v, want the team's budget refusal", err)
	}
	k := raw(t, c, table, store.PrefixKey+a.key.Token, store.SortKey)
	u := raw(t, c, table, store.PrefixUser+"u1", store.SortUser)
	for what, got := range map[string]float64{
		"key spend": num(k, "spend"), "key reserved": num(k, "reserved"), "key inflight": num(k, "inflight"),
		"key rl_n": num(k, "rl_n"), "key rl_tok": num(k, "rl_tok"),
		"user spend": num(u, "spend"), "user reserved": num(u, "reserved"),
	} {
		if got != 0 {
			t.Errorf("%s = %v after the refusal, want 0", what, got)
		}
	}
	if len(entries(k))+len(entries(u)) != 0 {
		t.Errorf("entries left: key %v, user %v", entries(k), entries(u))
	}
}

// A process that dies between the steps (after the key and the user, at the team) leaves
// entries on the key record and the user; the rotator, settling the key record's
// expired entry, charges the estimate to the records that hold one, exactly once, and
// nothing to the team that never held one.
func TestSettleStale_SettlesACallThatCrashedBetweenSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table, cr := newCrashStore(t)
	a := newAccounts(t, s, budgeted(10, 10, 10))
	cr.at.Store(store.PrefixTeam)
	in := a.input("r1", 0.5)
	in.Estimate = 0.7
	_, err := s.Reserve(ctx, in)
	var ue *store.UncertainError
	if !errors.As(err, &ue) {
		t.Fatalf("Reserve: %v, want an UncertainError (the undo could not run either)", err)
	}
	cr.at.Store("")
	cr.crashed.Store(false)
	if ids := entries(raw(t, c, table, store.PrefixUser+"u1", store.SortUser)); len(ids) != 1 {
		t.Fatalf("user holds %v, want the entry the crash left", ids)
	}
	if n := overlappingRotators(t, s, time.Now().Add(2*time.Minute)); n != 1 {
		t.Errorf("rotator runs settled %d, want 1", n)
	}
	key, user, team, _ := a.spends(t, s)
	if key != 0.7 || user != 0.7 || team != 0 {
		t.Errorf("spend key %v user %v team %v, want the estimate 0.7 on the key and user, 0 on the team", key, user, team)
	}
	for _, pk := range []string{store.PrefixKey + a.key.Token, store.PrefixUser + "u1", store.PrefixTeam + "t1"} {
		sk := map[byte]string{'K': store.SortKey, 'U': store.SortUser, 'T': store.SortTeam}[pk[0]]
		it := raw(t, c, table, pk, sk)
		if ids := entries(it); len(ids) != 0 || num(it, "reserved") != 0 {
			t.Errorf("%s: entries %v, reserved %v; want none and 0", pk, ids, num(it, "reserved"))
		}
	}
	l, err := s.GetSpendLog(ctx, "r1")
	if err != nil || l.Spend != 0.7 || l.Status != store.StatusFailure {
		t.Errorf("spend log %+v, %v: want a failure log of 0.7", l, err)
	}
}

// overlappingRotators runs SettleStale three times at once, as overlapping rotator runs
// would, and returns how many reservations they settled together.
func overlappingRotators(t *testing.T, s *store.Store, at time.Time) int64 {
	t.Helper()
	var wg sync.WaitGroup
	var settled atomic.Int64
	for range 3 {
		wg.Go(func() {
			n, err := s.SettleStale(context.Background(), at, 100)
			if err != nil {
				t.Error(err)
			}
			settled.Add(int64(n))
		})
	}
	wg.Wait()
	return settled.Load()
}

// lagKey marks a request the lagging middleware delays.
type lagKey struct{}

// laggingUserWrite plays a DynamoDB that answers the first UpdateItem of a USER# record only
// after delay, and applies it then even if its caller gave up meanwhile (the caller gets its
// context's error at once): a write cancelled in flight but landing after its caller moved
// on.
func laggingUserWrite(delay time.Duration) func(*dynamodb.Options) {
	var once atomic.Bool
	return func(opts *dynamodb.Options) {
		opts.APIOptions = append(opts.APIOptions, func(s *smithymw.Stack) error {
			err := s.Initialize.Add(smithymw.InitializeMiddlewareFunc("markUserWrite",
				func(ctx context.Context, in smithymw.InitializeInput, next smithymw.InitializeHandler) (smithymw.InitializeOutput, smithymw.Metadata, error) {
					if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok {
						if pk, _ := u.Key["pk"].(*types.AttributeValueMemberS); pk != nil && strings.HasPrefix(pk.Value, store.PrefixUser) && once.CompareAndSwap(false, true) {
							ctx = context.WithValue(ctx, lagKey{}, true)
						}
					}
					return next.HandleInitialize(ctx, in)
				}), smithymw.Before)
			if err != nil {
				return err
			}
			return s.Deserialize.Add(smithymw.DeserializeMiddlewareFunc("lagUserWrite",
				func(ctx context.Context, in smithymw.DeserializeInput, next smithymw.DeserializeHandler) (smithymw.DeserializeOutput, smithymw.Metadata, error) {
					if ctx.Value(lagKey{}) == nil {
						return next.HandleDeserialize(ctx, in)
					}
					type answer struct {
						out smithymw.DeserializeOutput
						md  smithymw.Metadata
						err error
					}
					done := make(chan answer, 1)
					go func() {
						time.Sleep(delay)
						out, md, err := next.HandleDeserialize(context.WithoutCancel(ctx), in)
						done <- answer{out, md, err}
					}()
					select {
					case a := <-done:
						return a.out, a.md, a.err
					case <-ctx.Done():
						return smithymw.DeserializeOutput{}, smithymw.Metadata{}, ctx.Err()
					}
				}), smithymw.After)
		})
	}
}

// A reservation step whose write outlives the caller's deadline is waited for, not
// abandoned: abandoned, it landed after the refused call's undo and release had looked at
// the user record, and stayed there, charged, with nothing to settle it (the key record,
// which leads the rotator to a call's records, no longer held the call). Whether the call is
// then admitted (its steps all answered, late) or refused and released, the user and team
// hold nothing once it is settled, and the user's spend is the call's.
func TestReserve_AStepPastTheDeadlineIsWaitedFor(t *testing.T) {
	t.Parallel()
	const lag = 600 * time.Millisecond
	c, table := dynamotest.NewTable(t, laggingUserWrite(lag), store.WritesToCompletion)
	s := store.NewWithClient(c, table)
	a := newAccounts(t, s, budgeted(10, 10, 10))
	in := a.input(callid.New(time.Now()), 0.5)
	in.Membership = nil

	ctx, cancel := context.WithTimeout(context.Background(), lag/3)
	r, err := s.Reserve(ctx, in)
	cancel()
	settleCtx := context.Background()
	want := 0.0
	var ue *store.UncertainError
	switch {
	case err == nil: // every step answered, after the deadline: the call goes on
		want = 0.2
		if err := s.Settle(settleCtx, r, store.Settlement{Cost: want, Log: &in.Log}); err != nil {
			t.Fatal(err)
		}
	case errors.As(err, &ue): // what the limiter's release does
		if err := s.Settle(settleCtx, ue.Reservation, store.Settlement{}); err != nil && !errors.Is(err, store.ErrSettled) {
			t.Fatal(err)
		}
	default:
		t.Logf("reserve refused: %v", err)
	}
	time.Sleep(2 * lag) // any write still in flight lands
	for _, pk := range []string{store.PrefixKey + a.key.Token, store.PrefixUser + "u1", store.PrefixTeam + "t1"} {
		sk := map[byte]string{'K': store.SortKey, 'U': store.SortUser, 'T': store.SortTeam}[pk[0]]
		it := raw(t, c, table, pk, sk)
		if ids := entries(it); len(ids) != 0 || num(it, "reserved") != 0 || math.Abs(num(it, "spend")-want) > 1e-12 {
			t.Errorf("%s holds entries %v, reserved %v, spend %v; want none, 0 and %v (reserve: %v)", pk, ids, num(it, "reserved"), num(it, "spend"), want, err)
		}
	}
}
