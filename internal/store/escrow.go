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
//
// A key whose budget is its only per-call limit is split the same way (KEY#<hash> /
// KEY#E<n>, its record the bank; see bank): a call's reservation entry, the full heldEntry
// with the other records it charged, is held on its shard instead of the key record, so
// reserve and settle are one single-item write each there, and the shard checks the key's
// expiry as the last lend copied it. A call that finds its shard holding maxHeld entries
// (a key with many calls in flight: LLM latencies) holds a RES# item naming the shard and
// charges the shard in a transaction, so the key record is written by lends and sweeps only
// however many calls are in flight. A rotation moves the shards to the new hash (see
// Tx.moveEscrow); a deletion deletes them, handing their entries over (see DeleteKey).
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
	// MaxKeyEscrowShards bounds a key's shards lower: a rotation moves them (a put and a
	// delete each) in the transaction that moves the key record.
	MaxKeyEscrowShards = 32
	// maxRefills bounds the refills a reservation step tries before it backs off.
	maxRefills = 4
)

// SetEscrowShards sets the most escrow shards a team or key budget is split into (0 or 1:
// none).
func (s *Store) SetEscrowShards(n int) { s.escrowCap = min(max(n, 0), MaxEscrowShards) }

// escrowShards is the number of shards for a budget of max (nil: none) at most most: one per
// escrowPerShard of it, up to the cap, and never fewer than it had (shards hold entries of
// calls in flight and headroom; fewer would strand them).
func (s *Store) escrowShards(budget *float64, most, had int) int {
	n := 0
	if budget != nil && s.escrowCap > 1 {
		n = int(min(float64(min(s.escrowCap, most)), *budget/escrowPerShard))
	}
	if n < 2 {
		n = 0
	}
	return max(n, had)
}

// bank is a record whose budget is split into escrow shards, in its own partition: a team
// record (shards TEAM#<id> / TEAM#E<n>) or a key record (KEY#<hash> / KEY#E<n>).
type bank struct {
	scope, id, pk, sk string
	shard             string // sort key prefix of its shards
	// copies are attributes of the bank that a lend copies onto the shard, because a call
	// on the shard checks them there (a key's expiry) or the rotator reads them (its hash).
	copies []string
}

func teamBank(id string) bank {
	return bank{scope: ScopeTeam, id: id, pk: PrefixTeam + id, sk: SortTeam, shard: SortEscrow}
}

func keyBank(token string) bank {
	return bank{scope: ScopeKey, id: token, pk: PrefixKey + token, sk: SortKey, shard: SortKeyEscrow, copies: []string{"token", "expires_at"}}
}

// bankOf is the bank of a record (pk, sk), if it is a team or a key record.
func bankOf(pk, sk string) (bank, bool) {
	switch {
	case sk == SortTeam && strings.HasPrefix(pk, PrefixTeam):
		return teamBank(strings.TrimPrefix(pk, PrefixTeam)), true
	case sk == SortKey && strings.HasPrefix(pk, PrefixKey):
		return keyBank(strings.TrimPrefix(pk, PrefixKey)), true
	}
	return bank{}, false
}

// escrowShardOf is the shard of n that request id charges: spread evenly, and the same on
// every attempt and instance.
func escrowShardOf(id string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// shardSK is the sort key of the bank's shard n.
func (b bank) shardSK(n int) string { return b.shard + strconv.Itoa(n) }

// escrowPlan is a budget charged on a shard: the bank's index in the plan's accounts, its
// shard count as planned, the shard, and the bank.
type escrowPlan struct {
	i, n int
	sk   string
	b    bank
}

// planEscrow moves the charges of a split team and of a split key to their shards (see
// escrowOn). A team's moves on both paths: step by step, and in the transaction of a call
// with rate windows, a proxy budget, or a key record that holds maxHeld entries already (a
// busy key's 5th+ call in flight), so the team record is written by lends and sweeps only,
// however many calls a key has in flight. A key's moves too, whether its shard holds the
// call's entry or (a shard holding maxHeld entries already) a RES# item does.
func (p *plan) planEscrow(in *ReserveInput) {
	if in.Check != CheckReserve {
		return
	}
	if in.Key != nil && in.Key.EscrowShards > 1 && len(p.accounts) > 0 && p.accounts[0].isKey {
		p.keyEscrow = p.escrowOn(0, in.Key.EscrowShards, keyBank(in.Key.Token), in.RequestID)
	}
	if in.Team == nil || in.Team.EscrowShards < 2 {
		return
	}
	for i, a := range p.accounts {
		if a.isTeam {
			p.escrow = p.escrowOn(i, in.Team.EscrowShards, teamBank(a.id), in.RequestID)
		}
	}
}

// escrowOn moves account i's charge to the shard of n that request id picks, when its budget
// is the only limit the call checks on the record: budget windows and a parallel-request
// lease stay on it; a team's rate limits are RL# items, but a key's are counted on its
// record (and a key that has any limit besides its budget is not split). nil when it stays
// on the record.
func (p *plan) escrowOn(i, n int, b bank, id string) *escrowPlan {
	sh := p.shapes[i]
	if !sh.budget || sh.windows > 0 || sh.maxParallel.set || p.accounts[i].isKey && sh != (shape{budget: true}) {
		return nil
	}
	es := &escrowPlan{i: i, n: n, sk: b.shardSK(escrowShardOf(id, n)), b: b}
	p.accounts[i].sk = es.sk
	p.res.Targets[i].SK = es.sk
	return es
}

// escrowSnapshot reads bank b and its n shards in one TransactGetItems, which no
// transaction interleaves with (n < MaxTxItems, see MaxEscrowShards).
func (s *Store) escrowSnapshot(ctx context.Context, b bank, n int) (*escrowState, error) {
	gets := []types.TransactGetItem{{Get: &types.Get{TableName: aws.String(s.table), Key: keyOf(b.pk, b.sk)}}}
	for i := range n {
		gets = append(gets, types.TransactGetItem{Get: &types.Get{TableName: aws.String(s.table), Key: keyOf(b.pk, b.shardSK(i))}})
	}
	out, err := s.db.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: gets})
	if err != nil {
		return nil, fmt.Errorf("read escrow of %s %s: %w", b.scope, b.id, err)
	}
	st := &escrowState{shards: map[string]item{}}
	for i, r := range out.Responses {
		switch {
		case len(r.Item) == 0:
		case i == 0:
			st.bank = r.Item
		default:
			st.shards[b.shardSK(i-1)] = r.Item
		}
	}
	return st, nil
}

// headroom is what the bank and its shards together can still pay.
func (st *escrowState) headroom() *big.Rat {
	lent, _, _ := st.lent()
	return lent.Add(lent, ratAttr(st.bank, "remaining"))
}

// escrowState is a bank and its shards as one strongly consistent Query read them.
type escrowState struct {
	bank   item
	shards map[string]item // by sort key
}

// readEscrow reads bank b (when withBank) and its shards in one Query.
func (s *Store) readEscrow(ctx context.Context, b bank, withBank bool) (*escrowState, error) {
	prefix := b.shard
	if withBank {
		prefix = b.sk // "TEAM" and "TEAM#E…", not "MEMBER#…"; "KEY" and "KEY#E…"
	}
	items, err := s.partition(ctx, b.pk, prefix)
	if err != nil {
		return nil, fmt.Errorf("read escrow of %s %s: %w", b.scope, b.id, err)
	}
	st := &escrowState{shards: map[string]item{}}
	for _, it := range items {
		sk, _ := it["sk"].(*types.AttributeValueMemberS)
		switch {
		case sk == nil:
		case sk.Value == b.sk:
			st.bank = it
		case strings.HasPrefix(sk.Value, b.shard):
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

// foldEscrow adds the shards of a split team into its figures (one Query), so spend,
// remaining and model_spend read as one counter would.
func (s *Store) foldEscrow(ctx context.Context, t *Team) error {
	if t == nil || t.EscrowShards < 2 {
		return nil
	}
	return s.foldShards(ctx, teamBank(t.TeamID), &t.Budget, &t.ModelSpend)
}

// foldKeyEscrow adds the shards of a split key into its figures, as foldEscrow does a team's.
func (s *Store) foldKeyEscrow(ctx context.Context, k *Key) error {
	if k == nil || k.EscrowShards < 2 || k.IsPointer() {
		return nil
	}
	return s.foldShards(ctx, keyBank(k.Token), &k.Budget, &k.ModelSpend)
}

// foldShards adds what bank b's shards hold into its budget and model spend as read.
func (s *Store) foldShards(ctx context.Context, b bank, bud *Budget, modelSpend *map[string]float64) error {
	st, err := s.readEscrow(ctx, b, false)
	if err != nil {
		return err
	}
	rem, rsv, models := st.lent()
	bud.Spend = ratFloat(new(big.Rat).Sub(ratOf(usd(bud.Spend)), rem))
	if bud.Remaining != nil {
		r := ratFloat(new(big.Rat).Add(ratOf(usd(*bud.Remaining)), rem))
		bud.Remaining = &r
	}
	bud.Reserved = ratFloat(new(big.Rat).Add(ratOf(usd(bud.Reserved)), rsv))
	for m, v := range models {
		if *modelSpend == nil {
			*modelSpend = map[string]float64{}
		}
		(*modelSpend)[m] = ratFloat(new(big.Rat).Add(ratOf(usd((*modelSpend)[m])), v))
	}
	return nil
}

// refill is what a reservation does when its shard es refused it: it reads the bank and
// its shards and returns nil once the shard can pay (moving headroom to it from the bank,
// or first sweeping the other shards' headroom into the bank when the bank alone cannot),
// the bank's refusal when the bank and all shards together cannot pay (or it is blocked,
// expired, gone), errReplan when the bank changed since it was cached (the input then holds
// the fresh copy), or errTransient.
func (s *Store) refill(ctx context.Context, p *plan, es *escrowPlan, in *ReserveInput) error {
	cost := ratOf(usd(in.Cost))
	if ref := s.spent.refusal(es.b.pk, cost, time.Now()); ref != nil {
		return ref
	}
	st, err := s.readEscrow(ctx, es.b, true)
	if err != nil {
		return err
	}
	acct, rec, ref, replan, err := p.recordState(in, es.i, st.bank)
	switch {
	case err != nil:
		return err
	case ref != nil:
		return ref
	case replan:
		return errReplan
	case int(ratAttr(st.bank, "escrow_shards").Num().Int64()) != es.n:
		in.replace(es.b.scope, rec)
		return errReplan
	}
	bank := ratAttr(st.bank, "remaining")
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
		snap, err := s.escrowSnapshot(ctx, es.b, es.n)
		if err != nil {
			return err
		}
		if snap.headroom().Cmp(cost) >= 0 {
			return nil // read again
		}
		lentRem, _, _ := snap.lent()
		spend := ratFloat(new(big.Rat).Sub(ratAttr(snap.bank, "spend"), lentRem))
		ref := &Refusal{Reason: ReasonBudget, Scope: es.b.scope, ID: es.b.id, Spend: spend, Max: *acct.budget.MaxBudget}
		s.spent.remember(es.b.pk, snap.headroom(), ref, time.Now())
		return ref
	}
	need := new(big.Rat).Sub(cost, rem)
	if closed && rem.Sign() > 0 {
		need.Set(cost)
	}
	free := new(big.Rat).Sub(bank, debts)
	if free.Cmp(need) < 0 {
		return s.sweepEscrow(ctx, es.b, sweep)
	}
	// Move what the call needs and a share of the budget for the calls that follow.
	x := new(big.Rat).Quo(ratOf(usd(*acct.budget.MaxBudget)), big.NewRat(int64(2*es.n), 1))
	x.Add(x, need)
	if x.Cmp(free) > 0 {
		x.Set(free)
	}
	return s.lend(ctx, st.bank, es, x, new(big.Rat).Add(x, debts), in.Now)
}

// reclaimEscrow sweeps the headroom of all of bank b's shards back into it.
func (s *Store) reclaimEscrow(ctx context.Context, b bank) error {
	st, err := s.readEscrow(ctx, b, false)
	if err != nil {
		return err
	}
	var from []shardAmount
	for sk, sh := range st.shards {
		if r := ratAttr(sh, "remaining"); r.Sign() > 0 {
			from = append(from, shardAmount{sk, r})
		}
	}
	if err := s.sweepEscrow(ctx, b, from); err != nil && !errors.Is(err, errTransient) {
		return err
	}
	return nil
}

// isClosed reports whether a shard item is closed (see closeEscrow).
func isClosed(sh item) bool {
	c, ok := sh[attrClosed].(*types.AttributeValueMemberBOOL)
	return ok && c.Value
}

// refusalMemo remembers, per split team or key (by its bank's pk), for refusalFor, the headroom a snapshot found too
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

// forget drops what is remembered of bank pk id (its budget or limits change).
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

// lend moves x from bank es.b (as read: raw) to shard es.sk (reopening it) in one
// transaction, under the bank's remaining >= atLeast, not blocked, split as planned and not
// held by a reset; the bank's attributes that a call on the shard checks are copied onto it
// (under the condition that they are still the ones read). A failed condition returns nil:
// the caller reads again.
func (s *Store) lend(ctx context.Context, raw item, es *escrowPlan, x, atLeast *big.Rat, now time.Time) error {
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
	for _, a := range es.b.copies {
		v, ok := raw[a]
		if !ok {
			b.cond("attribute_not_exists(" + b.name(a) + ")")
			sh.remove(sh.name(a))
			continue
		}
		b.cond(b.name(a) + " = " + b.value(v))
		sh.set(sh.name(a) + " = " + sh.value(v))
	}
	return s.escrowWrite(ctx, []types.TransactWriteItem{
		{Update: b.update(s.table, es.b.pk, es.b.sk)},
		{Update: sh.update(s.table, es.b.pk, es.sk)},
	})
}

// sweepEscrow moves the headroom of shards back to bank bk, each under its remaining >= what
// is moved, in one transaction. A failed condition returns nil.
func (s *Store) sweepEscrow(ctx context.Context, bk bank, from []shardAmount) error {
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
		items = append(items, types.TransactWriteItem{Update: e.update(s.table, bk.pk, f.sk)})
		sum.Add(sum, f.v)
	}
	b := newTxExpr()
	v, rem, spend := b.num(ratString(sum)), b.name("remaining"), b.name("spend")
	b.set(rem + " = " + rem + " + " + v)
	b.set(spend + " = " + spend + " - " + v)
	b.cond("attribute_exists(" + rem + ")")
	b.notHeld(time.Now())
	items = append(items, types.TransactWriteItem{Update: b.update(s.table, bk.pk, bk.sk)})
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

// notHeld requires the bank not to be held by a budget reset in progress.
func (e *txExpr) notHeld(now time.Time) {
	h := e.name(attrEscrowHold)
	e.cond("(attribute_not_exists(" + h + ") OR " + h + " < " + e.num(strconv.FormatInt(now.Add(-escrowHoldFor).Unix(), 10)) + ")")
}

// closeEscrow adds to an admin change of a split team or key the closing of its shards: a
// shard then admits no call until a refill from the bank reopens it (see refill).
func (t *Tx) closeEscrow(b bank, n int) {
	for i := range n {
		e := newTxExpr()
		e.set(e.name(attrClosed) + " = " + e.value(&types.AttributeValueMemberBOOL{Value: true}))
		t.add(types.TransactWriteItem{Update: e.update(t.s.table, b.pk, b.shardSK(i))}, ErrConflict)
	}
}

// escrowCloses reports whether changing a split team from old to new must close its shards:
// it is blocked, its budget is lowered (the shards may hold headroom it no longer has), or
// a limit besides its budget is set or changed (a call on a shard checks none of them; on
// a closed shard it re-plans with the team as it now is).
func escrowCloses(old, new *Team) bool {
	return closes(old.Blocked, new.Blocked, old.MaxBudget, new.MaxBudget, perCallLimits(old), perCallLimits(new))
}

// keyEscrowCloses is escrowCloses of a split key: its expiry is one of its limits too (a
// lend copies it onto the shard, which checks it).
func keyEscrowCloses(old, new *Key) bool {
	return closes(old.Blocked, new.Blocked, old.MaxBudget, new.MaxBudget, keyLimitsOf(old), keyLimitsOf(new))
}

func closes(oldBlocked, newBlocked bool, oldMax, newMax *float64, oldLimits, newLimits any) bool {
	lowered := oldMax != nil && (newMax == nil || *newMax < *oldMax)
	return newBlocked && !oldBlocked || lowered || !reflect.DeepEqual(oldLimits, newLimits)
}

// keyLimits are the limits a key checks on each call besides its budget: a key that has
// none is split into shards (see Tx.PutKey), a split key that gets one has its shards
// closed.
type keyLimits struct {
	Limits
	windows   []BudgetWindow
	models    map[string]ModelBudget
	expiresAt int64
}

func keyLimitsOf(k *Key) keyLimits {
	l := keyLimits{k.Limits, k.BudgetLimits, k.ModelMaxBudget, k.ExpiresAt}
	l.Inflight = 0 // a count, not a limit
	return l
}

// keyShards is the number of escrow shards of key k as it is now written, having had had.
// Only a key whose budget is its only per-call limit is split (an expiry is copied onto the
// shards); its shards must fit a rotation's transaction, which moves them.
func (s *Store) keyShards(k *Key, had int) int {
	l := keyLimitsOf(k)
	l.expiresAt = 0
	if !reflect.DeepEqual(l, keyLimits{}) || k.IsPointer() {
		return had
	}
	return s.escrowShards(k.MaxBudget, MaxKeyEscrowShards, had)
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

// resetEscrow is the budget reset of a split team's or key's bank b and shards (see
// ResetBudgets, ResetKeySpend): it holds refills and closes the shards (so what they reserve
// can only fall), reads what each shard's calls in flight reserved, then writes bank and
// shards in one transaction (reset is the bank's update, which sets spend from held): each
// shard's spend becomes its reserved and its remaining what it was lent (its reserved as
// read) less that, and the bank's spend what all calls in flight hold. guard is the hold's
// condition that the bank is as the reset read it: a run that finds it changed (the reset
// done by another: reset_at moved) gets ErrConflict, as ResetBudgets does.
func (s *Store) resetEscrow(ctx context.Context, b bank, n int, guard func(*txExpr), reset func(held *big.Rat) (*types.Update, error)) error {
	hold := newTxExpr()
	hold.set(hold.name(attrEscrowHold) + " = " + hold.num(strconv.FormatInt(time.Now().Unix(), 10)))
	guard(hold)
	items := []types.TransactWriteItem{{Update: hold.update(s.table, b.pk, b.sk)}}
	for i := range n {
		e := newTxExpr()
		e.set(e.name(attrClosed) + " = " + e.value(&types.AttributeValueMemberBOOL{Value: true}))
		items = append(items, types.TransactWriteItem{Update: e.update(s.table, b.pk, b.shardSK(i))})
	}
	if err := s.write(ctx, items); err != nil {
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) && !retryable(err) {
			return fmt.Errorf("reset %s %s: %w", b.pk, b.sk, ErrConflict)
		}
		return fmt.Errorf("hold escrow of %s %s: %w", b.scope, b.id, err)
	}
	st, err := s.readEscrow(ctx, b, false)
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
		items = append(items, types.TransactWriteItem{Update: e.update(s.table, b.pk, sk)})
	}
	u, err := reset(held)
	if err != nil {
		return err
	}
	items[0] = types.TransactWriteItem{Update: u}
	if len(items) > MaxTxItems {
		return fmt.Errorf("reset %s: %d shards are over a transaction's limit", b.pk, len(items)-1)
	}
	err = s.write(ctx, items)
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && !retryable(err) {
		// Reopen refills at once rather than after the hold times out.
		_, _ = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: keyOf(b.pk, b.sk),
			UpdateExpression: aws.String("REMOVE #h"), ExpressionAttributeNames: map[string]string{"#h": attrEscrowHold},
		})
		return fmt.Errorf("reset %s %s: %w", b.pk, b.sk, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("reset %s %s: %w", b.pk, b.sk, err)
	}
	s.spent.forget(b.pk) // a process that serves calls too (the local server)
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
