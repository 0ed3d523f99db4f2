package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/store/schema"
)

// Errors of creations that would break uniqueness; each wraps ErrExists.
var (
	ErrKeyExists    = fmt.Errorf("key %w", ErrExists)
	ErrAliasTaken   = fmt.Errorf("key alias %w", ErrExists)
	ErrUserExists   = fmt.Errorf("user %w", ErrExists)
	ErrEmailTaken   = fmt.Errorf("user email %w", ErrExists)
	ErrTeamExists   = fmt.Errorf("team %w", ErrExists)
	ErrMemberExists = fmt.Errorf("team membership %w", ErrExists)
)

// aliasItem is the ALIAS#<key_alias> item that makes key aliases unique.
type aliasItem struct {
	Token string `dynamodbav:"token"`
}

// IsPointer reports whether k is a rotated-out hash that only points to its successor.
func (k *Key) IsPointer() bool { return k.ActiveToken != "" }

// index sets the key's index attributes from its fields: by_kind, by_user, by_team,
// due_reset when a budget resets, due_rotate when auto_rotate is on.
func (k *Key) index() {
	pk := PrefixKey + k.Token
	k.Kind = KindKey
	k.GSISort = gsiSort(SortPrefixKey, k.CreatedAt, k.Token)
	k.GSIUser, k.GSITeam = aws.ToString(k.UserID), aws.ToString(k.TeamID)
	setResetIndex(&k.Index, pk, budgetResets(k.Budget, k.BudgetLimits, k.ModelMaxBudget))
	k.RotateShard, k.RotateAt = "", 0
	if k.AutoRotate && k.KeyRotationAt != nil {
		k.RotateShard, k.RotateAt = Shard(pk), k.KeyRotationAt.Unix()
	}
	k.ExpiresAt = 0
	if k.Expires != nil {
		// Rounded up: the reservation's expires_at > now check must not refuse a key during
		// the last second before it expires (auth checks the exact time).
		k.ExpiresAt = k.Expires.Add(time.Second - 1).Unix()
	}
}

// GetKey reads the key record with the given hash (a rotated-out hash comes back as a
// pointer: IsPointer, ActiveToken, RevokeAt), with the escrow shards of a split key added
// up. ErrNotFound if there is none.
func (s *Store) GetKey(ctx context.Context, token string) (*Key, error) {
	var k Key
	if err := s.get(ctx, PrefixKey+token, SortKey, &k); err != nil {
		return nil, err
	}
	if err := s.foldKeyEscrow(ctx, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// KeyTokenByAlias returns the hash of the key with the alias. ErrNotFound if none.
func (s *Store) KeyTokenByAlias(ctx context.Context, alias string) (string, error) {
	var a aliasItem
	if err := s.get(ctx, PrefixAlias+alias, SortAlias, &a); err != nil {
		return "", err
	}
	return a.Token, nil
}

// PutKey adds the creation of k to the transaction: the key item (which must not exist) and,
// with a key_alias, the ALIAS# item (ErrAliasTaken if another key has it). It fills the
// index attributes and the budgets' headroom.
func (t *Tx) PutKey(k *Key) error {
	if err := t.putKeyItem(k); err != nil {
		return err
	}
	if a := aws.ToString(k.KeyAlias); a != "" {
		return t.put(PrefixAlias+a, SortAlias, aliasItem{Token: k.Token}, nil,
			fmt.Errorf("%w: %q", ErrAliasTaken, a))
	}
	return nil
}

func (t *Tx) putKeyItem(k *Key) error {
	fillHeadroom(&k.Budget, k.BudgetLimits, k.ModelMaxBudget)
	k.index()
	k.EscrowShards = t.s.keyShards(k, 0)
	return t.put(PrefixKey+k.Token, SortKey, k, nil, ErrKeyExists)
}

// UpdateKey adds the change of a key from old (as read) to new; see Tx.update. A changed
// key_alias moves the ALIAS# item in the same transaction. Windows and model budgets that
// new keeps (same budget_duration, same model and time_period) keep what calls in flight
// reserved on them. A key whose budget grows is split into more escrow shards; blocking a
// split key, lowering its budget or changing another of its limits closes them.
func (t *Tx) UpdateKey(old, new *Key) error {
	carryReserved(old.BudgetLimits, new.BudgetLimits, old.ModelMaxBudget, new.ModelMaxBudget)
	new.index()
	new.EscrowShards = t.s.keyShards(new, old.EscrowShards)
	b := keyBank(old.Token)
	t.s.spent.forget(b.pk)
	if new.EscrowShards > 1 && keyEscrowCloses(old, new) {
		t.closeEscrow(b, new.EscrowShards)
	}
	if err := t.update(PrefixKey+old.Token, SortKey, old, new); err != nil {
		return err
	}
	oa, na := aws.ToString(old.KeyAlias), aws.ToString(new.KeyAlias)
	if oa == na {
		return nil
	}
	if oa != "" {
		t.delAlias(oa, old.Token)
	}
	if na != "" {
		return t.put(PrefixAlias+na, SortAlias, aliasItem{Token: new.Token}, nil, fmt.Errorf("%w: %q", ErrAliasTaken, na))
	}
	return nil
}

// DeleteKey adds the deletion of a key (and its alias, and the escrow shards of a split
// key) to the transaction. Reservations that calls in flight hold on the record or a shard
// and that charged other records too move into RES# items in the same transaction (see
// handOver), so they still settle once.
func (t *Tx) DeleteKey(ctx context.Context, k *Key) error {
	b := keyBank(k.Token)
	raw := map[string]item{}
	if k.EscrowShards > 1 {
		st, err := t.s.readEscrow(ctx, b, true)
		if err != nil {
			return err
		}
		raw, raw[b.sk] = st.shards, st.bank
	} else {
		it, err := t.s.getItem(ctx, b.pk, b.sk)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		raw[b.sk] = it
	}
	sks := []string{b.sk}
	for i := range k.EscrowShards {
		sks = append(sks, b.shardSK(i))
	}
	for _, sk := range sks {
		if err := t.deleteHolding(b.pk, sk, raw[sk], k.Token); err != nil {
			return err
		}
	}
	if a := aws.ToString(k.KeyAlias); a != "" {
		t.delAlias(a, k.Token)
	}
	return nil
}

// deleteHolding adds the deletion of key token's record or escrow shard pk/sk, read as raw
// (nil: none), handing the reservations it holds over to RES# items (see handOver).
func (t *Tx) deleteHolding(pk, sk string, raw item, token string) error {
	cond, names, err := t.handOver(raw, token)
	if err != nil {
		return err
	}
	t.del(pk, sk, cond, nil, ErrConflict)
	if names != nil {
		t.items[len(t.items)-1].Delete.ExpressionAttributeNames = names
	}
	return nil
}

// retireKeyShards deletes the escrow shards of a split key ahead of its record, a
// transaction per shard, when the key's deletion with all the reservations its shards hand
// over would pass MaxTxItems writes (a busy key: 32 shards holding 4 calls each, every one
// charging a user or team too). The key is blocked first, so that no call refills (and so
// recreates) a shard meanwhile: a deletion that fails after that leaves the key blocked,
// and a retry finishes it.
func (s *Store) retireKeyShards(ctx context.Context, k *Key) error {
	if !k.Blocked {
		if _, err := s.UpdateKey(ctx, k.Token, func(k *Key) error {
			k.Blocked = true
			return nil
		}); err != nil {
			return fmt.Errorf("block key before deleting its escrow shards: %w", err)
		}
	}
	b := keyBank(k.Token)
	return Retry(ctx, func() error {
		st, err := s.readEscrow(ctx, b, false)
		if err != nil {
			return err
		}
		for sk, sh := range st.shards {
			t := s.Tx()
			if err := t.deleteHolding(b.pk, sk, sh, k.Token); err != nil {
				return err
			}
			if err := t.Commit(ctx); err != nil {
				return fmt.Errorf("delete escrow shard %s of key: %w", sk, err)
			}
		}
		return nil
	})
}

// delAlias deletes an ALIAS# item if it still names token.
func (t *Tx) delAlias(alias, token string) {
	t.del(PrefixAlias+alias, SortAlias, "attribute_not_exists(pk) OR #t = :t",
		item{":t": &types.AttributeValueMemberS{Value: token}}, ErrConflict)
	d := t.items[len(t.items)-1].Delete
	d.ExpressionAttributeNames = map[string]string{"#t": "token"}
}

// CreateKey stores a new key (and its alias) in one transaction.
func (s *Store) CreateKey(ctx context.Context, k *Key) error {
	tx := s.Tx()
	if err := tx.PutKey(k); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// UpdateKey reads the key, lets change edit a copy, and writes the difference (retrying
// when the key changed meanwhile). It returns the key as written.
func (s *Store) UpdateKey(ctx context.Context, token string, change func(*Key) error) (*Key, error) {
	var out *Key
	err := Retry(ctx, func() error {
		old, err := s.GetKey(ctx, token)
		if err != nil {
			return err
		}
		if old.IsPointer() {
			return fmt.Errorf("key %s: %w", token, ErrNotFound)
		}
		k, err := Clone(old)
		if err != nil {
			return err
		}
		if err := change(k); err != nil {
			return err
		}
		tx := s.Tx()
		if err := tx.UpdateKey(old, k); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		out = k
		return nil
	})
	return out, err
}

// DeleteKeys deletes keys and their aliases, in transactions of at most MaxTxItems writes.
func (s *Store) DeleteKeys(ctx context.Context, keys []*Key) error {
	return Retry(ctx, func() error {
		b := s.Batch()
		for _, k := range keys {
			if err := b.DeleteKey(ctx, k); err != nil {
				return err
			}
		}
		return b.Commit(ctx)
	})
}

// KeyFilter selects the keys of a list: all keys, or a user's, or a team's.
type KeyFilter struct {
	UserID string
	TeamID string
}

// ListKeys returns one page of keys (newest first when p.Desc) and the number of matches,
// from the by_user, by_team or by_kind index: never a scan.
func (s *Store) ListKeys(ctx context.Context, f KeyFilter, p Page) ([]Key, int, error) {
	index, attr, value := keyIndex(f)
	var keys []Key
	n, err := s.query(ctx, index, attr, value, SortPrefixKey, p, &keys)
	if err != nil {
		return nil, 0, err
	}
	for i := range keys {
		if err := s.foldKeyEscrow(ctx, &keys[i]); err != nil {
			return nil, 0, err
		}
	}
	return keysOfTeam(keys, f), n, nil
}

// CountKeys counts the keys f selects (rotated-out hashes are not keys) from the by_kind,
// by_user or by_team index without reading them (Select COUNT), and stops after limit index
// entries: more reports that some were left uncounted, and n (at most limit) is then a lower
// bound. A count costs at most one read of limit index entries (keys only), not one of
// every key.
func (s *Store) CountKeys(ctx context.Context, f KeyFilter, limit int) (n int, more bool, err error) {
	index, attr, value := keyIndex(f)
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		IndexName:                aws.String(index),
		KeyConditionExpression:   aws.String("#p = :p AND begins_with(gsi_sort, :s)"),
		ExpressionAttributeNames: map[string]string{"#p": attr},
		ExpressionAttributeValues: item{
			":p": &types.AttributeValueMemberS{Value: value},
			":s": &types.AttributeValueMemberS{Value: SortPrefixKey},
		},
		Select: types.SelectCount,
	}
	if f.UserID != "" && f.TeamID != "" { // by_user projects gsi_team
		in.FilterExpression = aws.String("gsi_team = :t")
		in.ExpressionAttributeValues[":t"] = &types.AttributeValueMemberS{Value: f.TeamID}
	}
	// One entry past limit tells "exactly limit" from "more".
	for read := 0; ; {
		in.Limit = aws.Int32(int32(limit + 1 - read))
		res, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, false, fmt.Errorf("count keys: %w", err)
		}
		n, read = n+int(res.Count), read+int(res.ScannedCount)
		if read > limit {
			return min(n, limit), true, nil
		}
		if res.LastEvaluatedKey == nil {
			return n, false, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// keyIndex is the index partition that lists the keys f selects.
func keyIndex(f KeyFilter) (index, attr, value string) {
	switch {
	case f.UserID != "":
		return schema.IndexByUser, "gsi_user", f.UserID
	case f.TeamID != "":
		return schema.IndexByTeam, "gsi_team", f.TeamID
	}
	return schema.IndexByKind, "kind", KindKey
}

// keysOfTeam keeps the keys of f's team when f names both a user (whose index was read)
// and a team.
func keysOfTeam(keys []Key, f KeyFilter) []Key {
	if f.UserID == "" || f.TeamID == "" {
		return keys
	}
	return slices.DeleteFunc(keys, func(k Key) bool { return aws.ToString(k.TeamID) != f.TeamID })
}

// AllKeys returns every key of a user or a team (for deletes and info pages).
func (s *Store) AllKeys(ctx context.Context, f KeyFilter) ([]Key, error) {
	keys, _, err := s.ListKeys(ctx, f, Page{Number: 1, Size: 1 << 30})
	return keys, err
}

// RotateKeyInput says how to re-key a virtual key.
type RotateKeyInput struct {
	OldToken string
	NewToken string // SHA-256 hex of the new secret
	KeyName  string // "sk-...wxyz" of the new secret
	// Grace keeps the old secret working until Now+Grace; 0 revokes it at once.
	Grace time.Duration
	Now   time.Time
	// Change edits the new record before it is written (regenerate may update fields).
	Change func(*Key) error
}

// pointerItem is a rotated-out hash: it resolves to ActiveToken until RevokeAt, and the
// rotator (due_expire) or TTL removes it after.
type pointerItem struct {
	PK          string    `dynamodbav:"pk"`
	SK          string    `dynamodbav:"sk"`
	Token       string    `dynamodbav:"token"`
	KeyName     string    `dynamodbav:"key_name"`
	ActiveToken string    `dynamodbav:"active_token"`
	RevokeAt    time.Time `dynamodbav:"revoke_at"`
	ExpireShard string    `dynamodbav:"expire_shard"`
	ExpireAt    int64     `dynamodbav:"expire_at"`
	TTL         int64     `dynamodbav:"ttl"`
}

// RotateKey re-keys a virtual key in one transaction: the record moves to the new hash with
// rotation_count+1, last_rotation_at = Now and, for auto-rotating keys, key_rotation_at =
// Now + rotation_interval; the alias follows it; the old hash is deleted, or with a grace
// period becomes a pointer to the new hash that works until revoke_at and that TTL then
// removes. A MOVED# item names the new hash for as long as calls reserved against the old
// one may still settle (see Settle). The counters (spend, remaining, reserved, inflight,
// model_spend, and the windows' and model budgets') move as stored, decimal for decimal,
// and the old record must not change between the read and the write (else the transaction
// is retried from a fresh read), so remaining = max_budget - spend and the reserved
// amounts of calls in flight hold across the rotation.
func (s *Store) RotateKey(ctx context.Context, in RotateKeyInput) (*Key, error) {
	var out *Key
	err := Retry(ctx, func() error {
		raw, err := s.getItem(ctx, PrefixKey+in.OldToken, SortKey)
		if err != nil {
			return err
		}
		old := new(Key)
		if err := attributevalue.UnmarshalMap(raw, old); err != nil {
			return fmt.Errorf("decode key %s: %w", in.OldToken, err)
		}
		if old.IsPointer() {
			return fmt.Errorf("key %s: %w", in.OldToken, ErrNotFound)
		}
		k, err := Clone(old)
		if err != nil {
			return err
		}
		now := in.Now.UTC()
		k.Token, k.KeyName = in.NewToken, in.KeyName
		k.RotationCount++
		k.LastRotationAt = &now
		k.UpdatedAt = now
		if in.Change != nil {
			if err := in.Change(k); err != nil {
				return err
			}
		}
		if err := k.ScheduleRotation(now); err != nil {
			return err
		}
		carryReserved(old.BudgetLimits, k.BudgetLimits, old.ModelMaxBudget, k.ModelMaxBudget)
		k.index()
		m, err := movedRecord(raw, old, k)
		if err != nil {
			return err
		}
		carryHeld(raw, m)
		for n, v := range keyOf(PrefixKey+k.Token, SortKey) {
			m[n] = v
		}
		tx := s.Tx()
		tx.add(types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: m, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}}, ErrKeyExists)
		if a := aws.ToString(k.KeyAlias); a != "" {
			// The alias follows the key, if it still names the old hash.
			ai, err := marshal(aliasItem{Token: k.Token})
			if err != nil {
				return err
			}
			for n, v := range keyOf(PrefixAlias+a, SortAlias) {
				ai[n] = v
			}
			tx.add(types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(s.table), Item: ai,
				ConditionExpression:       aws.String("#t = :old"),
				ExpressionAttributeNames:  map[string]string{"#t": "token"},
				ExpressionAttributeValues: item{":old": &types.AttributeValueMemberS{Value: old.Token}},
			}}, ErrConflict)
		}
		// The old record is replaced only if nothing wrote to it since the read.
		guard, names, values := unchangedSince(raw, m)
		if in.Grace > 0 {
			revoke := now.Add(in.Grace)
			ptr, err := marshal(pointerItem{
				PK: PrefixKey + old.Token, SK: SortKey, Token: old.Token, KeyName: old.KeyName,
				ActiveToken: k.Token, RevokeAt: revoke,
				ExpireShard: Shard(PrefixKey + old.Token), ExpireAt: revoke.Unix(),
				TTL: revoke.Add(time.Hour).Unix(),
			})
			if err != nil {
				return err
			}
			tx.add(types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(s.table), Item: ptr, ConditionExpression: aws.String(guard),
				ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			}}, ErrConflict)
		} else {
			tx.add(types.TransactWriteItem{Delete: &types.Delete{
				TableName: aws.String(s.table), Key: keyOf(PrefixKey+old.Token, SortKey), ConditionExpression: aws.String(guard),
				ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			}}, ErrConflict)
		}
		mv, err := marshal(movedItem{
			PK: PrefixMoved + old.Token, SK: SortMoved, Token: k.Token,
			TTL: now.Add(in.Grace + movedTTL).Unix(),
		})
		if err != nil {
			return err
		}
		tx.add(types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: mv}}, nil)
		if old.EscrowShards > 1 {
			if err := tx.moveEscrow(ctx, old.Token, k.Token); err != nil {
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		out, err = decodeKey(m)
		return err
	})
	return out, err
}

// moveEscrow adds to a key's rotation the move of its escrow shards from hash from to hash
// to, each as read (the delete is conditioned on it) and closed: a refill reopens it,
// copying the key's hash and expiry as they are then (see lend). Calls in flight that settle
// on the old hash find no shard there and follow the MOVED# item to their entry on the new
// one (see followMoved), as a settle of the key record does.
func (t *Tx) moveEscrow(ctx context.Context, from, to string) error {
	st, err := t.s.readEscrow(ctx, keyBank(from), false)
	if err != nil {
		return err
	}
	for sk, raw := range st.shards {
		m := maps.Clone(raw)
		m[schema.AttrPK] = &types.AttributeValueMemberS{Value: PrefixKey + to}
		m["token"] = &types.AttributeValueMemberS{Value: to}
		m[attrClosed] = &types.AttributeValueMemberBOOL{Value: true}
		t.add(types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(t.s.table), Item: m, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}}, ErrKeyExists)
		guard, names, values := unchangedSince(raw, raw)
		t.add(types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(t.s.table), Key: keyOf(PrefixKey+from, sk), ConditionExpression: aws.String(guard),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}}, ErrConflict)
	}
	return nil
}

// PrefixMoved is the partition key prefix of MOVED#<old hash> (sk MOVED): the hash a key was
// rotated to, kept after the old hash is deleted so that calls reserved before the rotation
// settle against the record where it lives now.
const (
	PrefixMoved = "MOVED#"
	SortMoved   = "MOVED"
)

// movedTTL is how long a MOVED# item outlives the grace period: longer than any reservation
// waits for its call or for SettleStale (reservationGrace).
const movedTTL = reservationGrace

type movedItem struct {
	PK    string `dynamodbav:"pk"`
	SK    string `dynamodbav:"sk"`
	Token string `dynamodbav:"token"`
	TTL   int64  `dynamodbav:"ttl"`
}

// exactCounters are the attributes that calls in flight change. RotateKey copies them from
// the item as read (as stored, not through float64) when the change left them alone.
var exactCounters = []string{"spend", "remaining", "reserved", "inflight", "model_spend", "budget_limits", "model_max_budget"}

// movedRecord is the item of the rotated record k: its attributes as k has them, except
// that counters the change left alone keep the stored decimals of raw (old as read), and a
// changed max_budget gets remaining = max_budget - spend computed exactly.
func movedRecord(raw item, old, k *Key) (item, error) {
	om, err := marshal(old)
	if err != nil {
		return nil, err
	}
	m, err := marshal(k)
	if err != nil {
		return nil, err
	}
	for _, a := range exactCounters {
		if v, ok := raw[a]; ok && reflect.DeepEqual(om[a], m[a]) {
			m[a] = v
		}
	}
	if !reflect.DeepEqual(om["max_budget"], m["max_budget"]) {
		delete(m, "remaining")
		max, hasMax := m["max_budget"].(*types.AttributeValueMemberN)
		spend, hasSpend := raw["spend"].(*types.AttributeValueMemberN)
		switch {
		case hasMax && hasSpend:
			m["remaining"] = &types.AttributeValueMemberN{Value: usdSub(max.Value, spend.Value)}
		case hasMax:
			m["remaining"] = max
		}
	}
	return m, nil
}

// unchangedSince is the condition that an item still holds raw: every attribute of raw as
// read, and none of the other attributes of next (the item that replaces it) or of the
// counters.
func unchangedSince(raw, next item) (string, map[string]string, item) {
	names := map[string]string{}
	values := item{}
	var conds []string
	attrs := make([]string, 0, len(raw)+len(next))
	seen := map[string]bool{schema.AttrPK: true, schema.AttrSK: true}
	for _, a := range exactCounters {
		seen[a] = true
		attrs = append(attrs, a)
	}
	for _, m := range []item{raw, next} {
		for a := range m {
			if !seen[a] {
				seen[a] = true
				attrs = append(attrs, a)
			}
		}
	}
	for i, a := range attrs {
		n, v := "#g"+strconv.Itoa(i), ":g"+strconv.Itoa(i)
		names[n] = a
		if rv, ok := raw[a]; ok {
			values[v] = rv
			conds = append(conds, n+" = "+v)
		} else {
			conds = append(conds, "attribute_not_exists("+n+")")
		}
	}
	return strings.Join(conds, " AND "), names, values
}

// decodeKey decodes a key item.
func decodeKey(it item) (*Key, error) {
	var k Key
	if err := attributevalue.UnmarshalMap(it, &k); err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	return &k, nil
}

// carryReserved gives the windows of nw the reserved amounts of the windows of ow with the
// same budget_duration, and the model budgets of nm those of om's with the same model and
// time_period: calls in flight still settle against them, so a change that rebuilds
// budget_limits or model_max_budget (as admin updates do) must not drop what they hold.
func carryReserved(ow, nw []BudgetWindow, om, nm map[string]ModelBudget) {
	held := map[string]float64{}
	for _, w := range ow {
		if _, ok := held[w.BudgetDuration]; !ok {
			held[w.BudgetDuration] = w.Reserved
		}
	}
	for i := range nw {
		nw[i].Reserved = held[nw[i].BudgetDuration]
	}
	for model, b := range nm {
		if o, ok := om[model]; ok && o.TimePeriod == b.TimePeriod {
			b.Reserved = o.Reserved
		} else {
			b.Reserved = 0
		}
		nm[model] = b
	}
}

// ScheduleRotation sets key_rotation_at = now + rotation_interval for an auto-rotating key
// (and clears it otherwise).
func (k *Key) ScheduleRotation(now time.Time) error {
	if !k.AutoRotate || k.RotationInterval == nil {
		k.KeyRotationAt = nil
		return nil
	}
	d, err := duration.Parse(*k.RotationInterval)
	if err != nil {
		return fmt.Errorf("rotation_interval: %w", err)
	}
	at := d.Add(now.UTC())
	k.KeyRotationAt = &at
	return nil
}

// BatchRecords reads a key's user, team and membership in one BatchGetItem; absent records
// are nil. Empty ids are skipped.
func (s *Store) BatchRecords(ctx context.Context, userID, teamID string) (*User, *Team, *Membership, error) {
	var keys []item
	if userID != "" {
		keys = append(keys, keyOf(PrefixUser+userID, SortUser))
	}
	if teamID != "" {
		keys = append(keys, keyOf(PrefixTeam+teamID, SortTeam))
		if userID != "" {
			keys = append(keys, keyOf(PrefixTeam+teamID, SortMember+userID))
		}
	}
	if len(keys) == 0 {
		return nil, nil, nil, nil
	}
	items, err := s.batchGet(ctx, keys, true)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read user/team: %w", err)
	}
	var (
		u *User
		t *Team
		m *Membership
	)
	for _, it := range items {
		sk, _ := it[schema.AttrSK].(*types.AttributeValueMemberS)
		if sk == nil {
			continue
		}
		var err error
		switch {
		case sk.Value == SortUser:
			u = new(User)
			err = attributevalue.UnmarshalMap(it, u)
		case sk.Value == SortTeam:
			t = new(Team)
			err = attributevalue.UnmarshalMap(it, t)
		default:
			m = new(Membership)
			err = attributevalue.UnmarshalMap(it, m)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("decode %s: %w", sk.Value, err)
		}
	}
	if err := s.foldEscrow(ctx, t); err != nil {
		return nil, nil, nil, err
	}
	return u, t, m, nil
}

// ResetKeySpend sets a key's settled spend to `to`, after check accepts the key as read.
// What calls in flight reserved stays: spend becomes to + reserved and remaining max_budget
// - spend, so their settlements (which add actual - reserved) cannot take spend below `to`
// nor remaining past the budget. The write is conditioned on the spend, reserved and
// max_budget read, and retried when a reservation changed them meanwhile. It returns the
// previous spend.
func (s *Store) ResetKeySpend(ctx context.Context, token string, check func(*Key) error, to float64) (float64, *Key, error) {
	var prev float64
	var out *Key
	err := Retry(ctx, func() error {
		k, err := s.GetKey(ctx, token)
		if err != nil {
			return err
		}
		if k.IsPointer() {
			return fmt.Errorf("key %s: %w", token, ErrNotFound)
		}
		if err := check(k); err != nil {
			return err
		}
		if k.EscrowShards > 1 {
			if err := s.resetKeyEscrow(ctx, k, to); err != nil {
				return err
			}
			prev, out = k.Spend, k
			out.Spend = to + k.Reserved
			out.Remaining = remaining(k.MaxBudget, out.Spend)
			return nil
		}
		spend := to + k.Reserved
		reserved := "reserved = :rsv"
		if k.Reserved == 0 {
			reserved = "(attribute_not_exists(reserved) OR reserved = :rsv)"
		}
		in := &dynamodb.UpdateItemInput{
			TableName:           aws.String(s.table),
			Key:                 keyOf(PrefixKey+token, SortKey),
			UpdateExpression:    aws.String("SET spend = :to"),
			ConditionExpression: aws.String("spend = :old AND " + reserved + " AND attribute_not_exists(max_budget)"),
			ExpressionAttributeValues: item{
				":to":  &types.AttributeValueMemberN{Value: strconv.FormatFloat(spend, 'f', -1, 64)},
				":old": &types.AttributeValueMemberN{Value: strconv.FormatFloat(k.Spend, 'f', -1, 64)},
				":rsv": &types.AttributeValueMemberN{Value: strconv.FormatFloat(k.Reserved, 'f', -1, 64)},
			},
		}
		if k.MaxBudget != nil {
			in.UpdateExpression = aws.String("SET spend = :to, remaining = :rem")
			in.ConditionExpression = aws.String("spend = :old AND " + reserved + " AND max_budget = :mb")
			in.ExpressionAttributeValues[":rem"] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(*k.MaxBudget-spend, 'f', -1, 64)}
			in.ExpressionAttributeValues[":mb"] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(*k.MaxBudget, 'f', -1, 64)}
		}
		if _, err := s.db.UpdateItem(ctx, in); err != nil {
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				return fmt.Errorf("reset spend of key %s: %w", token, ErrConflict)
			}
			return fmt.Errorf("reset spend of key %s: %w", token, err)
		}
		prev, out = k.Spend, k
		out.Spend = spend
		out.Remaining = remaining(k.MaxBudget, spend)
		return nil
	})
	return prev, out, err
}

// resetKeyEscrow is ResetKeySpend of a split key (k as read, its shards added up): the bank
// and the shards are reset in one transaction that keeps what calls in flight reserved (see
// resetEscrow); the bank's spend becomes to plus what they hold.
func (s *Store) resetKeyEscrow(ctx context.Context, k *Key, to float64) error {
	b := keyBank(k.Token)
	raw, err := s.getItem(ctx, b.pk, b.sk)
	if err != nil {
		return err
	}
	guard := func(e *txExpr) {
		e.cond("attribute_not_exists(" + e.name("active_token") + ")")
		if mb, ok := raw["max_budget"]; ok {
			e.cond(e.name("max_budget") + " = " + e.value(mb))
		} else {
			e.cond("attribute_not_exists(" + e.name("max_budget") + ")")
		}
	}
	return s.resetEscrow(ctx, b, k.EscrowShards, guard, func(held *big.Rat) (*types.Update, error) {
		e := newTxExpr()
		guard(e)
		own, rsv := ratAttr(raw, "reserved"), e.name("reserved")
		e.cond("(attribute_not_exists(" + rsv + ") OR " + rsv + " = " + e.num(ratString(own)) + ")")
		spend := new(big.Rat).Add(ratOf(usd(to)), own)
		spend.Add(spend, held)
		e.set(e.name("spend") + " = " + e.num(ratString(spend)))
		if mb, ok := raw["max_budget"].(*types.AttributeValueMemberN); ok {
			e.set(e.name("remaining") + " = " + e.num(ratString(new(big.Rat).Sub(ratOf(mb.Value), spend))))
		}
		e.remove(e.name(attrEscrowHold))
		return e.update(s.table, b.pk, b.sk), nil
	})
}
