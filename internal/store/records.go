package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// Errors of record writes. Callers test them with errors.Is.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a record with that id (or a unique alias or email) already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict: the record changed since it was read; read it again and retry.
	ErrConflict = errors.New("changed concurrently")
	// ErrTooLarge: a transaction has more writes than DynamoDB allows; nothing was written.
	// The error is a *TooLargeError, which says how many.
	ErrTooLarge = errors.New("too many writes for one transaction")
)

// TooLargeError is a transaction refused before any write because it has more than
// MaxTxItems writes.
type TooLargeError struct{ Writes int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("transaction of %d writes is over DynamoDB's limit of %d", e.Writes, MaxTxItems)
}

// Is makes errors.Is(err, ErrTooLarge) hold.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// MaxTxItems is DynamoDB's limit on the items of one TransactWriteItems.
const MaxTxItems = 100

// Shards spreads the sparse due_* indexes over this many partitions; the rotator queries
// each shard ("0" … "Shards-1") with reset_at / rotate_at / expire_at <= now. Every call
// writes two due_expire entries (its reservation's, added and removed): at 2,000 calls/s,
// 250 WCU/s per shard, a quarter of an index partition's 1,000 (with 4 shards, a call rate
// of 2,000/s would have asked each for its whole limit). Items written under fewer shards
// keep their shard, which the rotator still queries.
const Shards = 16

// Shard returns the shard of the item whose partition key is pk.
func Shard(pk string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(pk))
	return strconv.Itoa(int(h.Sum32() % Shards))
}

// Sort-key prefixes of the kind, user and team indexes (gsi_sort), so one index can hold
// several kinds of items (spend logs share by_user and by_team).
const (
	SortPrefixKey  = "KEY#"
	SortPrefixUser = "USER#"
	SortPrefixTeam = "TEAM#"
)

// gsiSort orders records by creation time: "<prefix><RFC 3339 UTC, fixed width>#<id>".
func gsiSort(prefix string, created time.Time, id string) string {
	return prefix + created.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + id
}

type item = map[string]types.AttributeValue

// placeholders hands out the #name and :value placeholders of one expression; a name used
// twice gets the same placeholder.
type placeholders struct {
	names  map[string]string // placeholder → attribute name (or map key)
	byName map[string]string // attribute name → placeholder
	values item
}

// placeholderHint sizes the maps of an expression: a call's reservation names about 20
// attributes and 16 values, its settlement about half, and maps grown one step at a time
// cost the full path more than the sized ones.
const placeholderHint = 16

func newPlaceholders() placeholders {
	return placeholders{
		names:  make(map[string]string, placeholderHint),
		byName: make(map[string]string, placeholderHint),
		values: make(item, placeholderHint),
	}
}

// nameTags and valueTags are the first placeholders, made once rather than for every
// expression.
var nameTags, valueTags = placeholderTags("#n"), placeholderTags(":v")

func placeholderTags(prefix string) []string {
	t := make([]string, 64)
	for i := range t {
		t[i] = prefix + strconv.Itoa(i)
	}
	return t
}

// placeholderTag is the i-th placeholder of tags (whose prefix is prefix).
func placeholderTag(tags []string, prefix string, i int) string {
	if i < len(tags) {
		return tags[i]
	}
	return prefix + strconv.Itoa(i)
}

// name returns the placeholder of an attribute name (or map key).
func (e *placeholders) name(attr string) string {
	if p, ok := e.byName[attr]; ok {
		return p
	}
	p := placeholderTag(nameTags, "#n", len(e.names))
	e.names[p], e.byName[attr] = attr, p
	return p
}

// value returns a new placeholder for v.
func (e *placeholders) value(v types.AttributeValue) string {
	p := placeholderTag(valueTags, ":v", len(e.values))
	e.values[p] = v
	return p
}

// keyOf is the primary key of an item.
func keyOf(pk, sk string) item {
	return item{
		schema.AttrPK: &types.AttributeValueMemberS{Value: pk},
		schema.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// marshal encodes a record; NULL attributes (nil pointers) are left out, so absent and null
// are the same thing in the table.
func marshal(v any) (item, error) {
	m, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	for k, av := range m {
		if _, ok := av.(*types.AttributeValueMemberNULL); ok {
			delete(m, k)
		}
	}
	return m, nil
}

// counters are attributes that reservations and settlements change concurrently; admin
// updates never write them directly (max_budget changes recompute remaining from spend in
// the same expression).
var counters = map[string]bool{"spend": true, "remaining": true, "reserved": true, "inflight": true, "model_spend": true}

// Tx collects the writes of one TransactWriteItems: all of them happen or none.
type Tx struct {
	s     *Store
	items []types.TransactWriteItem
	// fails says what a failed condition of each item means.
	fails []error
}

// Tx starts a transaction.
func (s *Store) Tx() *Tx { return &Tx{s: s} }

// Len is the number of writes collected.
func (t *Tx) Len() int { return len(t.items) }

func (t *Tx) add(w types.TransactWriteItem, onFail error) {
	t.items = append(t.items, w)
	t.fails = append(t.fails, onFail)
}

// put adds a Put of a new item (the item must not exist: onFail otherwise).
func (t *Tx) put(pk, sk string, rec any, extra item, onFail error) error {
	m, err := marshal(rec)
	if err != nil {
		return err
	}
	for k, v := range keyOf(pk, sk) {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	t.add(types.TransactWriteItem{Put: &types.Put{
		TableName:           aws.String(t.s.table),
		Item:                m,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}}, onFail)
	return nil
}

// del adds a Delete; cond (may be empty) guards it.
func (t *Tx) del(pk, sk, cond string, values item, onFail error) {
	d := &types.Delete{TableName: aws.String(t.s.table), Key: keyOf(pk, sk)}
	if cond != "" {
		d.ConditionExpression = aws.String(cond)
		if len(values) > 0 {
			d.ExpressionAttributeValues = values
		}
	}
	t.add(types.TransactWriteItem{Delete: d}, onFail)
}

// update adds an Update that turns the stored record old into new: every attribute that
// differs is set (or removed) under the condition that it still holds the value that was
// read, so a concurrent admin change makes the write fail with ErrConflict instead of being
// lost. Counters are never written, except that a changed max_budget sets
// remaining = max_budget - spend in the same expression, which stays exact under
// concurrent reservations. It adds nothing when old and new are equal.
func (t *Tx) update(pk, sk string, old, new any) error {
	om, err := marshal(old)
	if err != nil {
		return err
	}
	nm, err := marshal(new)
	if err != nil {
		return err
	}
	names := map[string]string{}
	values := item{}
	var sets, removes, conds []string
	conds = append(conds, "attribute_exists(pk)")
	attrs := make([]string, 0, len(om)+len(nm))
	seen := map[string]bool{}
	for _, m := range []item{om, nm} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				attrs = append(attrs, k)
			}
		}
	}
	sort.Strings(attrs)
	for i, a := range attrs {
		if counters[a] {
			continue
		}
		ov, inOld := om[a]
		nv, inNew := nm[a]
		if inOld && inNew && reflect.DeepEqual(ov, nv) {
			continue
		}
		n := "#a" + strconv.Itoa(i)
		names[n] = a
		if inOld {
			values[":o"+strconv.Itoa(i)] = ov
			conds = append(conds, n+" = :o"+strconv.Itoa(i))
		} else {
			conds = append(conds, "attribute_not_exists("+n+")")
		}
		if inNew {
			values[":n"+strconv.Itoa(i)] = nv
			sets = append(sets, n+" = :n"+strconv.Itoa(i))
		} else {
			removes = append(removes, n)
		}
		if a == "max_budget" {
			// Every name given must be used, so #spend only when remaining is recomputed.
			names["#rem"] = "remaining"
			if inNew {
				names["#spend"] = "spend"
				sets = append(sets, "#rem = :n"+strconv.Itoa(i)+" - #spend")
			} else {
				removes = append(removes, "#rem")
			}
		}
	}
	if len(sets) == 0 && len(removes) == 0 {
		return nil
	}
	var expr []string
	if len(sets) > 0 {
		expr = append(expr, "SET "+strings.Join(sets, ", "))
	}
	if len(removes) > 0 {
		expr = append(expr, "REMOVE "+strings.Join(removes, ", "))
	}
	u := &types.Update{
		TableName:                aws.String(t.s.table),
		Key:                      keyOf(pk, sk),
		UpdateExpression:         aws.String(strings.Join(expr, " ")),
		ConditionExpression:      aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames: names,
	}
	if len(values) > 0 {
		u.ExpressionAttributeValues = values
	}
	t.add(types.TransactWriteItem{Update: u}, ErrConflict)
	return nil
}

// Commit runs the transaction. A failed condition returns the error registered for that
// item (ErrExists, ErrConflict, ...), wrapped with what failed.
func (t *Tx) Commit(ctx context.Context) error {
	switch n := len(t.items); {
	case n == 0:
		return nil
	case n > MaxTxItems:
		return &TooLargeError{Writes: n}
	}
	_, err := t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: t.items})
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for i, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" && i < len(t.fails) {
				return t.fails[i]
			}
		}
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "TransactionConflict" {
				return fmt.Errorf("transaction: %w", ErrConflict)
			}
		}
	}
	var conflict *types.TransactionConflictException
	if errors.As(err, &conflict) {
		return fmt.Errorf("transact write: %w", ErrConflict)
	}
	return fmt.Errorf("transact write: %w", err)
}

// delUnchanged adds the Delete of a record as read: it fails with ErrConflict when the record
// is gone or was changed since, which every admin change shows by moving updated_at (spend
// and budget resets do not, so they never hold a delete up).
func (t *Tx) delUnchanged(pk, sk string, a Audit) error {
	v, err := attributevalue.Marshal(a.UpdatedAt)
	if err != nil {
		return fmt.Errorf("marshal updated_at: %w", err)
	}
	t.del(pk, sk, "attribute_exists(pk) AND updated_at = :u", item{":u": v}, ErrConflict)
	return nil
}

// Batch writes a change too large for one transaction as a sequence of groups: each group
// (a Tx) is written whole, and consecutive groups share transactions of up to MaxTxItems
// writes. It is one transaction, all or nothing, when everything fits; otherwise a failure
// leaves the groups before it written, so callers make each group idempotent and a retry
// finishes the job. Groups must not write the same item.
type Batch struct {
	s      *Store
	groups []*Tx
	n      int
}

// Batch starts a batch.
func (s *Store) Batch() *Batch { return &Batch{s: s} }

// Add appends a group; an empty one is dropped.
func (b *Batch) Add(g *Tx) {
	if g.Len() > 0 {
		b.groups = append(b.groups, g)
		b.n += g.Len()
	}
}

// DeleteKey adds the deletion of a key and its alias, as a group of its own. A split key
// whose group would be too large for a transaction has its escrow shards deleted first (see
// retireKeyShards).
func (b *Batch) DeleteKey(ctx context.Context, k *Key) error {
	g := b.s.Tx()
	if err := g.DeleteKey(ctx, k); err != nil {
		return err
	}
	if g.Len() > MaxTxItems && k.EscrowShards > 1 {
		if err := b.s.retireKeyShards(ctx, k); err != nil {
			return err
		}
		g = b.s.Tx()
		if err := g.DeleteKey(ctx, k); err != nil {
			return err
		}
	}
	b.Add(g)
	return nil
}

// Len is the number of writes of all groups.
func (b *Batch) Len() int { return b.n }

// Commit writes the groups in order. A group over MaxTxItems fails it with a TooLargeError
// before anything is written.
func (b *Batch) Commit(ctx context.Context) error {
	for _, g := range b.groups {
		if g.Len() > MaxTxItems {
			return &TooLargeError{Writes: g.Len()}
		}
	}
	tx := b.s.Tx()
	for _, g := range b.groups {
		if tx.Len()+g.Len() > MaxTxItems {
			if err := tx.Commit(ctx); err != nil {
				return err
			}
			tx = b.s.Tx()
		}
		tx.items = append(tx.items, g.items...)
		tx.fails = append(tx.fails, g.fails...)
	}
	return tx.Commit(ctx)
}

// Retry runs fn until it does not fail with ErrConflict, at most retryAttempts times: fn
// must read what it changes afresh on each call. Each round of concurrent writers of one item
// lets at least one through, so the attempts cover that many writers; the jittered wait
// keeps them from colliding again in step.
func Retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range retryAttempts {
		if err = fn(); !errors.Is(err, ErrConflict) {
			return err
		}
		wait := time.Duration(attempt+1) * 10 * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait/2 + rand.N(wait)):
		}
	}
	return err
}

// retryAttempts bounds Retry: ten admin requests racing on one record all succeed.
const retryAttempts = 12

// get reads one item with a strongly consistent read into out; ErrNotFound if absent.
func (s *Store) get(ctx context.Context, pk, sk string, out any) error {
	it, err := s.getItem(ctx, pk, sk)
	if err != nil {
		return err
	}
	if err := attributevalue.UnmarshalMap(it, out); err != nil {
		return fmt.Errorf("decode %s: %w", pk, err)
	}
	return nil
}

// getItem reads one item as stored, with a strongly consistent read; ErrNotFound if absent.
func (s *Store) getItem(ctx context.Context, pk, sk string) (item, error) {
	res, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyOf(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", pk, err)
	}
	if len(res.Item) == 0 {
		return nil, fmt.Errorf("%s: %w", pk, ErrNotFound)
	}
	return res.Item, nil
}

// maxBatchGet is DynamoDB's limit on the keys of one BatchGetItem.
const maxBatchGet = 100

// maxBatchRetries bounds the retries of unprocessed keys (with backoff) in one batchGet.
const maxBatchRetries = 8

// batchGet reads items by primary key with BatchGetItem, at most maxBatchGet keys a call,
// retrying unprocessed keys with backoff. It returns the items in the order of keys; items
// that do not exist are left out.
func (s *Store) batchGet(ctx context.Context, keys []item, consistent bool) ([]item, error) {
	id := func(it item) [2]string {
		pk, _ := it[schema.AttrPK].(*types.AttributeValueMemberS)
		sk, _ := it[schema.AttrSK].(*types.AttributeValueMemberS)
		if pk == nil || sk == nil {
			return [2]string{}
		}
		return [2]string{pk.Value, sk.Value}
	}
	found := make(map[[2]string]item, len(keys))
	for start := 0; start < len(keys); start += maxBatchGet {
		req := map[string]types.KeysAndAttributes{s.table: {
			Keys: keys[start:min(start+maxBatchGet, len(keys))], ConsistentRead: aws.Bool(consistent),
		}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt > maxBatchRetries {
					return nil, errors.New("batch get: keys still unprocessed after retries")
				}
				if err := backoff(ctx, attempt-1); err != nil {
					return nil, fmt.Errorf("batch get: %w", err)
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("batch get: %w", err)
			}
			for _, it := range out.Responses[s.table] {
				found[id(it)] = it
			}
			req = out.UnprocessedKeys
		}
	}
	out := make([]item, 0, len(keys))
	for _, k := range keys {
		if it, ok := found[id(k)]; ok {
			out = append(out, it)
		}
	}
	return out, nil
}

// indexItems returns the table items behind entries read from index, in the same order: the
// entries themselves when the index projects every attribute, else the items read by key
// (eventually consistent, as the index itself is). Items deleted since are left out.
func (s *Store) indexItems(ctx context.Context, index string, entries []item) ([]item, error) {
	ix, ok := schema.State.Index(index)
	if !ok {
		return nil, fmt.Errorf("no index %s in the schema", index)
	}
	if ix.Projection.Type == schema.ProjectAll || len(entries) == 0 {
		return entries, nil
	}
	keys := make([]item, len(entries))
	for i, e := range entries {
		keys[i] = item{schema.AttrPK: e[schema.AttrPK], schema.AttrSK: e[schema.AttrSK]}
	}
	items, err := s.batchGet(ctx, keys, false)
	if err != nil {
		return nil, fmt.Errorf("read items of index %s: %w", index, err)
	}
	return items, nil
}

// partition reads, strongly consistent, every item of partition pk whose sort key begins
// with skPrefix (all pages).
func (s *Store) partition(ctx context.Context, pk, skPrefix string) ([]item, error) {
	pager := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("pk = :p AND begins_with(sk, :s)"),
		ExpressionAttributeValues: item{
			":p": &types.AttributeValueMemberS{Value: pk},
			":s": &types.AttributeValueMemberS{Value: skPrefix},
		},
		ConsistentRead: aws.Bool(true),
	})
	var out []item
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
	}
	return out, nil
}

// Page is one page of a list, counted as LiteLLM's list endpoints count (1-based pages).
type Page struct {
	Number int // 1-based
	Size   int
	Desc   bool // newest first
}

// query pages through an index partition (items whose gsi_sort starts with sortPrefix),
// reads the items of the requested page from the table (the indexes project only keys),
// decodes them into out (a pointer to a slice) and returns the number of matching items.
func (s *Store) query(ctx context.Context, index, attr, value, sortPrefix string, p Page, out any) (int, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		IndexName:              aws.String(index),
		KeyConditionExpression: aws.String("#p = :p AND begins_with(gsi_sort, :s)"),
		ExpressionAttributeNames: map[string]string{
			"#p": attr,
		},
		ExpressionAttributeValues: item{
			":p": &types.AttributeValueMemberS{Value: value},
			":s": &types.AttributeValueMemberS{Value: sortPrefix},
		},
		ScanIndexForward: aws.Bool(!p.Desc),
	}
	skip := (p.Number - 1) * p.Size
	var page []item
	total := 0
	pager := dynamodb.NewQueryPaginator(s.db, in)
	for pager.HasMorePages() {
		res, err := pager.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("query %s %s: %w", index, value, err)
		}
		for _, it := range res.Items {
			if total >= skip && len(page) < p.Size {
				page = append(page, it)
			}
			total++
		}
	}
	page, err := s.indexItems(ctx, index, page)
	if err != nil {
		return 0, err
	}
	// The index lags the table: keep only items that still belong in the partition.
	kept := page[:0]
	for _, it := range page {
		if v, ok := it[attr].(*types.AttributeValueMemberS); ok && v.Value == value {
			kept = append(kept, it)
		}
	}
	if err := attributevalue.UnmarshalListOfMaps(kept, out); err != nil {
		return 0, fmt.Errorf("decode %s %s: %w", index, value, err)
	}
	return total, nil
}

// remaining returns max - spend, or nil when there is no max.
func remaining(max *float64, spend float64) *float64 {
	if max == nil {
		return nil
	}
	r := *max - spend
	return &r
}

// earliest returns the earliest non-nil time as unix seconds, 0 if none.
func earliest(ts ...*time.Time) int64 {
	var min int64
	for _, t := range ts {
		if t != nil && (min == 0 || t.Unix() < min) {
			min = t.Unix()
		}
	}
	return min
}

// budgetResets returns the reset times of a record's budget, windows and model budgets.
func budgetResets(b Budget, windows []BudgetWindow, models map[string]ModelBudget) []*time.Time {
	ts := []*time.Time{b.BudgetResetAt}
	for i := range windows {
		ts = append(ts, windows[i].ResetAt)
	}
	for _, m := range models {
		ts = append(ts, m.ResetAt)
	}
	return ts
}

// setResetIndex puts the record in the due_reset index when any of its budgets resets.
func setResetIndex(ix *Index, pk string, resets []*time.Time) {
	ix.ResetAt = earliest(resets...)
	ix.ResetShard = ""
	if ix.ResetAt != 0 {
		ix.ResetShard = Shard(pk)
	}
}

// fillHeadroom sets remaining = max - spend on a record's budget, windows and model budgets;
// writers call it on records they create.
func fillHeadroom(b *Budget, windows []BudgetWindow, models map[string]ModelBudget) {
	b.Remaining = remaining(b.MaxBudget, b.Spend)
	for i := range windows {
		windows[i].Remaining = windows[i].MaxBudget - windows[i].Spend
	}
	for k, m := range models {
		m.Remaining = m.BudgetLimit - m.Spend
		models[k] = m
	}
}

// Clone returns a deep copy of a record, as it would read back from the table.
func Clone[T any](v *T) (*T, error) {
	m, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, fmt.Errorf("copy %T: %w", v, err)
	}
	var c T
	if err := attributevalue.UnmarshalMap(m, &c); err != nil {
		return nil, fmt.Errorf("copy %T: %w", v, err)
	}
	return &c, nil
}
