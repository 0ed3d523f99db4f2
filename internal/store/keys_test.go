package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

func newStore(t *testing.T) (*store.Store, *dynamodb.Client, string) {
	t.Helper()
	c, table := dynamotest.NewTable(t)
	return store.NewWithClient(c, table), c, table
}

func newKey(token string, mods ...func(*store.Key)) *store.Key {
	now := time.Now().UTC()
	k := &store.Key{Token: token, KeyName: "sk-...abcd", Models: []string{}, Aliases: map[string]string{}, Metadata: map[string]any{}}
	k.CreatedAt, k.UpdatedAt = now, now
	for _, m := range mods {
		m(k)
	}
	return k
}

func ptr[T any](v T) *T { return &v }

// reserve spends c on a key the way the limiter does, without going through admin code.
func reserve(t *testing.T, c *dynamodb.Client, table, token string, cost float64) {
	t.Helper()
	_, err := c.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: store.PrefixKey + token},
			"sk": &types.AttributeValueMemberS{Value: store.SortKey},
		},
		UpdateExpression:          aws.String("SET spend = spend + :c, remaining = remaining - :c"),
		ConditionExpression:       aws.String("remaining >= :c"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberN{Value: fmtFloat(cost)}},
	})
	if err != nil {
		t.Fatalf("reserve %v: %v", cost, err)
	}
}

func TestCreateKey_SetsHeadroomAndIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	reset := time.Now().Add(time.Hour).UTC()
	rot := time.Now().Add(24 * time.Hour).UTC()
	k := newKey("h1", func(k *store.Key) {
		k.MaxBudget = ptr(10.0)
		k.BudgetDuration, k.BudgetResetAt = "1h", &reset
		k.UserID, k.TeamID = ptr("u1"), ptr("t1")
		k.AutoRotate, k.RotationInterval, k.KeyRotationAt = true, ptr("1d"), &rot
		k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 2}}
	})
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Remaining == nil || *got.Remaining != 10 {
		t.Errorf("remaining = %v, want 10", got.Remaining)
	}
	if got.BudgetLimits[0].Remaining != 2 {
		t.Errorf("window remaining = %v, want 2", got.BudgetLimits[0].Remaining)
	}
	if got.Kind != store.KindKey || got.GSIUser != "u1" || got.GSITeam != "t1" {
		t.Errorf("index attributes = kind %q user %q team %q, want KEY u1 t1", got.Kind, got.GSIUser, got.GSITeam)
	}
	if got.ResetAt != reset.Unix() || got.ResetShard == "" {
		t.Errorf("reset index = %q/%d, want a shard and %d", got.ResetShard, got.ResetAt, reset.Unix())
	}
	if got.RotateAt != rot.Unix() || got.RotateShard == "" {
		t.Errorf("rotate index = %q/%d, want a shard and %d", got.RotateShard, got.RotateAt, rot.Unix())
	}
}

func TestCreateKey_ConcurrentSameAliasExactlyOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateKey(ctx, newKey(fmtInt(i), func(k *store.Key) { k.KeyAlias = ptr("shared") }))
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrAliasTaken) && !errors.Is(err, store.ErrConflict):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", ok)
	}
}

func TestUpdateKey_MaxBudgetKeepsHeadroomExactUnderSpend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	if err := s.CreateKey(ctx, newKey("h", func(k *store.Key) { k.MaxBudget = ptr(10.0) })); err != nil {
		t.Fatal(err)
	}
	reserve(t, c, table, "h", 3)
	// The admin read happens before another reservation lands.
	first := true
	_, err := s.UpdateKey(ctx, "h", func(k *store.Key) error {
		if first {
			first = false
			reserve(t, c, table, "h", 1)
		}
		k.MaxBudget = ptr(5.0)
		k.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetKey(ctx, "h")
	if got.Spend != 4 || got.Remaining == nil || *got.Remaining != 1 {
		t.Fatalf("spend %v remaining %v, want 4 and 1", got.Spend, got.Remaining)
	}
}

func TestUpdateKey_BudgetWindowChangeRetriesOnConcurrentSpend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	if err := s.CreateKey(ctx, newKey("h", func(k *store.Key) {
		k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 10}}
	})); err != nil {
		t.Fatal(err)
	}
	spendWindow := func(cost float64) {
		_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(table),
			Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: store.PrefixKey + "h"},
				"sk": &types.AttributeValueMemberS{Value: store.SortKey},
			},
			UpdateExpression:          aws.String("SET budget_limits[0].spend = budget_limits[0].spend + :c, budget_limits[0].remaining = budget_limits[0].remaining - :c"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberN{Value: fmtFloat(cost)}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	calls := 0
	_, err := s.UpdateKey(ctx, "h", func(k *store.Key) error {
		calls++
		if calls == 1 {
			spendWindow(4)
		}
		w := &k.BudgetLimits[0]
		w.MaxBudget = 6
		w.Remaining = w.MaxBudget - w.Spend
		k.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("change ran %d times, want 2 (one conflict, one retry)", calls)
	}
	got, _ := s.GetKey(ctx, "h")
	if w := got.BudgetLimits[0]; w.Spend != 4 || w.Remaining != 2 || w.MaxBudget != 6 {
		t.Fatalf("window = %+v, want spend 4, remaining 2, max 6", w)
	}
}

func TestUpdateKey_AliasMovesAndStaysUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	for _, k := range []*store.Key{
		newKey("a", func(k *store.Key) { k.KeyAlias = ptr("alpha") }),
		newKey("b", func(k *store.Key) { k.KeyAlias = ptr("beta") }),
	} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.UpdateKey(ctx, "a", func(k *store.Key) error { k.KeyAlias = ptr("beta"); return nil })
	if !errors.Is(err, store.ErrAliasTaken) {
		t.Fatalf("rename to a taken alias: err = %v, want ErrAliasTaken", err)
	}
	if _, err := s.UpdateKey(ctx, "a", func(k *store.Key) error { k.KeyAlias = ptr("gamma"); return nil }); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.KeyTokenByAlias(ctx, "gamma"); err != nil || tok != "a" {
		t.Errorf("alias gamma → %q, %v; want a", tok, err)
	}
	if _, err := s.KeyTokenByAlias(ctx, "alpha"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old alias still resolves: %v", err)
	}
	// The freed alias can be taken again.
	if err := s.CreateKey(ctx, newKey("c", func(k *store.Key) { k.KeyAlias = ptr("alpha") })); err != nil {
		t.Errorf("reuse of a freed alias: %v", err)
	}
}

func TestRotateKey_GracePeriodLeavesPointer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	if err := s.CreateKey(ctx, newKey("old", func(k *store.Key) {
		k.KeyAlias = ptr("svc")
		k.MaxBudget = ptr(10.0)
		k.AutoRotate, k.RotationInterval = true, ptr("30d")
	})); err != nil {
		t.Fatal(err)
	}
	reserve(t, c, table, "old", 2)
	now := time.Now().UTC()
	k, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: "old", NewToken: "new", KeyName: "sk-...wxyz", Grace: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if k.RotationCount != 1 || k.LastRotationAt == nil || k.KeyRotationAt == nil || !k.KeyRotationAt.After(now.Add(29*24*time.Hour)) {
		t.Errorf("rotation fields: count %d last %v next %v", k.RotationCount, k.LastRotationAt, k.KeyRotationAt)
	}
	got, err := s.GetKey(ctx, "new")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spend != 2 || *got.Remaining != 8 || got.KeyName != "sk-...wxyz" {
		t.Errorf("new record spend %v remaining %v name %q, want 2, 8, sk-...wxyz", got.Spend, *got.Remaining, got.KeyName)
	}
	old, err := s.GetKey(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if !old.IsPointer() || old.ActiveToken != "new" || old.RevokeAt == nil || old.Kind != "" || old.TTL == 0 {
		t.Errorf("old hash = pointer %v active %q revoke %v kind %q ttl %d", old.IsPointer(), old.ActiveToken, old.RevokeAt, old.Kind, old.TTL)
	}
	if tok, _ := s.KeyTokenByAlias(ctx, "svc"); tok != "new" {
		t.Errorf("alias → %q, want new", tok)
	}
	if _, n, _ := s.ListKeys(ctx, store.KeyFilter{}, store.Page{Number: 1, Size: 10}); n != 1 {
		t.Errorf("listed %d keys, want 1 (pointers are not keys)", n)
	}
}

func TestRotateKey_WithoutGraceDeletesOldHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	if err := s.CreateKey(ctx, newKey("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, store.RotateKeyInput{OldToken: "old", NewToken: "new", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetKey(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old hash: err = %v, want ErrNotFound", err)
	}
}

// createKeys creates n keys k0..k<n-1>, each changed by edit first.
func createKeys(t *testing.T, s *store.Store, n int, edit func(i int, k *store.Key)) {
	t.Helper()
	for i := range n {
		if err := s.CreateKey(t.Context(), newKey("k"+fmtInt(i), func(k *store.Key) { edit(i, k) })); err != nil {
			t.Fatal(err)
		}
	}
}

func TestListKeys_PagesByOwnerNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	base := time.Now().UTC()
	createKeys(t, s, 5, func(i int, k *store.Key) {
		k.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if i%2 == 0 {
			k.UserID = ptr("u")
		} else {
			k.TeamID = ptr("t")
		}
	})
	tests := []struct {
		name  string
		f     store.KeyFilter
		p     store.Page
		want  []string
		total int
	}{
		{"all, first page", store.KeyFilter{}, store.Page{Number: 1, Size: 2, Desc: true}, []string{"k4", "k3"}, 5},
		{"all, last page", store.KeyFilter{}, store.Page{Number: 3, Size: 2, Desc: true}, []string{"k0"}, 5},
		{"by user", store.KeyFilter{UserID: "u"}, store.Page{Number: 1, Size: 10}, []string{"k0", "k2", "k4"}, 3},
		{"by team", store.KeyFilter{TeamID: "t"}, store.Page{Number: 1, Size: 10, Desc: true}, []string{"k3", "k1"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, total, err := s.ListKeys(ctx, tt.f, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.Token)
			}
			if total != tt.total || !equal(got, tt.want) {
				t.Errorf("got %v (total %d), want %v (total %d)", got, total, tt.want, tt.total)
			}
		})
	}
}

// CountKeys counts the keys of a filter without reading them, up to a limit: past it, it
// says there are more (the console's Keys card shows "1,000+" rather than reading every key).
func TestCountKeys_CountsUpToTheLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	createKeys(t, s, 5, func(i int, k *store.Key) {
		if i%2 == 0 {
			k.UserID = ptr("u")
		}
		if i%2 == 1 || i == 4 {
			k.TeamID = ptr("t")
		}
	})
	tests := []struct {
		name     string
		f        store.KeyFilter
		limit    int
		want     int
		wantMore bool
	}{
		{"all, under the limit", store.KeyFilter{}, 10, 5, false},
		{"all, exactly the limit", store.KeyFilter{}, 5, 5, false},
		{"all, over the limit", store.KeyFilter{}, 3, 3, true},
		{"by user", store.KeyFilter{UserID: "u"}, 10, 3, false},
		{"by team", store.KeyFilter{TeamID: "t"}, 10, 3, false},
		{"by user and team", store.KeyFilter{UserID: "u", TeamID: "t"}, 10, 1, false},
		{"nobody's", store.KeyFilter{UserID: "nobody"}, 10, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, more, err := s.CountKeys(ctx, tt.f, tt.limit)
			if err != nil || n != tt.want || more != tt.wantMore {
				t.Errorf("CountKeys(%+v, %d) = %d, %v, %v; want %d, %v", tt.f, tt.limit, n, more, err, tt.want, tt.wantMore)
			}
		})
	}
}

func TestDeleteKeys_RemovesKeysAndAliases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	var keys []*store.Key
	for i := range 60 { // more than one transaction's worth of writes
		k := newKey("k"+fmtInt(i), func(k *store.Key) { k.KeyAlias = ptr("a" + fmtInt(i)) })
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := s.DeleteKeys(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := s.ListKeys(ctx, store.KeyFilter{}, store.Page{Number: 1, Size: 1}); n != 0 {
		t.Errorf("%d keys left", n)
	}
	if _, err := s.KeyTokenByAlias(ctx, "a59"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alias left behind: %v", err)
	}
}

func TestListKeys_PageOverOneBatchGetReadsWholeRecordsInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	base := time.Now().UTC()
	const n = 130 // the indexes project keys only: a page of 120 takes two BatchGetItem calls
	for i := range n {
		k := newKey("k"+fmtInt(i), func(k *store.Key) {
			k.CreatedAt = base.Add(time.Duration(i) * time.Second)
			k.UserID = ptr("u")
			k.MaxBudget = ptr(float64(i))
		})
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	keys, total, err := s.ListKeys(ctx, store.KeyFilter{UserID: "u"}, store.Page{Number: 1, Size: 120, Desc: true})
	if err != nil {
		t.Fatal(err)
	}
	if total != n || len(keys) != 120 {
		t.Fatalf("got %d keys (total %d), want 120 (total %d)", len(keys), total, n)
	}
	for j, k := range keys {
		i := n - 1 - j
		if k.Token != "k"+fmtInt(i) || k.MaxBudget == nil || *k.MaxBudget != float64(i) || k.KeyName != "sk-...abcd" {
			t.Fatalf("key %d = token %q max_budget %v name %q, want k%d, %d, sk-...abcd", j, k.Token, k.MaxBudget, k.KeyName, i, i)
		}
	}
}
