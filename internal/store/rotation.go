package store

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// What the rotator reads and writes: the due_reset, due_rotate and due_expire indexes, budget
// resets, revoked key hashes and Secrets Manager deliveries in progress.

// PrefixDelivery is the partition key prefix of a delivery in progress (DELIVERY#<new token>,
// sk DELIVERY): a rotation whose new value is staged in Secrets Manager but not yet current.
const (
	PrefixDelivery = "DELIVERY#"
	SortDelivery   = "DELIVERY"
)

// Ref is the primary key of an item found in a due index.
type Ref struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
}

// Token returns the key hash of a KEY# or DELIVERY# reference.
func (r Ref) Token() string {
	if t, ok := strings.CutPrefix(r.PK, PrefixKey); ok {
		return t
	}
	return strings.TrimPrefix(r.PK, PrefixDelivery)
}

// DueResets lists up to limit records (keys, users, teams, memberships, the proxy budget) with
// a budget whose reset time is at or before now, oldest first in each shard. more reports that
// the limit left some for a later call.
func (s *Store) DueResets(ctx context.Context, now time.Time, limit int) (refs []Ref, more bool, err error) {
	return s.due(ctx, schema.IndexDueReset, now, limit, "", nil)
}

// DueRotations lists up to limit auto-rotating keys whose key_rotation_at is at or before now.
func (s *Store) DueRotations(ctx context.Context, now time.Time, limit int) (refs []Ref, more bool, err error) {
	return s.due(ctx, schema.IndexDueRotate, now, limit, "", nil)
}

// DueExpired lists up to limit rotated-out key hashes past their revoke time and deliveries
// due for a retry. (Reservations and leases share the due_expire index; the limits package
// settles those.)
func (s *Store) DueExpired(ctx context.Context, now time.Time, limit int) (refs []Ref, more bool, err error) {
	return s.due(ctx, schema.IndexDueExpire, now, limit, "begins_with(pk, :kp) OR begins_with(pk, :dp)", item{
		":kp": &types.AttributeValueMemberS{Value: PrefixKey},
		":dp": &types.AttributeValueMemberS{Value: PrefixDelivery},
	})
}

// maxDuePages bounds the pages read per shard in one call, so a call stays bounded even when a
// filter drops most items.
const maxDuePages = 10

// due queries the shards of a due index for up to limit items whose time is at or before
// now. It starts at a random shard, so a backlog in one shard cannot starve the others.
func (s *Store) due(ctx context.Context, index string, now time.Time, limit int, filter string, values item) ([]Ref, bool, error) {
	shardAttr, atAttr, err := indexKeys(index)
	if err != nil {
		return nil, false, err
	}
	var refs []Ref
	first := rand.IntN(Shards)
	for i := range Shards {
		shard := (first + i) % Shards
		if len(refs) >= limit {
			return refs, true, nil
		}
		vals := item{
			":s":   &types.AttributeValueMemberS{Value: strconv.Itoa(shard)},
			":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
		}
		for k, v := range values {
			vals[k] = v
		}
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			IndexName:                 aws.String(index),
			KeyConditionExpression:    aws.String("#s = :s AND #at <= :now"),
			ExpressionAttributeNames:  map[string]string{"#s": shardAttr, "#at": atAttr},
			ExpressionAttributeValues: vals,
		}
		if filter != "" {
			in.FilterExpression = aws.String(filter)
		}
		for page := 0; ; page++ {
			in.Limit = aws.Int32(int32(limit - len(refs)))
			out, err := s.db.Query(ctx, in)
			if err != nil {
				return nil, false, fmt.Errorf("query %s shard %d: %w", index, shard, err)
			}
			var rs []Ref
			if err := attributevalue.UnmarshalListOfMaps(out.Items, &rs); err != nil {
				return nil, false, fmt.Errorf("decode %s: %w", index, err)
			}
			refs = append(refs, rs...)
			if out.LastEvaluatedKey == nil {
				break
			}
			if len(refs) >= limit || page+1 >= maxDuePages {
				return refs, true, nil
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return refs, false, nil
}

// indexKeys returns the partition and sort key attributes of a due index.
func indexKeys(name string) (shard, at string, err error) {
	ix, ok := schema.State.Index(name)
	if !ok {
		return "", "", fmt.Errorf("no index %s in the schema", name)
	}
	return ix.PartitionKey.Name, ix.SortKey.Name, nil
}

// BudgetRecord is the budget part of a record in the due_reset index: its own budget, its
// budget_limits windows and its model_max_budget entries, and the index time.
type BudgetRecord struct {
	Ref
	Budget
	BudgetLimits   []BudgetWindow         `dynamodbav:"budget_limits,omitempty"`
	ModelMaxBudget map[string]ModelBudget `dynamodbav:"model_max_budget,omitempty"`
	ResetAt        int64                  `dynamodbav:"reset_at,omitempty"`

	raw item // as read: conditions compare the stored values themselves
}

// GetBudgetRecord reads the budgets of a record with a strongly consistent read.
func (s *Store) GetBudgetRecord(ctx context.Context, ref Ref) (*BudgetRecord, error) {
	res, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyOf(ref.PK, ref.SK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", ref.PK, ref.SK, err)
	}
	if len(res.Item) == 0 {
		return nil, fmt.Errorf("%s %s: %w", ref.PK, ref.SK, ErrNotFound)
	}
	r := &BudgetRecord{raw: res.Item}
	if err := attributevalue.UnmarshalMap(res.Item, r); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", ref.PK, ref.SK, err)
	}
	return r, nil
}

// BudgetReset says which budgets of a record to reset, and when each resets next (nil: no
// further reset).
type BudgetReset struct {
	Budget  bool
	Next    *time.Time            // the record's next budget_reset_at, when Budget is set
	Windows map[int]*time.Time    // budget_limits index → its next reset_at
	Models  map[string]*time.Time // model_max_budget model → its next reset_at
}

// Empty reports whether r resets nothing.
func (r BudgetReset) Empty() bool { return !r.Budget && len(r.Windows) == 0 && len(r.Models) == 0 }

// ResetBudgets resets the budgets r names on the record as read, in one conditional write:
// each gets spend = reserved (what reservations still in flight hold; 0 when none) and
// remaining = max_budget - reserved, and its next reset time; the record's due_reset time
// moves to the earliest reset left. The write requires every reset time it replaces to be the
// one read, so when two runs reset the same record only one succeeds: the other gets
// ErrConflict. Spend of calls settled after the reset counts in the new period, so spend never
// goes negative and remaining = max_budget - spend holds throughout.
func (s *Store) ResetBudgets(ctx context.Context, rec *BudgetRecord, r BudgetReset) error {
	if rec.raw["reset_at"] == nil {
		return fmt.Errorf("reset %s %s: no budget of the record resets: %w", rec.PK, rec.SK, ErrConflict)
	}
	b, isBank := bankOf(rec.PK, rec.SK)
	if n := int(ratAttr(rec.raw, "escrow_shards").Num().Int64()); n > 1 && r.Budget && rec.MaxBudget != nil && isBank {
		guard := func(e *txExpr) { e.cond(e.name("reset_at") + " = " + e.value(rec.raw["reset_at"])) }
		return s.resetEscrow(ctx, b, n, guard, func(held *big.Rat) (*types.Update, error) {
			in, err := resetUpdate(s.table, rec, r, held)
			if err != nil {
				return nil, err
			}
			return &types.Update{
				TableName: in.TableName, Key: in.Key, UpdateExpression: in.UpdateExpression,
				ConditionExpression: in.ConditionExpression, ExpressionAttributeNames: in.ExpressionAttributeNames,
				ExpressionAttributeValues: in.ExpressionAttributeValues,
			}, nil
		})
	}
	in, err := resetUpdate(s.table, rec, r, nil)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, in)
	if isConditionFailed(err) {
		return fmt.Errorf("reset %s %s: %w", rec.PK, rec.SK, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("reset %s %s: %w", rec.PK, rec.SK, err)
	}
	return nil
}

// resetUpdate is the write of ResetBudgets. held, for a team split into escrow shards, is
// what the calls in flight on its shards reserved: the team record's budget then restarts
// from its own reserved plus held (which the shards keep, see resetEscrow), under the
// condition that its own reserved is still the one read, and the reset's hold on refills
// is lifted.
func resetUpdate(table string, rec *BudgetRecord, r BudgetReset, held *big.Rat) (*dynamodb.UpdateItemInput, error) {
	e := newExpr()
	e.cond("%s = %s", e.name("reset_at"), e.value(rec.raw["reset_at"]))

	// resetPart resets the budget at path (a list of names; an int is a list index).
	resetPart := func(path string, limitAttr string, at types.AttributeValue, next *time.Time) error {
		if at == nil {
			return fmt.Errorf("reset %s %s: %s has no reset time", rec.PK, rec.SK, path)
		}
		p := func(attr string) string { return path + e.name(attr) }
		e.cond("%s = %s", p(resetAttrOf(path)), e.value(at))
		var reserved string
		if path == "" && held != nil {
			own := ratAttr(rec.raw, "reserved")
			e.cond("(attribute_not_exists(%s) OR %s = %s)", p("reserved"), p("reserved"), e.value(&types.AttributeValueMemberN{Value: ratString(own)}))
			reserved = e.value(&types.AttributeValueMemberN{Value: ratString(new(big.Rat).Add(own, held))})
			e.remove(e.name(attrEscrowHold))
		} else {
			reserved = "if_not_exists(" + p("reserved") + ", " + e.value(&types.AttributeValueMemberN{Value: "0"}) + ")"
		}
		e.set("%s = %s", p("spend"), reserved)
		if limitAttr != "" {
			e.set("%s = %s - %s", p("remaining"), p(limitAttr), reserved)
		}
		if next == nil {
			e.remove(p(resetAttrOf(path)))
			return nil
		}
		v, err := attributevalue.Marshal(next.UTC())
		if err != nil {
			return fmt.Errorf("marshal reset time: %w", err)
		}
		e.set("%s = %s", p(resetAttrOf(path)), e.value(v))
		return nil
	}

	var left []*time.Time // reset times after the write
	if r.Budget {
		limit := ""
		if rec.MaxBudget != nil {
			limit = "max_budget"
			e.cond("attribute_exists(%s)", e.name("max_budget"))
		} else {
			e.cond("attribute_not_exists(%s)", e.name("max_budget"))
		}
		if err := resetPart("", limit, rec.raw["budget_reset_at"], r.Next); err != nil {
			return nil, err
		}
		left = append(left, r.Next)
	} else {
		left = append(left, rec.BudgetResetAt)
	}
	for i, w := range rec.BudgetLimits {
		next, ok := r.Windows[i]
		if !ok {
			left = append(left, w.ResetAt)
			continue
		}
		path := e.name("budget_limits") + "[" + strconv.Itoa(i) + "]."
		if err := resetPart(path, "max_budget", nested(rec.raw, "budget_limits", i, "reset_at"), next); err != nil {
			return nil, err
		}
		left = append(left, next)
	}
	for m, mb := range rec.ModelMaxBudget {
		next, ok := r.Models[m]
		if !ok {
			left = append(left, mb.ResetAt)
			continue
		}
		path := e.name("model_max_budget") + "." + e.name(m) + "."
		if err := resetPart(path, "budget_limit", nestedMap(rec.raw, "model_max_budget", m, "reset_at"), next); err != nil {
			return nil, err
		}
		left = append(left, next)
	}
	if at := earliest(left...); at != 0 {
		e.set("%s = %s", e.name("reset_at"), e.value(&types.AttributeValueMemberN{Value: strconv.FormatInt(at, 10)}))
	} else {
		e.remove(e.name("reset_at"))
		e.remove(e.name("reset_shard"))
	}
	return e.update(table, keyOf(rec.PK, rec.SK)), nil
}

// Defer moves an item that is still due in a due index (IndexDueReset, IndexDueRotate) to
// the back of it until until, changing nothing else: the budgets, key_rotation_at and
// what /key/info shows stay as they are. The rotator defers an item whose reset or rotation
// failed, so an item that keeps failing cannot hold the head of the queue and stop the work
// of every other item.
func (s *Store) Defer(ctx context.Context, index string, ref Ref, now, until time.Time) error {
	_, atAttr, err := indexKeys(index)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      keyOf(ref.PK, ref.SK),
		UpdateExpression:         aws.String("SET #at = :until"),
		ConditionExpression:      aws.String("#at <= :now"),
		ExpressionAttributeNames: map[string]string{"#at": atAttr},
		ExpressionAttributeValues: item{
			":until": &types.AttributeValueMemberN{Value: strconv.FormatInt(until.Unix(), 10)},
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
		},
	})
	if err != nil && !isConditionFailed(err) { // no longer due: nothing to defer
		return fmt.Errorf("defer %s of %s %s: %w", index, ref.PK, ref.SK, err)
	}
	return nil
}

// resetAttrOf is the reset time attribute of the budget at path: budget_reset_at on the record
// itself, reset_at on windows and model budgets.
func resetAttrOf(path string) string {
	if path == "" {
		return "budget_reset_at"
	}
	return "reset_at"
}

// nested returns raw[list][i][attr], or nil.
func nested(raw item, list string, i int, attr string) types.AttributeValue {
	l, ok := raw[list].(*types.AttributeValueMemberL)
	if !ok || i >= len(l.Value) {
		return nil
	}
	m, ok := l.Value[i].(*types.AttributeValueMemberM)
	if !ok {
		return nil
	}
	return m.Value[attr]
}

// nestedMap returns raw[mapAttr][key][attr], or nil.
func nestedMap(raw item, mapAttr, key, attr string) types.AttributeValue {
	outer, ok := raw[mapAttr].(*types.AttributeValueMemberM)
	if !ok {
		return nil
	}
	inner, ok := outer.Value[key].(*types.AttributeValueMemberM)
	if !ok {
		return nil
	}
	return inner.Value[attr]
}

// ScheduleProxyBudget gives the proxy-wide budget (litellm_settings.max_budget) the reset
// schedule of litellm_settings.budget_duration: when the item has no schedule or one for
// another duration, budget_reset_at becomes next and the item joins the due_reset index, so
// ResetBudgets resets it like any other record. An empty duration removes the schedule.
// Nothing happens before the item exists (no call has charged the proxy budget yet).
func (s *Store) ScheduleProxyBudget(ctx context.Context, dur string, next time.Time) error {
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      keyOf(ProxyBudgetPK, SortProxyBudget),
		ExpressionAttributeNames: map[string]string{"#d": "budget_duration", "#b": "budget_reset_at", "#ra": "reset_at", "#rs": "reset_shard", "#mb": "max_budget"},
	}
	if dur == "" {
		in.UpdateExpression = aws.String("REMOVE #d, #b, #ra, #rs")
		in.ConditionExpression = aws.String("attribute_exists(#mb) AND attribute_exists(#d)")
	} else {
		b, err := attributevalue.Marshal(next.UTC())
		if err != nil {
			return fmt.Errorf("marshal reset time: %w", err)
		}
		in.UpdateExpression = aws.String("SET #d = :d, #b = :b, #ra = :ra, #rs = :rs")
		in.ConditionExpression = aws.String("attribute_exists(#mb) AND (attribute_not_exists(#d) OR #d <> :d)")
		in.ExpressionAttributeValues = item{
			":d":  &types.AttributeValueMemberS{Value: dur},
			":b":  b,
			":ra": &types.AttributeValueMemberN{Value: strconv.FormatInt(next.Unix(), 10)},
			":rs": &types.AttributeValueMemberS{Value: Shard(ProxyBudgetPK)},
		}
	}
	if _, err := s.db.UpdateItem(ctx, in); err != nil && !isConditionFailed(err) {
		return fmt.Errorf("schedule proxy budget reset: %w", err)
	}
	return nil
}

// errKept fails the deletion of a rotated-out hash that must stay.
var errKept = errors.New("rotated-out key kept")

// DeleteRevoked deletes a rotated-out key hash whose revoke time has passed; it reports false
// when the item is no longer such a hash (another run deleted it first, for instance) or
// when the delivery of its successor to Secrets Manager is still pending: until then
// AWSCURRENT holds the old value, and deleting its hash would lock the key's users out.
func (s *Store) DeleteRevoked(ctx context.Context, token string, now time.Time) (bool, error) {
	var p pointerItem
	err := s.get(ctx, PrefixKey+token, SortKey, &p)
	if errors.Is(err, ErrNotFound) || err == nil && p.ActiveToken == "" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete revoked key %s: %w", token, err)
	}
	tx := s.Tx()
	tx.del(PrefixKey+token, SortKey, "active_token = :a AND expire_at <= :now", item{
		":a":   &types.AttributeValueMemberS{Value: p.ActiveToken},
		":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
	}, errKept)
	// One transaction, so a delivery recorded after the check cannot slip in between.
	tx.add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:           aws.String(s.table),
		Key:                 keyOf(PrefixDelivery+p.ActiveToken, SortDelivery),
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}}, errKept)
	err = tx.Commit(ctx)
	if errors.Is(err, errKept) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete revoked key %s: %w", token, err)
	}
	return true, nil
}

// RevokePointerAt brings the revoke time of the rotated-out hash oldToken, pointing to
// newToken, forward to at: it deletes the hash when at is not after now, and never extends a
// revoke time. Nothing happens when the hash is gone or points elsewhere.
func (s *Store) RevokePointerAt(ctx context.Context, oldToken, newToken string, at, now time.Time) error {
	if at.After(now) {
		return s.moveRevoke(ctx, oldToken, newToken, at, ">")
	}
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       keyOf(PrefixKey+oldToken, SortKey),
		ConditionExpression:       aws.String("active_token = :a"),
		ExpressionAttributeValues: item{":a": &types.AttributeValueMemberS{Value: newToken}},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("revoke rotated-out key %s: %w", oldToken, err)
	}
	return nil
}

// ExtendPointer pushes the revoke time of the rotated-out hash oldToken, pointing to
// newToken, back to at; it never brings a revoke time forward. A delivery that keeps failing
// calls it on every retry, so the old value, still the one in Secrets Manager, keeps working.
// Nothing happens when the hash is gone or points elsewhere.
func (s *Store) ExtendPointer(ctx context.Context, oldToken, newToken string, at time.Time) error {
	return s.moveRevoke(ctx, oldToken, newToken, at, "<")
}

// moveRevoke sets the revoke time (revoke_at, its due_expire time and its TTL) of the
// rotated-out hash oldToken to at, if it points to newToken and its current expire_at
// compares to at's as cmp says.
func (s *Store) moveRevoke(ctx context.Context, oldToken, newToken string, at time.Time, cmp string) error {
	rv, err := attributevalue.Marshal(at.UTC())
	if err != nil {
		return fmt.Errorf("marshal revoke time: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      keyOf(PrefixKey+oldToken, SortKey),
		UpdateExpression:         aws.String("SET revoke_at = :r, expire_at = :e, #ttl = :t"),
		ConditionExpression:      aws.String("active_token = :a AND expire_at " + cmp + " :e"),
		ExpressionAttributeNames: map[string]string{"#ttl": schema.AttrTTL},
		ExpressionAttributeValues: item{
			":a": &types.AttributeValueMemberS{Value: newToken},
			":r": rv,
			":e": &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Unix(), 10)},
			":t": &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Add(time.Hour).Unix(), 10)},
		},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("set revoke time of rotated-out key %s: %w", oldToken, err)
	}
	return nil
}

// Delivery is a rotation whose new value is staged in Secrets Manager but not yet confirmed
// current there (pk DELIVERY#<new token>). It is written before the rotation commits and
// deleted once the value is current and the old hash's revoke time is what was asked; until
// then it sits in the due_expire index from RetryAt on, for a later run to finish.
type Delivery struct {
	NewToken string    `dynamodbav:"token"`
	OldToken string    `dynamodbav:"old_token"`
	KeyAlias string    `dynamodbav:"key_alias"`
	Version  string    `dynamodbav:"version_id"`
	RevokeAt time.Time `dynamodbav:"revoke_at"` // when the old hash must stop working
	// Grace is the grace period asked for: a delivery finished late keeps the old hash this
	// long after the new value became current, for readers of the secret to pick it up.
	Grace   time.Duration `dynamodbav:"grace_ns,omitempty"`
	RetryAt time.Time     `dynamodbav:"retry_at"`
}

// deliveryTTL removes a delivery nobody finished (Secrets Manager down for a week).
const deliveryTTL = 7 * 24 * time.Hour

// PutDelivery records a delivery in progress.
func (s *Store) PutDelivery(ctx context.Context, d *Delivery) error {
	m, err := marshal(d)
	if err != nil {
		return err
	}
	pk := PrefixDelivery + d.NewToken
	for k, v := range keyOf(pk, SortDelivery) {
		m[k] = v
	}
	m["expire_shard"] = &types.AttributeValueMemberS{Value: Shard(pk)}
	m["expire_at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.RetryAt.Unix(), 10)}
	m[schema.AttrTTL] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.RetryAt.Add(deliveryTTL).Unix(), 10)}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: m}); err != nil {
		return fmt.Errorf("record delivery of key %s: %w", d.NewToken, err)
	}
	return nil
}

// GetDelivery reads the delivery of the key with hash newToken; ErrNotFound if there is none.
func (s *Store) GetDelivery(ctx context.Context, newToken string) (*Delivery, error) {
	var d Delivery
	if err := s.get(ctx, PrefixDelivery+newToken, SortDelivery, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DeleteDelivery removes the delivery of the key with hash newToken (finished or abandoned).
func (s *Store) DeleteDelivery(ctx context.Context, newToken string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: keyOf(PrefixDelivery+newToken, SortDelivery),
	})
	if err != nil {
		return fmt.Errorf("delete delivery of key %s: %w", newToken, err)
	}
	return nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// expr builds an update expression with placeholders for every name and value.
type expr struct {
	placeholders
	sets, removes, conds []string
}

func newExpr() *expr { return &expr{placeholders: newPlaceholders()} }

func (e *expr) set(format string, args ...any) { e.sets = append(e.sets, fmt.Sprintf(format, args...)) }
func (e *expr) remove(path string)             { e.removes = append(e.removes, path) }
func (e *expr) cond(format string, args ...any) {
	e.conds = append(e.conds, fmt.Sprintf(format, args...))
}

func (e *expr) update(table string, key item) *dynamodb.UpdateItemInput {
	var parts []string
	if len(e.sets) > 0 {
		parts = append(parts, "SET "+strings.Join(e.sets, ", "))
	}
	if len(e.removes) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(e.removes, ", "))
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(table),
		Key:                      key,
		UpdateExpression:         aws.String(strings.Join(parts, " ")),
		ExpressionAttributeNames: e.names,
	}
	if len(e.conds) > 0 {
		in.ConditionExpression = aws.String(strings.Join(e.conds, " AND "))
	}
	if len(e.values) > 0 {
		in.ExpressionAttributeValues = e.values
	}
	return in
}
