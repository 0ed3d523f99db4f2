package rotation_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
)

// budgetKey returns a key with max_budget 10 of which spend has used 7, resetting at resetAt.
func budgetKey(token, dur string, resetAt time.Time, mods ...func(*store.Key)) *store.Key {
	k := &store.Key{Token: token, KeyName: "sk-...test"}
	k.MaxBudget, k.Spend = ptr(10.0), 7
	k.BudgetDuration, k.BudgetResetAt = dur, &resetAt
	k.CreatedAt, k.UpdatedAt = resetAt.Add(-time.Hour), resetAt.Add(-time.Hour)
	for _, m := range mods {
		m(k)
	}
	return k
}

func createKeys(t *testing.T, st *store.Store, keys ...*store.Key) {
	t.Helper()
	for _, k := range keys {
		if err := st.CreateKey(context.Background(), k); err != nil {
			t.Fatalf("CreateKey(%s): %v", k.Token, err)
		}
	}
}

func TestRun_ResetsEachDurationFormAlignedInTheTimeZone(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		dur      string
		loc      *time.Location
		resetAt  time.Time // the due reset
		now      time.Time // the run
		wantNext time.Time
	}{
		{"30s on the half minute", "30s", nil, utc(2026, 3, 31, 23, 59, 30), utc(2026, 3, 31, 23, 59, 41), utc(2026, 4, 1, 0, 0, 0)},
		{"15m on the quarter hour", "15m", nil, utc(2026, 1, 31, 23, 45, 0), utc(2026, 1, 31, 23, 46, 0), utc(2026, 2, 1, 0, 0, 0)},
		{"6h boundary", "6h", nil, utc(2026, 5, 5, 12, 0, 0), utc(2026, 5, 5, 13, 1, 0), utc(2026, 5, 5, 18, 0, 0)},
		{"1h in Kolkata (UTC+5:30) keeps the half hour", "1h", kolkata, utc(2026, 5, 5, 10, 30, 0), utc(2026, 5, 5, 10, 31, 0), utc(2026, 5, 5, 11, 30, 0)},
		{"1d is the next midnight in Berlin", "1d", berlin, utc(2026, 1, 30, 23, 0, 0), utc(2026, 1, 30, 23, 0, 5), utc(2026, 1, 31, 23, 0, 0)},
		{"1d across the DST change in Berlin", "1d", berlin, utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 28, 23, 1, 0), utc(2026, 3, 29, 22, 0, 0)},
		{"1d run late still aligns to midnight", "1d", nil, utc(2026, 2, 27, 0, 0, 0), utc(2026, 2, 28, 13, 0, 0), utc(2026, 3, 1, 0, 0, 0)},
		{"3d counts from today's midnight", "3d", nil, utc(2026, 2, 27, 0, 0, 0), utc(2026, 2, 27, 8, 0, 0), utc(2026, 3, 2, 0, 0, 0)},
		{"7d is next Monday", "7d", nil, utc(2026, 11, 30, 0, 0, 0), utc(2026, 11, 30, 0, 0, 1), utc(2026, 12, 7, 0, 0, 0)},
		{"30d is the first of next month", "30d", nil, utc(2026, 12, 1, 0, 0, 0), utc(2026, 12, 31, 23, 0, 0), utc(2027, 1, 1, 0, 0, 0)},
		{"30d in Berlin is Berlin's first", "30d", berlin, utc(2026, 1, 31, 23, 0, 0), utc(2026, 1, 31, 23, 30, 0), utc(2026, 2, 28, 23, 0, 0)},
		{"1mo clamps Jan 31 to Feb 28", "1mo", nil, utc(2026, 1, 31, 0, 0, 0), utc(2026, 1, 31, 0, 0, 2), utc(2026, 2, 28, 0, 0, 0)},
		{"1mo across the year end", "1mo", nil, utc(2026, 12, 15, 0, 0, 0), utc(2026, 12, 15, 0, 1, 0), utc(2027, 1, 15, 0, 0, 0)},
		{"2w is midnight two weeks on", "2w", nil, utc(2026, 5, 5, 0, 0, 0), utc(2026, 5, 5, 10, 0, 0), utc(2026, 5, 19, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t)
			createKeys(t, st, budgetKey("k", tt.dur, tt.resetAt))
			c := newClock(tt.now)
			r, _ := newRotator(st, c, nil, func(o *rotation.Options) { o.Location = tt.loc })

			if rep := run(t, r); rep.Resets != 1 || rep.Failures != 0 {
				t.Fatalf("first run: %+v, want 1 reset and no failure", rep)
			}
			k := getKey(t, st, "k")
			if k.Spend != 0 || k.Remaining == nil || *k.Remaining != 10 {
				t.Errorf("after the reset spend = %v, remaining = %v; want 0 and 10", k.Spend, k.Remaining)
			}
			if !sameTime(k.BudgetResetAt, &tt.wantNext) {
				t.Errorf("budget_reset_at = %v, want %v", k.BudgetResetAt, tt.wantNext)
			}
			if k.ResetAt != tt.wantNext.Unix() {
				t.Errorf("due_reset time = %d, want %d", k.ResetAt, tt.wantNext.Unix())
			}
			if rep := run(t, r); rep.Resets != 0 {
				t.Errorf("second run at the same time: %d resets, want 0", rep.Resets)
			}
			c.Set(tt.wantNext)
			if rep := run(t, r); rep.Resets != 1 {
				t.Errorf("run at the next reset: %d resets, want 1", rep.Resets)
			}
		})
	}
}

func TestRun_ResetsOnlyTheDueWindowsAndModelBudgets(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	now := utc(2026, 6, 10, 14, 0, 30)
	due, later := utc(2026, 6, 10, 14, 0, 0), utc(2026, 7, 1, 0, 0, 0)
	createKeys(t, st, budgetKey("k", "1mo", utc(2026, 7, 10, 0, 0, 0), func(k *store.Key) {
		k.BudgetLimits = []store.BudgetWindow{
			{BudgetDuration: "1h", MaxBudget: 5, Spend: 2, ResetAt: &due},
			{BudgetDuration: "30d", MaxBudget: 100, Spend: 50, ResetAt: &later},
		}
		k.ModelMaxBudget = map[string]store.ModelBudget{
			"gpt-4o":     {BudgetLimit: 0.5, TimePeriod: "1d", Spend: 0.3, ResetAt: &due},
			"claude-3-5": {BudgetLimit: 2, TimePeriod: "30d", Spend: 1.5, ResetAt: &later},
		}
	}))
	r, _ := newRotator(st, newClock(now), nil, nil)
	if rep := run(t, r); rep.Resets != 1 {
		t.Fatalf("run: %+v, want 1 reset", rep)
	}
	k := getKey(t, st, "k")
	if k.Spend != 7 || *k.Remaining != 3 || !k.BudgetResetAt.Equal(utc(2026, 7, 10, 0, 0, 0)) {
		t.Errorf("key budget = spend %v remaining %v reset %v; want it untouched (7, 3, July 10)", k.Spend, *k.Remaining, k.BudgetResetAt)
	}
	w := k.BudgetLimits
	if w[0].Spend != 0 || w[0].Remaining != 5 || !w[0].ResetAt.Equal(utc(2026, 6, 10, 15, 0, 0)) {
		t.Errorf("1h window = %+v; want spend 0, remaining 5, next reset 15:00", w[0])
	}
	if w[1].Spend != 50 || w[1].Remaining != 50 || !w[1].ResetAt.Equal(later) {
		t.Errorf("30d window = %+v; want it untouched", w[1])
	}
	m := k.ModelMaxBudget
	if g := m["gpt-4o"]; g.Spend != 0 || g.Remaining != 0.5 || !g.ResetAt.Equal(utc(2026, 6, 11, 0, 0, 0)) {
		t.Errorf("gpt-4o budget = %+v; want spend 0, remaining 0.5, next reset midnight", g)
	}
	if c := m["claude-3-5"]; c.Spend != 1.5 || !c.ResetAt.Equal(later) {
		t.Errorf("claude-3-5 budget = %+v; want it untouched", c)
	}
	if k.ResetAt != utc(2026, 6, 10, 15, 0, 0).Unix() {
		t.Errorf("due_reset time = %v, want the earliest reset left (15:00)", time.Unix(k.ResetAt, 0).UTC())
	}
}

func TestRun_ResetsUsersTeamsAndMemberships(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	due := utc(2026, 6, 1, 0, 0, 0)
	b := store.Budget{MaxBudget: ptr(20.0), Spend: 12, BudgetDuration: "1d", BudgetResetAt: &due}
	created := store.Audit{CreatedAt: due.Add(-time.Hour), UpdatedAt: due.Add(-time.Hour)}
	tx := st.Tx()
	if err := tx.PutUser(&store.User{UserID: "u1", UserRole: "internal_user", Budget: b, Audit: created}); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutTeam(&store.Team{TeamID: "t1", Budget: b, Audit: created,
		BudgetLimits: []store.BudgetWindow{{BudgetDuration: "1h", MaxBudget: 4, Spend: 4, ResetAt: &due}}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutMembership(&store.Membership{TeamID: "t1", UserID: "u1", Budget: b}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := newRotator(st, newClock(due.Add(time.Minute)), nil, nil)
	if rep := run(t, r); rep.Resets != 3 || rep.Failures != 0 {
		t.Fatalf("run: %+v, want 3 resets (user, team, membership)", rep)
	}
	for _, ref := range []store.Ref{{PK: "USER#u1", SK: "USER"}, {PK: "TEAM#t1", SK: "TEAM"}, {PK: "TEAM#t1", SK: "MEMBER#u1"}} {
		rec := budgetRecord(t, st, ref.PK, ref.SK)
		if rec.Spend != 0 || rec.Remaining == nil || *rec.Remaining != 20 || !rec.BudgetResetAt.Equal(utc(2026, 6, 2, 0, 0, 0)) {
			t.Errorf("%s %s: spend %v remaining %v reset %v; want 0, 20, June 2", ref.PK, ref.SK, rec.Spend, rec.Remaining, rec.BudgetResetAt)
		}
	}
	if w := budgetRecord(t, st, "TEAM#t1", "TEAM").BudgetLimits[0]; w.Spend != 0 || w.Remaining != 4 {
		t.Errorf("team window = %+v, want spend 0, remaining 4", w)
	}
}

func TestRun_ReservationInFlightAcrossAResetCountsInTheNewPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	due := utc(2026, 6, 1, 0, 0, 0)
	k := budgetKey("k", "1d", due, func(k *store.Key) { // spend 7 of 10
		k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1h", MaxBudget: 5, Spend: 3, ResetAt: &due}}
		k.ModelMaxBudget = map[string]store.ModelBudget{"gpt-4o": {BudgetLimit: 4, TimePeriod: "1d", Spend: 1, ResetAt: &due}}
	})
	createKeys(t, st, k)
	before := due.Add(-time.Second)
	res, err := st.Reserve(ctx, store.ReserveInput{
		RequestID: "req-1", Key: getKey(t, st, "k"), Model: "gpt-4o", Cost: 2, Estimate: 2,
		Now: before, TTL: time.Hour, Log: store.SpendLog{RequestID: "req-1", APIKey: "k", Model: "gpt-4o", StartTime: before},
	})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}

	r, _ := newRotator(st, newClock(due.Add(time.Second)), nil, nil)
	if rep := run(t, r); rep.Resets != 1 {
		t.Fatalf("run: %+v, want 1 reset", rep)
	}
	got := getKey(t, st, "k")
	w, m := got.BudgetLimits[0], got.ModelMaxBudget["gpt-4o"]
	if got.Spend != 2 || *got.Remaining != 8 || w.Spend != 2 || w.Remaining != 3 || m.Spend != 2 || m.Remaining != 2 {
		t.Errorf("after the reset (spend, remaining): key %v %v, window %v %v, model %v %v; want the 2 still reserved kept: 2 8, 2 3, 2 2",
			got.Spend, *got.Remaining, w.Spend, w.Remaining, m.Spend, m.Remaining)
	}

	if err := st.Settle(ctx, res, store.Settlement{Cost: 0.5}); err != nil { // cheaper than reserved
		t.Fatalf("Settle: %v", err)
	}
	got = getKey(t, st, "k")
	w, m = got.BudgetLimits[0], got.ModelMaxBudget["gpt-4o"]
	if got.Spend != 0.5 || *got.Remaining != 9.5 || w.Spend != 0.5 || w.Remaining != 4.5 || m.Spend != 0.5 || m.Remaining != 3.5 || w.Reserved != 0 || m.Reserved != 0 {
		t.Errorf("after the settle: key %v %v, window %+v, model %+v; want the call's 0.5 in the new period, nothing reserved, never negative",
			got.Spend, *got.Remaining, w, m)
	}
}

func TestRun_ParallelRunsResetEachRecordOnce(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	due := utc(2026, 6, 1, 0, 0, 0)
	const n = 30
	for i := range n {
		createKeys(t, st, budgetKey(fmt.Sprintf("k%02d", i), "1h", due))
	}
	c := newClock(due.Add(time.Minute))
	var wg sync.WaitGroup
	reports := make([]rotation.Report, 3)
	for i := range reports {
		r, _ := newRotator(st, c, nil, nil)
		wg.Go(func() { reports[i], _ = r.Run(context.Background()) })
	}
	wg.Wait()
	total := 0
	for _, rep := range reports {
		total += rep.Resets
		if rep.Failures != 0 {
			t.Errorf("a run failed: %+v", rep)
		}
	}
	if total != n {
		t.Errorf("resets over 3 parallel runs = %d, want %d (each record once)", total, n)
	}
	for i := range n {
		k := getKey(t, st, fmt.Sprintf("k%02d", i))
		if k.Spend != 0 || !k.BudgetResetAt.Equal(utc(2026, 6, 1, 1, 0, 0)) {
			t.Errorf("key %d: spend %v, next reset %v; want 0 and 01:00", i, k.Spend, k.BudgetResetAt)
		}
	}
}

func TestRun_InterruptedRunIsCompletedByTheNext(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	due := utc(2026, 6, 1, 0, 0, 0)
	const n = 5
	for i := range n {
		createKeys(t, st, budgetKey(fmt.Sprintf("k%d", i), "1d", due))
	}
	r, _ := newRotator(st, newClock(due.Add(time.Minute)), nil, func(o *rotation.Options) { o.Limit = 1 })
	total := 0
	for i := range n {
		rep := run(t, r)
		if rep.Resets != 1 || i < n-1 && !rep.More {
			t.Fatalf("run %d: %+v, want 1 reset and more left", i, rep)
		}
		total += rep.Resets
	}
	if rep := run(t, r); rep.Resets != 0 || rep.More {
		t.Errorf("run after all were reset: %+v, want nothing done and nothing left", rep)
	}
	if total != n {
		t.Errorf("resets = %d, want %d", total, n)
	}
}

func TestRun_BadDurationIsAFailureAndLeavesTheBudget(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	due := utc(2026, 6, 1, 0, 0, 0)
	createKeys(t, st, budgetKey("k", "1d", due, func(k *store.Key) {
		k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "fortnight", MaxBudget: 5, Spend: 1, ResetAt: &due}}
	}))
	r, logs := newRotator(st, newClock(due.Add(time.Minute)), nil, nil)
	rep := run(t, r)
	if rep.Resets != 0 || rep.Failures != 1 {
		t.Errorf("run: %+v, want 0 resets and 1 failure", rep)
	}
	if k := getKey(t, st, "k"); k.Spend != 7 {
		t.Errorf("spend = %v, want 7 untouched", k.Spend)
	}
	if got := logs.String(); !strings.Contains(got, `"failures":1`) || !strings.Contains(got, "budget_limits[0].budget_duration") {
		t.Errorf("log = %s; want the failure counted and its reason", got)
	}
}

func TestRun_ResetsTheProxyBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	start := utc(2026, 6, 1, 10, 0, 0)
	// A call charges the proxy budget (litellm_settings.max_budget: 10), creating its item.
	res, err := st.Reserve(ctx, store.ReserveInput{
		RequestID: "req-1", Model: "gpt-4o", Cost: 3, Estimate: 3, ProxyMaxBudget: ptr(10.0),
		Now: start, TTL: time.Hour, Log: store.SpendLog{RequestID: "req-1", Model: "gpt-4o", StartTime: start},
	})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := st.Settle(ctx, res, store.Settlement{Cost: 3}); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	c := newClock(start)
	r, _ := newRotator(st, c, nil, func(o *rotation.Options) { o.ProxyBudget, o.ProxyBudgetDuration = true, "1d" })
	if rep := run(t, r); rep.Resets != 0 {
		t.Fatalf("first run: %+v, want the schedule set and nothing reset yet", rep)
	}
	proxy := budgetRecord(t, st, store.ProxyBudgetPK, store.SortProxyBudget)
	if !sameTime(proxy.BudgetResetAt, ptr(utc(2026, 6, 2, 0, 0, 0))) || proxy.Spend != 3 {
		t.Fatalf("proxy budget = spend %v, next reset %v; want 3 and the next midnight", proxy.Spend, proxy.BudgetResetAt)
	}
	c.Set(utc(2026, 6, 2, 0, 0, 30))
	if rep := run(t, r); rep.Resets != 1 {
		t.Fatalf("run at midnight: %+v, want the proxy budget reset", rep)
	}
	proxy = budgetRecord(t, st, store.ProxyBudgetPK, store.SortProxyBudget)
	if proxy.Spend != 0 || proxy.Remaining == nil || *proxy.Remaining != 10 || !sameTime(proxy.BudgetResetAt, ptr(utc(2026, 6, 3, 0, 0, 0))) {
		t.Errorf("proxy budget after the reset = spend %v, remaining %v, next %v; want 0, 10, June 3", proxy.Spend, proxy.Remaining, proxy.BudgetResetAt)
	}
}

func TestRunEvery_RunsNowThenOnTheIntervalUntilCancelled(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	r, logs := newRotator(st, newClock(utc(2026, 6, 1, 0, 0, 0)), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.RunEvery(ctx, 20*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), `"msg":"rotator run"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 runs in 10s: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunEvery did not return after its context was cancelled")
	}
}

// One record that cannot be reset is skipped for a while, never holding the head of the
// queue, and a record with many windows is reset in several writes. On the old code the
// bad records (at least Limit in every shard, the oldest due) failed at the head of each
// run, so no other record was ever reset, and a record with 100 windows failed every run
// with "Expression size has exceeded".
func TestRun_FailingAndHugeRecordsDoNotBlockTheRest(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	due := utc(2026, 6, 1, 0, 0, 0)
	const limit = 2
	forEveryShard(limit, func(token string) {
		createKeys(t, st, budgetKey(token, "1d", due.Add(-2*time.Hour), func(k *store.Key) {
			k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "fortnight", MaxBudget: 5, Spend: 1, ResetAt: ptr(due.Add(-2 * time.Hour))}}
		}))
	})
	createKeys(t, st, budgetKey("many", "1d", due.Add(-time.Hour), func(k *store.Key) {
		for range 100 {
			k.BudgetLimits = append(k.BudgetLimits, store.BudgetWindow{BudgetDuration: "1s", MaxBudget: 5, Spend: 2, Remaining: 3, ResetAt: ptr(due.Add(-time.Hour))})
		}
	}), budgetKey("plain", "1d", due))
	r, _ := newRotator(st, newClock(due.Add(time.Minute)), nil, func(o *rotation.Options) { o.Limit = limit })
	failures := 0
	for range store.Shards + 1 { // limit bad records per shard and 2 good ones, limit per run
		failures += run(t, r).Failures
	}
	if k := getKey(t, st, "plain"); k.Spend != 0 {
		t.Errorf("plain: spend = %v, want 0 (reset)", k.Spend)
	}
	k := getKey(t, st, "many")
	for i, w := range k.BudgetLimits {
		if w.Spend != 0 || w.Remaining != 5 || !w.ResetAt.After(due) {
			t.Fatalf("many: window %d = %+v, want reset", i, w)
		}
	}
	if k.Spend != 0 {
		t.Errorf("many: spend = %v, want 0 (reset)", k.Spend)
	}
	if want := store.Shards * limit; failures != want {
		t.Errorf("%d failures, want %d: each bad record once, then deferred", failures, want)
	}
}
