package limits_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/limits"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/store"
	"github.com/llmgate/llmgate/internal/store/schema"
)

// capacity asks every DynamoDB write for its consumed capacity (per table and index:
// DynamoDB Local's TOTAL leaves the indexes out) and adds it up, with the number of round
// trips (HTTP attempts).
type capacity struct {
	mu         sync.Mutex
	trips      int
	table, gsi float64
	index      map[string]float64 // by index name
}

func (c *capacity) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		if err := s.Initialize.Add(middleware.InitializeMiddlewareFunc("consumedCapacity",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch p := in.Parameters.(type) {
				case *dynamodb.TransactWriteItemsInput:
					p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
				case *dynamodb.PutItemInput:
					p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
				case *dynamodb.UpdateItemInput:
					p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
				}
				out, md, err := next.HandleInitialize(ctx, in)
				var used []types.ConsumedCapacity
				switch r := out.Result.(type) {
				case *dynamodb.TransactWriteItemsOutput:
					used = r.ConsumedCapacity
				case *dynamodb.PutItemOutput:
					if r.ConsumedCapacity != nil {
						used = []types.ConsumedCapacity{*r.ConsumedCapacity}
					}
				case *dynamodb.UpdateItemOutput:
					if r.ConsumedCapacity != nil {
						used = []types.ConsumedCapacity{*r.ConsumedCapacity}
					}
				}
				c.mu.Lock()
				for _, u := range used {
					if u.Table != nil {
						c.table += aws.ToFloat64(u.Table.CapacityUnits)
					}
					for name, g := range u.GlobalSecondaryIndexes {
						c.gsi += aws.ToFloat64(g.CapacityUnits)
						if c.index == nil {
							c.index = map[string]float64{}
						}
						c.index[name] += aws.ToFloat64(g.CapacityUnits)
					}
				}
				c.mu.Unlock()
				return out, md, err
			}), middleware.After); err != nil {
			return err
		}
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("roundTrips",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				switch awsmiddleware.GetOperationName(ctx) {
				case "TransactWriteItems", "PutItem", "UpdateItem":
					c.mu.Lock()
					c.trips++
					c.mu.Unlock()
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

func (c *capacity) reset() {
	c.mu.Lock()
	c.trips, c.table, c.gsi, c.index = 0, 0, 0, nil
	c.mu.Unlock()
}

// TestReserve_RewritesNoIndexEntryOfTheChargedRecords: the records a call charges are in the
// by_kind, by_user, by_team and due_reset indexes, which project only keys, so changing their
// counters writes no index entry; only the reservation's own entry in due_expire is written.
func TestReserve_RewritesNoIndexEntryOfTheChargedRecords(t *testing.T) {
	ctx := context.Background()
	c := &capacity{}
	st := store.NewWithClient(dynamotest.NewTable(t, c.option))
	cfg := &config.Config{}
	cfg.Settings.ReservationTTL = config.Duration(time.Minute)
	lim := limits.New(st, cfg)
	reset := time.Now().Add(time.Hour).UTC()
	p := benchCaller(t, st, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
		k.MaxBudget, u.MaxBudget, tm.MaxBudget, m.MaxBudget = ptr(1e6), ptr(1e6), ptr(1e6), ptr(1e6)
		k.BudgetDuration, k.BudgetResetAt = "1d", &reset
		k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 1e6, ResetAt: &reset}}
	})
	c.reset()
	res, err := lim.Reserve(ctx, p, llmcall.Charge{RequestID: "r1", Route: "/chat/completions", Model: "gpt-4o", Cost: 0.001, PromptTokens: 10, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	for name, cu := range c.index {
		if name != schema.IndexDueExpire && cu != 0 {
			t.Errorf("reserve wrote %v capacity units to index %s, want 0 (only %s)", cu, name, schema.IndexDueExpire)
		}
	}
	if c.index[schema.IndexDueExpire] == 0 {
		t.Errorf("reserve wrote no %s entry; index capacity %v", schema.IndexDueExpire, c.index)
	}
	if err := res.Settle(ctx, outcome(0.0005, 50)); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReserveSettle measures one call's reserve and settle on DynamoDB Local: latency,
// round trips and consumed capacity units per request.
func BenchmarkReserveSettle(b *testing.B) {
	scenarios := []struct {
		name string
		mod  func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership)
	}{
		{"key budget only", func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			k.TeamID = nil
			k.MaxBudget = ptr(1e6)
		}},
		{"key+user+team+member budgets, window, rpm, tpm, parallel", func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			k.MaxBudget, u.MaxBudget, tm.MaxBudget, m.MaxBudget = ptr(1e6), ptr(1e6), ptr(1e6), ptr(1e6)
			k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 1e6}}
			k.RPMLimit, k.TPMLimit, k.MaxParallelRequests = ptr(int64(1e9)), ptr(int64(1e12)), ptr(int64(1e6))
		}},
	}
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			ctx := context.Background()
			c := &capacity{}
			st := store.NewWithClient(dynamotest.NewTable(b, c.option))
			cfg := &config.Config{}
			cfg.Settings.ReservationTTL = config.Duration(time.Minute)
			lim := limits.New(st, cfg)
			p := benchCaller(b, st, sc.mod)
			run := func(i int) {
				ch := llmcall.Charge{RequestID: fmt.Sprintf("%s-%d", b.Name(), i), Route: "/chat/completions", Model: "gpt-4o", Cost: 0.001, PromptTokens: 10, MaxTokens: 100}
				res, err := lim.Reserve(ctx, p, ch)
				if err != nil {
					b.Fatal(err)
				}
				if err := res.Settle(ctx, outcome(0.0005, 50)); err != nil {
					b.Fatal(err)
				}
			}
			run(-1) // warm up the connection and DynamoDB Local
			c.reset()
			b.ResetTimer()
			for i := range b.N {
				run(i)
			}
			b.StopTimer()
			b.ReportMetric(float64(c.trips)/float64(b.N), "roundtrips/op")
			b.ReportMetric(c.table/float64(b.N), "table-CU/op")
			b.ReportMetric(c.gsi/float64(b.N), "index-CU/op")
		})
	}
}

// benchCaller creates the records of a caller and reads them back as auth would.
func benchCaller(b testing.TB, st *store.Store, mod func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership)) *auth.Principal {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	k := &store.Key{Token: "bench-key", KeyName: "sk-...abcd", UserID: ptr("u1"), TeamID: ptr("t1"), Models: []string{}, Aliases: map[string]string{}, Metadata: map[string]any{}}
	u := &store.User{UserID: "u1", UserRole: auth.RoleInternalUser, Models: []string{}, Teams: []string{"t1"}, Metadata: map[string]any{}}
	tm := &store.Team{TeamID: "t1", Admins: []string{}, Members: []string{}, MembersWithRoles: []store.Member{}, Models: []string{}, Metadata: map[string]any{}}
	m := &store.Membership{TeamID: "t1", UserID: "u1"}
	k.CreatedAt, u.CreatedAt, tm.CreatedAt = now, now, now
	mod(k, u, tm, m)
	tx := st.Tx()
	for _, err := range []error{tx.PutKey(k), tx.PutUser(u), tx.PutTeam(tm), tx.PutMembership(m)} {
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	p := &auth.Principal{Role: auth.RoleInternalUser, UserID: "u1", Token: k.Token, Key: k, User: u}
	if k.TeamID != nil {
		p.Team = tm
		if m.MaxBudget != nil {
			p.Membership = m
		}
	}
	return p
}
