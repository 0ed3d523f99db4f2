package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A call made with a virtual key holds its reservation on the key record itself, as an
// attribute r#<request id>, instead of a RES# item: reserving is then one conditional write of
// the key record when nothing else is charged, and the entry's presence is what makes a
// settlement exactly-once (the settle removes it under attribute_exists). The key record also
// carries the key's rpm/tpm counts of the current minute. Admin updates never write these
// attributes (they are not fields of Key); RotateKey carries them to the new hash.
const (
	attrHeld       = "r#"     // r#<request id>: a heldEntry
	attrHeldN      = "held_n" // how many entries the record holds
	attrRateMinute = "rl_min" // the unix minute rl_n and rl_tok count
	attrRateN      = "rl_n"   // requests of that minute (rpm_limit)
	attrRateTok    = "rl_tok" // tokens of that minute (tpm_limit), reserved then settled
	attrExpireAt   = "expire_at"
	attrExpireSh   = "expire_shard"
)

// maxHeld bounds the entries a key record holds (each ~150 B), so that the record, written
// twice per call, stays near 1 KB however many calls the key has in flight: a call that finds
// maxHeld entries holds its reservation in a RES# item, as calls without a key do.
const maxHeld = 4

// hotAttrs are the key record's attributes that calls write besides the counters.
var hotAttrs = []string{attrHeldN, attrRateMinute, attrRateN, attrRateTok}

// heldEntry is what a reservation held on a key record keeps, with short names so that a few
// of them keep the record under 1 KB: enough for the rotator to settle it when its call never
// does. The key itself is the target implied by the record.
type heldEntry struct {
	Model    string   `dynamodbav:"m"`
	Cost     float64  `dynamodbav:"c,omitempty"`
	Estimate float64  `dynamodbav:"e,omitempty"`
	ExpireAt int64    `dynamodbav:"x"`
	Key      keyFlags `dynamodbav:"k"`
	// Others are the other records charged (user, team, membership, customer), in short
	// names; entries written before they were shortened list them in Legacy.
	Others  []heldTarget `dynamodbav:"ot,omitempty"`
	Legacy  []target     `dynamodbav:"o,omitempty"`
	Proxy   bool         `dynamodbav:"p,omitempty"`
	Windows []string     `dynamodbav:"w,omitempty"` // RL# items that count tokens
	Tokens  []int64      `dynamodbav:"t,omitempty"`
	WinTTL  int64        `dynamodbav:"wt,omitempty"`
	// What the failure spend log of a call that never settles needs.
	CallType string   `dynamodbav:"ct,omitempty"`
	Tags     []string `dynamodbav:"tg,omitempty"`
	Start    int64    `dynamodbav:"s"` // unix milliseconds
	LogTTL   int64    `dynamodbav:"lt,omitempty"`
	User     string   `dynamodbav:"u,omitempty"`
	Team     string   `dynamodbav:"tm,omitempty"`
}

// keyFlags are the parts of the key record a reservation charged (see target).
type keyFlags struct {
	Budget      bool  `dynamodbav:"b,omitempty"`
	Windows     int   `dynamodbav:"w,omitempty"`
	ModelBudget bool  `dynamodbav:"mb,omitempty"`
	Lease       bool  `dynamodbav:"l,omitempty"`
	RateMinute  int64 `dynamodbav:"rm,omitempty"`
	RateTokens  int64 `dynamodbav:"rt,omitempty"`
}

// heldTarget is a target in a heldEntry, with short names: a key record holding a few
// entries of calls that charge a user and a team stays under 1 KB (a write unit).
type heldTarget struct {
	PK          string `dynamodbav:"p"`
	SK          string `dynamodbav:"s"`
	Scope       string `dynamodbav:"c"`
	Budget      bool   `dynamodbav:"b,omitempty"`
	Windows     int    `dynamodbav:"w,omitempty"`
	ModelBudget bool   `dynamodbav:"mb,omitempty"`
	ModelSpend  bool   `dynamodbav:"ms,omitempty"`
	Lease       bool   `dynamodbav:"l,omitempty"`
	Held        bool   `dynamodbav:"h,omitempty"`
}

// entry is the heldEntry of a reservation held on its key record (Targets[0] is the key).
func (r *resItem) entry() heldEntry {
	k := r.Targets[0]
	others := make([]heldTarget, 0, len(r.Targets)-1)
	for _, t := range r.Targets[1:] {
		others = append(others, heldTarget{
			PK: t.PK, SK: t.SK, Scope: t.Scope, Budget: t.Budget, Windows: t.Windows,
			ModelBudget: t.ModelBudget, ModelSpend: t.ModelSpend, Lease: t.Lease, Held: t.Held,
		})
	}
	return heldEntry{
		Model: r.Model, Cost: r.Cost, Estimate: r.Estimate, ExpireAt: r.ExpireAt,
		Key: keyFlags{
			Budget: k.Budget, Windows: k.Windows, ModelBudget: k.ModelBudget, Lease: k.Lease,
			RateMinute: k.RateMinute, RateTokens: k.RateTokens,
		},
		Others: others, Proxy: r.Proxy, Windows: r.Windows, Tokens: r.Tokens, WinTTL: r.WindowTTL,
		CallType: r.Log.CallType, Tags: r.Log.RequestTags, Start: r.Log.StartTime.UnixMilli(), LogTTL: r.Log.TTL,
		User: r.Log.User, Team: r.Log.TeamID,
	}
}

// reservation rebuilds the reservation of request id held on the record of key token, or
// on its escrow shard sk.
func (e *heldEntry) reservation(id, token, sk string) resItem {
	k := target{
		PK: PrefixKey + token, SK: sk, Scope: ScopeKey, ModelSpend: true,
		Budget: e.Key.Budget, Windows: e.Key.Windows, ModelBudget: e.Key.ModelBudget, Lease: e.Key.Lease,
		RateMinute: e.Key.RateMinute, RateTokens: e.Key.RateTokens,
	}
	targets := append([]target{k}, e.Legacy...)
	for _, o := range e.Others {
		targets = append(targets, target{
			PK: o.PK, SK: o.SK, Scope: o.Scope, Budget: o.Budget, Windows: o.Windows,
			ModelBudget: o.ModelBudget, ModelSpend: o.ModelSpend, Lease: o.Lease, Held: o.Held,
		})
	}
	start := time.UnixMilli(e.Start).UTC()
	return resItem{
		RequestID: id, Held: true, OnKey: true, Model: e.Model, Cost: e.Cost, Estimate: e.Estimate,
		Targets: targets, Proxy: e.Proxy,
		Windows: e.Windows, Tokens: e.Tokens, WindowTTL: e.WinTTL, ExpireAt: e.ExpireAt, Created: start,
		Log: SpendLog{
			RequestID: id, CallType: e.CallType, APIKey: token, Model: e.Model, ModelGroup: e.Model,
			User: e.User, TeamID: e.Team, RequestTags: e.Tags, CacheHit: "False", StartTime: start,
			Metadata: map[string]any{}, TTL: e.LogTTL,
		},
	}
}

// holdOnKey adds the reservation's entry to the key record's update: the entry (new, so a
// request id in flight cannot be reserved twice), the count of entries, and the record's place
// in the due_expire index if it has none (the rotator moves it on; see settleHeld).
func (p *plan) holdOnKey(e *txExpr) error {
	entry := p.res.entry()
	av, err := entry.av()
	if err != nil {
		return fmt.Errorf("marshal held reservation: %w", err)
	}
	r := e.name(attrHeld + p.res.RequestID)
	e.set(r + " = " + e.value(av))
	e.cond("attribute_not_exists(" + r + ")")
	n := e.name(attrHeldN)
	e.cond("(attribute_not_exists(" + n + ") OR " + n + " < " + e.num(strconv.Itoa(maxHeld)) + ")")
	e.add(n + " " + e.num("1"))
	x, sh := e.name(attrExpireAt), e.name(attrExpireSh)
	e.set(x + " = if_not_exists(" + x + ", " + e.num(strconv.FormatInt(p.res.ExpireAt, 10)) + ")")
	e.set(sh + " = if_not_exists(" + sh + ", " + e.value(&types.AttributeValueMemberS{Value: heldShard(p.accounts[0].pk)}) + ")")
	return nil
}

// heldShard is the due_expire shard of a key record holding reservations: the shards of
// key records are apart from those of RES# items and rotated-out hashes ("K0" …), so
// SettleStale and the rotator's cleanup each query only their own items (the index projects
// keys only, so it cannot filter on held_n).
func heldShard(pk string) string { return "K" + Shard(pk) }

// countKeyRate counts the call in the key record's minute under its rpm and tpm limits. In the
// minute the record already counts (or a later one, when another clock is ahead) it adds to
// the counts; in a new minute it starts them over. Which of the two applies is only known to
// the item, so the plan guesses and a failed condition whose item shows the other case makes
// the plan switch (see explainKeyRate).
func (p *plan) countKeyRate(e *txExpr) {
	w := p.keyRate
	m, rm, rn := e.num(strconv.FormatInt(p.minute, 10)), e.name(attrRateMinute), e.name(attrRateN)
	if p.newMinute {
		e.cond("(attribute_not_exists(" + rm + ") OR " + rm + " < " + m + ")")
		e.set(rm + " = " + m)
		e.set(rn + " = " + e.num("1"))
		e.set(e.name(attrRateTok) + " = " + e.num(strconv.FormatInt(w.hold, 10)))
		return
	}
	e.cond(rm + " >= " + m)
	e.add(rn + " " + e.num("1"))
	if w.rpm.set {
		e.cond("(attribute_not_exists(" + rn + ") OR " + rn + " < " + e.num(strconv.FormatInt(w.rpm.v, 10)) + ")")
	}
	if w.tpm.set {
		rt := e.name(attrRateTok)
		if w.hold > 0 {
			e.add(rt + " " + e.num(strconv.FormatInt(w.hold, 10)))
		}
		e.cond("(attribute_not_exists(" + rt + ") OR " + rt + " <= " + e.num(strconv.FormatInt(w.most, 10)) + ")")
	}
}

// spills reports whether a refusing key record holds maxHeld entries while the plan would
// add one: the plan then holds its reservation in a RES# item (for the next attempt).
func (p *plan) spills(it map[string]types.AttributeValue) bool {
	var h struct {
		N int64 `dynamodbav:"held_n"`
	}
	if !p.res.OnKey || attributevalue.UnmarshalMap(it, &h) != nil || h.N < maxHeld {
		return false
	}
	p.spill = true
	return true
}

// minuteMemo remembers the minute each key record counts, as this process last saw it. A
// reservation in a later minute starts the count over (no failed first attempt for a key
// called less than once a minute); in the same minute it adds to it. A wrong guess (another
// process started the minute) costs one failed conditional write. It forgets everything when
// it holds maxMemo keys, so it stays small.
type minuteMemo struct {
	mu sync.Mutex
	m  map[string]int64
}

const maxMemo = 100_000

func (m *minuteMemo) newMinute(token string, minute int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[token] < minute
}

func (m *minuteMemo) saw(token string, minute int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxMemo {
		m.m = map[string]int64{}
	}
	m.m[token] = max(m.m[token], minute)
}

// keyRateItem is the key record's rate counts.
type keyRateItem struct {
	Minute int64 `dynamodbav:"rl_min"`
	N      int64 `dynamodbav:"rl_n"`
	Tok    int64 `dynamodbav:"rl_tok"`
}

// explainKeyRate reads the key record's counts from a refusing item: a refusal, or switch
// true when the plan guessed the wrong minute case (it is switched for the next attempt).
func (p *plan) explainKeyRate(it map[string]types.AttributeValue) (ref *Refusal, switched bool) {
	var rl keyRateItem
	_ = attributevalue.UnmarshalMap(it, &rl) // absent counts read as zero
	if counting := rl.Minute >= p.minute; counting == p.newMinute {
		p.newMinute = !counting
		return nil, true
	}
	if p.newMinute {
		return nil, false
	}
	return p.keyRate.refusal(p.minute, rl.N, rl.Tok), false
}

// releaseOnKey adds to a settlement's update of the key record the removal of the held
// entry, under the condition that it is still there: the call and the rotator never both
// apply it.
func releaseOnKey(e *txExpr, id string) {
	r := e.name(attrHeld + id)
	e.cond("attribute_exists(" + r + ")")
	e.remove(r)
	e.add(e.name(attrHeldN) + " " + e.num("-1"))
}

// settledOnKey reports whether a key record that refused a settlement no longer holds its
// entry: it is a live record (not a rotated-out pointer) without r#<id>.
func settledOnKey(it map[string]types.AttributeValue, id string) bool {
	_, ptr := it["active_token"]
	_, held := it[attrHeld+id]
	return len(it) > 0 && !ptr && !held
}

// putLogFirst writes a settlement's spend log before the counters are settled in a
// single-item write: the log is put only if there is none, and the cost the settlement then
// charges is the one the log records. So when the call and the rotator race, or a settle is
// retried after a lost answer, whichever log was written first decides the charge, once (the
// counter update is exactly-once by itself), and a crash between the two writes leaves a log
// that the rotator charges when the entry expires.
func (s *Store) putLogFirst(ctx context.Context, log *SpendLog) (float64, error) {
	put, err := spendLogPut(s.table, log)
	if err != nil {
		return 0, err
	}
	cost := log.Spend
	err = retryWrite(ctx, func() error {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
		})
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return err
		}
		prev, err := s.GetSpendLog(ctx, log.RequestID)
		if err != nil {
			return err
		}
		cost = prev.Spend
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("spend log %s: %w", log.RequestID, err)
	}
	return cost, nil
}

// retryWrite runs write until it succeeds, fails for good, or ctx ends (with backoff).
func retryWrite(ctx context.Context, write func() error) error {
	for attempt := 0; ; attempt++ {
		err := write()
		if err == nil || !retryable(err) {
			return err
		}
		if werr := backoff(ctx, attempt); werr != nil {
			return fmt.Errorf("gave up after %d attempts: %w", attempt+1, err)
		}
	}
}

// soleKey reports whether a reservation charged its key record and nothing else, so that its
// settlement is a single-item write after the spend log.
func (r *resItem) soleKey() bool {
	return r.OnKey && len(r.Targets) == 1 && r.Targets[0].Scope == ScopeKey && !r.Proxy && len(r.Windows) == 0
}

// settleHeld settles the expired entries of a key record or escrow shard (at most limit),
// as SettleStale settles RES# items, then moves the item's due time to its next entry's
// expiry, or out of the index when it holds none (only if none was added meanwhile; else it
// stays due and the next run looks again).
func (s *Store) settleHeld(ctx context.Context, it item, now time.Time, limit int) (int, error) {
	tok, ok := it["token"].(*types.AttributeValueMemberS)
	sk, _ := it["sk"].(*types.AttributeValueMemberS)
	if !ok || sk == nil {
		return 0, errors.New("key record without token")
	}
	settled, next := 0, int64(0)
	err := eachHeld(it, func(id string, e *heldEntry) error {
		if e.ExpireAt > now.Unix() || settled >= limit {
			if next == 0 || e.ExpireAt < next {
				next = max(e.ExpireAt, now.Unix())
			}
			return nil
		}
		res := e.reservation(id, tok.Value, sk.Value)
		n, err := s.settleExpired(ctx, &res, now)
		settled += n
		return err
	})
	if err != nil {
		return settled, err
	}
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: keyOf(PrefixKey+tok.Value, sk.Value),
		ExpressionAttributeNames: map[string]string{"#x": attrExpireAt, "#n": attrHeldN},
	}
	if next > 0 {
		in.UpdateExpression = aws.String("SET #x = :x")
		in.ConditionExpression = aws.String("attribute_exists(#n)")
		in.ExpressionAttributeValues = item{":x": &types.AttributeValueMemberN{Value: strconv.FormatInt(next, 10)}}
	} else {
		in.UpdateExpression = aws.String("REMOVE #x, #s")
		in.ConditionExpression = aws.String("#n = :0")
		in.ExpressionAttributeNames["#s"] = attrExpireSh
		in.ExpressionAttributeValues = item{":0": &types.AttributeValueMemberN{Value: "0"}}
	}
	if _, err := s.db.UpdateItem(ctx, in); err != nil && !isConditionFailed(err) {
		return settled, fmt.Errorf("reschedule held reservations of key %s: %w", tok.Value, err)
	}
	return settled, nil
}

// eachHeld calls fn with each reservation entry of a key record.
func eachHeld(it item, fn func(id string, e *heldEntry) error) error {
	for name, av := range it {
		id, ok := strings.CutPrefix(name, attrHeld)
		if !ok {
			continue
		}
		var e heldEntry
		if err := attributevalue.Unmarshal(av, &e); err != nil {
			return fmt.Errorf("decode held reservation %s: %w", id, err)
		}
		if err := fn(id, &e); err != nil {
			return err
		}
	}
	return nil
}

// carryHeld copies what calls in flight keep on a key record (held entries, their count and
// due time, the minute's rate counts) from raw to the record m that replaces it.
func carryHeld(raw, m item) {
	for a, v := range raw {
		if strings.HasPrefix(a, attrHeld) {
			m[a] = v
		}
	}
	for _, a := range hotAttrs {
		if v, ok := raw[a]; ok {
			m[a] = v
		}
	}
}

// handOver adds to a key's deletion a RES# item for each reservation the record holds that
// charged other records too (a user, team, membership, proxy budget or rate window): the
// record goes, but those calls must still settle once, or be settled by the rotator. It
// returns the deletion's condition: those entries are still held (ErrConflict otherwise, and
// the caller reads again). A call that reserves between the read and the deletion is the
// one case left uncovered. raw is the key record or escrow shard as read (nil: none).
func (t *Tx) handOver(raw item, token string) (string, map[string]string, error) {
	var conds []string
	names := map[string]string{}
	err := eachHeld(raw, func(id string, e *heldEntry) error {
		if len(e.Others)+len(e.Legacy) == 0 && !e.Proxy && len(e.Windows) == 0 {
			return nil // it charged only the key: nothing left to settle
		}
		res := e.reservation(id, token, SortKey)
		res.Targets, res.OnKey = res.Targets[1:], false
		pk := PrefixReservation + id
		res.ExpireShard, res.TTL = Shard(pk), res.ExpireAt+int64(reservationGrace/time.Second)
		m, err := attributevalue.MarshalMap(res)
		if err != nil {
			return fmt.Errorf("marshal reservation %s: %w", id, err)
		}
		for k, v := range keyOf(pk, SortReservation) {
			m[k] = v
		}
		t.add(types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(t.s.table), Item: m, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}}, ErrConflict)
		n := "#h" + strconv.Itoa(len(names))
		names[n] = attrHeld + id
		conds = append(conds, "attribute_exists("+n+")")
		return nil
	})
	if err != nil || len(conds) == 0 {
		return "", nil, err
	}
	return strings.Join(conds, " AND "), names, nil
}
