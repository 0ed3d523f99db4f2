package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/mototest"
	"github.com/llmgate/llmgate/internal/proctest"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dynamotest.Stop()
	mototest.Stop()
	os.Exit(code)
}

// clock is a controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func ptr[T any](v T) *T { return &v }

// forEveryShard calls create with key tokens ("bad-<i>") until every shard of the due
// indexes holds n of them: enough to fill the head of every shard for a run of limit n.
func forEveryShard(n int, create func(token string)) {
	perShard := map[string]int{}
	for i := 0; len(perShard) < store.Shards || slices.ContainsFunc(slices.Collect(maps.Values(perShard)), func(c int) bool { return c < n }); i++ {
		token := fmt.Sprintf("bad-%d", i)
		if shard := store.Shard(store.PrefixKey + token); perShard[shard] < n {
			perShard[shard]++
			create(token)
		}
	}
}

// newStore returns a store on a fresh DynamoDB Local table.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	return store.NewWithClient(dynamotest.NewTable(t))
}

// newRotator returns a rotator on st with the clock c; change adjusts the options.
func newRotator(st *store.Store, c *clock, rk *keyvault.Rekeyer, change func(*rotation.Options)) (*rotation.Rotator, *proctest.LogBuffer) {
	logs := &proctest.LogBuffer{}
	o := rotation.Options{
		Store:   st,
		Rekeyer: rk,
		Now:     c.Now,
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
	}
	if o.Rekeyer == nil {
		o.Rekeyer = keyvault.NewRekeyer(st, nil)
	}
	if change != nil {
		change(&o)
	}
	return rotation.New(o), logs
}

// run runs r once and fails the test on a run error.
func run(t *testing.T, r *rotation.Rotator) rotation.Report {
	t.Helper()
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// getKey reads a key record; nil when it is gone.
func getKey(t *testing.T, st *store.Store, token string) *store.Key {
	t.Helper()
	k, err := st.GetKey(context.Background(), token)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("GetKey: %v", err)
	}
	return k
}

func budgetRecord(t *testing.T, st *store.Store, pk, sk string) *store.BudgetRecord {
	t.Helper()
	rec, err := st.GetBudgetRecord(context.Background(), store.Ref{PK: pk, SK: sk})
	if err != nil {
		t.Fatalf("GetBudgetRecord(%s): %v", pk, err)
	}
	return rec
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
