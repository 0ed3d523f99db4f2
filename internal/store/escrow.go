package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Escrow shards let one team budget take more calls than one item can be written: a call
// charges one of the team's N shard items (TEAM#<id> / TEAM#E<n>, picked from its request
// id) instead of the team record, so each item takes 1/N of the team's writes.
//
// The team record stays the bank: it keeps max_budget and remaining = max_budget - spend as
// always, and lends headroom to a shard by moving it (bank remaining -= x, spend += x; shard
// remaining += x, in one transaction under the bank's remaining >= x). So the bank's spend is
// the real spend plus what the shards hold unspent, and
//
//	real spend = bank spend - Σ shard remaining,  headroom = bank remaining + Σ shard remaining
//
// whatever calls do: headroom is only ever moved, never created. A call reserves on its
// shard under the shard's remaining >= cost (a single-item step, see steps.go, or an item of
// its reservation's transaction) and settles there (its key record's entry or its RES# item
// names the shard, so the rotator settles a crashed call there too). A shard that cannot pay is refilled from
// the bank; when the bank cannot pay either, the other shards' headroom is swept back into
// it first; a call is refused only when the bank and all shards together cannot pay, with
// the team's summed spend. Admin reads add the shards up (foldEscrow).
//
// What keeps the sum exact when the budget changes under calls in flight: lowering
// max_budget or blocking the team closes every shard in the same transaction (a closed shard
// admits no call until a refill from the bank reopens it, and the bank then has the
// headroom, or is blocked); a budget reset holds refills, closes the shards, and then resets
// the bank and every shard in one transaction, keeping what calls in flight reserved.
const (
	attrClosed = "closed"
	// attrEscrowHold on the team record holds refills while a budget reset runs (unix
	// seconds; a hold older than escrowHoldFor is ignored, in case the reset died).
	attrEscrowHold = "escrow_hold"
	escrowHoldFor  = 30 * time.Second
	// escrowPerShard is the budget (USD) each shard is made for: a team gets one shard per
	// escrowPerShard of max_budget, up to the configured cap, so a small budget keeps one
	// counter (splitting it would only make calls move headroom around).
	escrowPerShard = 1.0
	// MaxEscrowShards bounds the shards: a budget reset writes the team record and every
	// shard in one transaction (at most 100 items), and an admin change that closes them
	// shares a transaction with the team's other writes.
	MaxEscrowShards = 64
	// maxRefills bounds the refills a reservation step tries before it backs off.
	maxRefills = 4
)

// SetEscrowShards sets the most escrow shards a team budget is split into (0 or 1: none).
func (s *Store) SetEscrowShards(n int) { s.escrowCap = min(max(n, 0), MaxEscrowShards) }

// escrowShards is the number of shards for team t: one per escrowPerShard of its budget, up
// to the cap, and never fewer than it had (shards hold entries of calls in flight and
// headroom; fewer would strand them).
func (s *Store) escrowShards(t *Team, had int) int {
	n := 0
	if t.MaxBudget != nil && s.escrowCap > 1 {
		n = int(min(float64(s.escrowCap), *t.MaxBudget/escrowPerShard))
	}
	if n < 2 {
		n = 0
	}
	return max(n, had)
}

// escrowShardOf is the shard of n that request id charges: spread evenly, and the same on
// every attempt and instance.
func escrowShardOf(id string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// escrowSK is the sort key of shard n.
func escrowSK(n int) string { return SortEscrow + strconv.Itoa(n) }

// escrowPlan is a team budget charged on a shard: the team's index in the plan's accounts,
// the team's shard count as planned, and the shard.
type escrowPlan struct {
	i, n int
	sk   string
}

// planEscrow moves the team's charge to its shard when the team is split and its budget is
// the only limit the call checks on the team record (budget windows and a parallel-request
// lease stay there; rate limits are RL# items). It does so on both paths: step by step, and
// in the transaction of a call with rate windows, a proxy budget, or a key record that holds
// maxHeld entries already (a busy key's 5th+ call in flight), so the team record is written
// by lends and sweeps only, however many calls a key has in flight.
func (p *plan) planEscrow(in *ReserveInput) {
	if in.Team == nil || in.Team.EscrowShards < 2 || in.Check != CheckReserve {
		return
	}
	for i, a := range p.accounts {
		sh := p.shapes[i]
		if !a.isTeam || !sh.budget || sh.windows > 0 || sh.maxParallel.set {
			continue
		}
		n := in.Team.EscrowShards
		p.escrow = &escrowPlan{i: i, n: n, sk: escrowSK(escrowShardOf(in.RequestID, n))}
		p.accounts[i].sk = p.escrow.sk
		p.res.Targets[i].SK = p.escrow.sk
	}
}

// escrowSnapshot reads team id's record and its n shards in one TransactGetItems, which no
// transaction interleaves with (n < MaxTxItems, see MaxEscrowShards).
func (s *Store) escrowSnapshot(ctx context.Context, id string, n int) (*escrowState, error) {
	gets := []types.TransactGetItem{{Get: &types.Get{TableName: aws.String(s.table), Key: keyOf(PrefixTeam+id, SortTeam)}}}
	for i := range n {
		gets = append(gets, types.TransactGetItem{Get: &types.Get{TableName: aws.String(s.table), Key: keyOf(PrefixTeam+id, escrowSK(i))}})
	}
	out, err := s.db.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: gets})
	if err != nil {
		return nil, fmt.Errorf("read escrow of team %s: %w", id, err)
	}
	st := &escrowState{shards: map[string]item{}}
	for i, r := range out.Responses {
		switch {
		case len(r.Item) == 0:
		case i == 0:
			st.team = r.Item
		default:
			st.shards[escrowSK(i-1)] = r.Item
		}
	}
	return st, nil
}

// headroom is what the team record and its shards together can still pay.
func (st *escrowState) headroom() *big.Rat {
	lent, _, _ := st.lent()
	return lent.Add(lent, ratAttr(st.team, "remaining"))
}

// escrowState is a team record and its shards as one strongly consistent Query read them.
type escrowState struct {
	team   item
	shards map[string]item // by sort key
}

// readEscrow reads team id's record (when withTeam) and its shards in one Query.
func (s *Store) readEscrow(ctx context.Context, id string, withTeam bool) (*escrowState, error) {
	prefix := SortEscrow
	if withTeam {
		prefix = SortTeam // "TEAM" and "TEAM#E…", not "MEMBER#…"
	}
	items, err := s.partition(ctx, PrefixTeam+id, prefix)
	if err != nil {
		return nil, fmt.Errorf("read escrow of team %s: %w", id, err)
	}
	st := &escrowState{shards: map[string]item{}}
	for _, it := range items {
		sk, _ := it["sk"].(*types.AttributeValueMemberS)
		switch {
		case sk == nil:
		case sk.Value == SortTeam:
			st.team = it
		case strings.HasPrefix(sk.Value, SortEscrow):
			st.shards[sk.Value] = it
		}
	}
	return st, nil
}

// lent sums what the shards hold: their remaining (headroom lent by the bank, unspent), the
// part of it calls in flight reserved, and their spend per model.
func (st *escrowState) lent() (remaining, reserved *big.Rat, models map[string]*big.Rat) {
	remaining, reserved, models = new(big.Rat), new(big.Rat), map[string]*big.Rat{}
	for _, sh := range st.shards {
		remaining.Add(remaining, ratAttr(sh, "remaining"))
		reserved.Add(reserved, ratAttr(sh, "reserved"))
		ms, _ := sh["model_spend"].(*types.AttributeValueMemberM)
		if ms == nil {
			continue
		}
		for m := range ms.Value {
			if models[m] == nil {
				models[m] = new(big.Rat)
			}
			models[m].Add(models[m], ratAttr(ms.Value, m))
		}
	}
	return remaining, reserved, models
}

// foldEscrow adds the shards of the split teams among ts into their figures (one Query
// each), so spend, remaining and model_spend read as one counter would.
func (s *Store) foldEscrow(ctx context.Context, ts ...*Team) error {
	for _, t := range ts {
		if t == nil || t.EscrowShards < 2 {
			continue
		}
		st, err := s.readEscrow(ctx, t.TeamID, false)
		if err != nil {
			return err
		}
		rem, rsv, models := st.lent()
		t.Spend = ratFloat(new(big.Rat).Sub(ratOf(usd(t.Spend)), rem))
		if t.Remaining != nil {
			r := ratFloat(new(big.Rat).Add(ratOf(usd(*t.Remaining)), rem))
			t.Remaining = &r
		}
		t.Reserved = ratFloat(new(big.Rat).Add(ratOf(usd(t.Reserved)), rsv))
		for m, v := range models {
			if t.ModelSpend == nil {
				t.ModelSpend = map[string]float64{}
			}
			t.ModelSpend[m] = ratFloat(new(big.Rat).Add(ratOf(usd(t.ModelSpend[m])), v))
		}
	}
	return nil
}

// refill is what a reservation does when its shard refused it: it reads the team and
// its shards and returns nil once the shard can pay (moving headroom to it from the bank,
// or first sweeping the other shards' headroom into the bank when the bank alone cannot),
// the team's refusal when the bank and all shards together cannot pay, errReplan when the
// team changed since it was cached (in.Team is then the fresh copy), or errTransient.
func (s *Store) refill(ctx context.Context, p *plan, in *ReserveInput) error {
	es, a := p.escrow, p.accounts[p.escrow.i]
	cost := ratOf(usd(in.Cost))
	if ref := s.spent.refusal(a.id, cost, time.Now()); ref != nil {
		return ref
	}
	st, err := s.readEscrow(ctx, a.id, true)
	if err != nil {
		return err
	}
	if st.team == nil {
		in.replace(ScopeTeam, nil)
		return errReplan
	}
	acct, rec, err := decodeAccount(ScopeTeam, st.team)
	if err != nil {
		return err
	}
	t := rec.(*Team)
	switch {
	case t.Blocked:
		return &Refusal{Reason: ReasonBlocked, Scope: ScopeTeam, ID: a.id}
	case t.EscrowShards != es.n || acct.shape(in.Model) != p.shapes[es.i]:
		in.replace(ScopeTeam, t)
		return errReplan
	}
	bank := ratAttr(st.team, "remaining")
	mine := st.shards[es.sk]
	rem := ratAttr(mine, "remaining")
	closed := isClosed(mine)
	total, debts := st.headroom(), new(big.Rat)
	var sweep []shardAmount
	for sk, sh := range st.shards {
		r := ratAttr(sh, "remaining")
		switch {
		case sk == es.sk && closed && r.Sign() > 0:
			// Reopened only with a lend the bank can pay: its headroom goes back first.
			sweep = append(sweep, shardAmount{sk, r})
		case sk == es.sk:
		case r.Sign() < 0:
			debts.Sub(debts, r) // an overrun on that shard: the bank pays it before lending more
		case r.Sign() > 0:
			sweep = append(sweep, shardAmount{sk, r})
		}
	}
	if mine != nil && !closed && rem.Cmp(cost) >= 0 {
		return nil // refilled meanwhile
	}
	if total.Cmp(cost) < 0 {
		// A Query is not isolated from transactions: it may see headroom moved between
		// two items on one of them only. A refusal is decided on a snapshot that is.
		snap, err := s.escrowSnapshot(ctx, a.id, es.n)
		if err != nil {
			return err
		}
		if snap.headroom().Cmp(cost) >= 0 {
			return nil // read again
		}
		lentRem, _, _ := snap.lent()
		spend := ratFloat(new(big.Rat).Sub(ratAttr(snap.team, "spend"), lentRem))
		ref := &Refusal{Reason: ReasonBudget, Scope: ScopeTeam, ID: a.id, Spend: spend, Max: *t.MaxBudget}
		s.spent.remember(a.id, snap.headroom(), ref, time.Now())
		return ref
	}
	need := new(big.Rat).Sub(cost, rem)
	if closed && rem.Sign() > 0 {
		need.Set(cost)
	}
	free := new(big.Rat).Sub(bank, debts)
	if free.Cmp(need) < 0 {
		return s.sweepEscrow(ctx, a.id, sweep)
	}
	// Move what the call needs and a share of the budget for the calls that follow.
	x := new(big.Rat).Quo(ratOf(usd(*t.MaxBudget)), big.NewRat(int64(2*es.n), 1))
	x.Add(x, need)
	if x.Cmp(free) > 0 {
		x.Set(free)
	}
	return s.lend(ctx, a.id, es, x, new(big.Rat).Add(x, debts), in.Now)
}

// reclaimEscrow sweeps the headroom of all of team id's shards back into its record.
func (s *Store) reclaimEscrow(ctx context.Context, id string) error {
	st, err := s.readEscrow(ctx, id, false)
	if err != nil {
		return err
	}
	var from []shardAmount
	for sk, sh := range st.shards {
		if r := ratAttr(sh, "remaining"); r.Sign() > 0 {
			from = append(from, shardAmount{sk, r})
		}
	}
	if err := s.sweepEscrow(ctx, id, from); err != nil && !errors.Is(err, errTransient) {
		return err
	}
	return nil
}

// isClosed reports whether a shard item is closed (see closeEscrow).
func isClosed(sh item) bool {
	c, ok := sh[attrClosed].(*types.AttributeValueMemberBOOL)
	return ok && c.Value
}

// refusalMemo remembers, per split team, for refusalFor, the headroom a snapshot found too
// small for a call: at the end of a team's budget every call would otherwise read all its
// shards twice before its refusal (about 2 × (N + 1) read units), which at 2,000 calls/s is
// far more than the team's partition serves. A call that headroom cannot pay is refused
// without a read meanwhile; headroom that comes back (refunds, a raised budget) is seen
// within refusalFor.
type refusalMemo struct {
	mu sync.Mutex
	m  map[string]spentTeam
}

type spentTeam struct {
	until    time.Time
	headroom *big.Rat
	ref      Refusal
}

const refusalFor = time.Second

// refusal is the team's remembered refusal when cost is more than the headroom it found.
func (m *refusalMemo) refusal(id string, cost *big.Rat, now time.Time) *Refusal {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[id]
	if !ok || now.After(e.until) || cost.Cmp(e.headroom) <= 0 {
		return nil
	}
	ref := e.ref
	return &ref
}

// forget drops what is remembered of team id (its budget or limits change).
func (m *refusalMemo) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, id)
}

func (m *refusalMemo) remember(id string, headroom *big.Rat, ref *Refusal, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxMemo {
		m.m = map[string]spentTeam{}
	}
	m.m[id] = spentTeam{until: now.Add(refusalFor), headroom: headroom, ref: *ref}
}

// shardAmount is an amount on a shard.
type shardAmount struct {
	sk string
	v  *big.Rat
}

// lend moves x from team id's bank to shard es.sk (reopening it) in one transaction, under
// the bank's remaining >= atLeast, not blocked, split as planned and not held by a reset.
// A failed condition returns nil: the caller reads again.
func (s *Store) lend(ctx context.Context, id string, es *escrowPlan, x, atLeast *big.Rat, now time.Time) error {
	b := newTxExpr()
	bx := b.num(ratString(x))
	rem, spend := b.name("remaining"), b.name("spend")
	b.set(rem + " = " + rem + " - " + bx)
	b.set(spend + " = " + spend + " + " + bx)
	b.cond(rem + " >= " + b.num(ratString(atLeast)))
	b.cond(b.name("escrow_shards") + " = " + b.num(strconv.Itoa(es.n)))
	blk := b.name("blocked")
	b.cond("(attribute_not_exists(" + blk + ") OR " + blk + " = " + b.value(&types.AttributeValueMemberBOOL{Value: false}) + ")")
	b.notHeld(now)

	sh := newTxExpr()
	zero, sx := sh.num("0"), sh.num(ratString(x))
	srem := sh.name("remaining")
	sh.set(srem + " = if_not_exists(" + srem + ", " + zero + ") + " + sx)
	for _, c := range []string{"spend", "reserved"} {
		n := sh.name(c)
		sh.set(n + " = if_not_exists(" + n + ", " + zero + ")")
	}
	ms := sh.name("model_spend")
	sh.set(ms + " = if_not_exists(" + ms + ", " + sh.value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}) + ")")
	sh.remove(sh.name(attrClosed))
	return s.escrowWrite(ctx, []types.TransactWriteItem{
		{Update: b.update(s.table, PrefixTeam+id, SortTeam)},
		{Update: sh.update(s.table, PrefixTeam+id, es.sk)},
	})
}

// sweepEscrow moves the headroom of shards back to team id's bank, each under its
// remaining >= what is moved, in one transaction. A failed condition returns nil.
func (s *Store) sweepEscrow(ctx context.Context, id string, from []shardAmount) error {
	if len(from) == 0 {
		return errTransient // the headroom is in flight: it comes back as calls settle
	}
	from = from[:min(len(from), MaxTxItems-1)]
	items := make([]types.TransactWriteItem, 0, len(from)+1)
	sum := new(big.Rat)
	for _, f := range from {
		e := newTxExpr()
		rem, v := e.name("remaining"), e.num(ratString(f.v))
		e.set(rem + " = " + rem + " - " + v)
		e.cond(rem + " >= " + v)
		items = append(items, types.TransactWriteItem{Update: e.update(s.table, PrefixTeam+id, f.sk)})
		sum.Add(sum, f.v)
	}
	b := newTxExpr()
	v, rem, spend := b.num(ratString(sum)), b.name("remaining"), b.name("spend")
	b.set(rem + " = " + rem + " + " + v)
	b.set(spend + " = " + spend + " - " + v)
	b.cond("attribute_exists(" + rem + ")")
	b.notHeld(time.Now())
	items = append(items, types.TransactWriteItem{Update: b.update(s.table, PrefixTeam+id, SortTeam)})
	return s.escrowWrite(ctx, items)
}

// escrowWrite runs a refill's transaction: a failed condition is nil (read again), a
// conflict or throttle is returned for the step's backoff.
func (s *Store) escrowWrite(ctx context.Context, items []types.TransactWriteItem) error {
	err := s.write(ctx, items)
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && !retryable(err) {
		return nil
	}
	return err
}

// notHeld requires the team record not to be held by a budget reset in progress.
func (e *txExpr) notHeld(now time.Time) {
	h := e.name(attrEscrowHold)
	e.cond("(attribute_not_exists(" + h + ") OR " + h + " < " + e.num(strconv.FormatInt(now.Add(-escrowHoldFor).Unix(), 10)) + ")")
}

// closeEscrow adds to an admin change of a split team the closing of its shards: a shard
// then admits no call until a refill from the bank reopens it (see refill).
func (t *Tx) closeEscrow(id string, n int) {
	for i := range n {
		e := newTxExpr()
		e.set(e.name(attrClosed) + " = " + e.value(&types.AttributeValueMemberBOOL{Value: true}))
		t.add(types.TransactWriteItem{Update: e.update(t.s.table, PrefixTeam+id, escrowSK(i))}, ErrConflict)
	}
}

// escrowCloses reports whether changing a split team from old to new must close its shards:
// it is blocked, its budget is lowered (the shards may hold headroom it no longer has), or
// a limit besides its budget is set or changed (a call on a shard checks none of them; on
// a closed shard it re-plans with the team as it now is).
func escrowCloses(old, new *Team) bool {
	lowered := old.MaxBudget != nil && (new.MaxBudget == nil || *new.MaxBudget < *old.MaxBudget)
	return new.Blocked && !old.Blocked || lowered || !reflect.DeepEqual(perCallLimits(old), perCallLimits(new))
}

// teamLimits are the limits a team checks on each call besides its budget.
type teamLimits struct {
	Limits
	windows              []BudgetWindow
	memberRPM, memberTPM *int64
}

func perCallLimits(t *Team) teamLimits {
	l := teamLimits{t.Limits, t.BudgetLimits, t.TeamMemberRPM, t.TeamMemberTPM}
	l.Inflight = 0 // a count, not a limit
	return l
}

// resetEscrow is the budget reset of a split team's bank and shards (see ResetBudgets): it
// holds refills and closes the shards (so what they reserve can only fall), reads what
// each shard's calls in flight reserved, then writes bank and shards in one transaction
// (reset is the bank's update, which sets spend from held): each shard's spend becomes its
// reserved and its remaining what it was lent (its reserved as read) less that, and the
// bank's spend what all calls in flight hold. A run that finds the
// reset done by another (reset_at moved) gets ErrConflict, as ResetBudgets does.
func (s *Store) resetEscrow(ctx context.Context, rec *BudgetRecord, n int, resetAt types.AttributeValue, reset func(held *big.Rat) (*types.Update, error)) error {
	id := strings.TrimPrefix(rec.PK, PrefixTeam)
	hold := newTxExpr()
	hold.set(hold.name(attrEscrowHold) + " = " + hold.num(strconv.FormatInt(time.Now().Unix(), 10)))
	hold.cond(hold.name("reset_at") + " = " + hold.value(resetAt))
	items := []types.TransactWriteItem{{Update: hold.update(s.table, rec.PK, rec.SK)}}
	for i := range n {
		e := newTxExpr()
		e.set(e.name(attrClosed) + " = " + e.value(&types.AttributeValueMemberBOOL{Value: true}))
		items = append(items, types.TransactWriteItem{Update: e.update(s.table, rec.PK, escrowSK(i))})
	}
	if err := s.write(ctx, items); err != nil {
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) && !retryable(err) {
			return fmt.Errorf("reset %s %s: %w", rec.PK, rec.SK, ErrConflict)
		}
		return fmt.Errorf("hold escrow of team %s: %w", id, err)
	}
	st, err := s.readEscrow(ctx, id, false)
	if err != nil {
		return err
	}
	held := new(big.Rat)
	items = items[:1]
	for sk, sh := range st.shards {
		r := ratAttr(sh, "reserved")
		held.Add(held, r)
		e := newTxExpr()
		rsv, spend, rem := e.name("reserved"), e.name("spend"), e.name("remaining")
		if _, ok := sh["reserved"]; ok {
			v := e.num(ratString(r))
			e.set(spend + " = " + rsv)
			e.set(rem + " = " + v + " - " + rsv)
			e.cond(rsv + " <= " + v)
		} else {
			zero := e.num("0")
			e.set(spend + " = " + zero)
			e.set(rem + " = " + zero)
			e.cond("attribute_not_exists(" + rsv + ")")
		}
		items = append(items, types.TransactWriteItem{Update: e.update(s.table, rec.PK, sk)})
	}
	u, err := reset(held)
	if err != nil {
		return err
	}
	items[0] = types.TransactWriteItem{Update: u}
	if len(items) > MaxTxItems {
		return fmt.Errorf("reset %s: %d shards are over a transaction's limit", rec.PK, len(items)-1)
	}
	err = s.write(ctx, items)
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && !retryable(err) {
		// Reopen refills at once rather than after the hold times out.
		_, _ = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: keyOf(rec.PK, rec.SK),
			UpdateExpression: aws.String("REMOVE #h"), ExpressionAttributeNames: map[string]string{"#h": attrEscrowHold},
		})
		return fmt.Errorf("reset %s %s: %w", rec.PK, rec.SK, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("reset %s %s: %w", rec.PK, rec.SK, err)
	}
	s.spent.forget(id) // a process that serves calls too (the local server)
	return nil
}

// ratAttr is the number attribute name of it as an exact decimal (0 when absent).
func ratAttr(it item, name string) *big.Rat {
	if n, ok := it[name].(*types.AttributeValueMemberN); ok {
		return ratOf(n.Value)
	}
	return new(big.Rat)
}

// ratOf parses a decimal (0 when it is not one).
func ratOf(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return new(big.Rat)
	}
	return r
}

// ratString formats r as the decimal DynamoDB stores (see usd).
func ratString(r *big.Rat) string {
	s := strings.TrimRight(strings.TrimRight(r.FloatString(usdDecimals), "0"), ".")
	if s == "-0" || s == "" {
		return "0"
	}
	return s
}

func ratFloat(r *big.Rat) float64 {
	f, _ := r.Float64()
	return usdFloat(f)
}
