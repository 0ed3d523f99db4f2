package store_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/store"
)

// account records for reservation tests: a key of user u1 in team t1 with a membership.
type accounts struct {
	key    *store.Key
	user   *store.User
	team   *store.Team
	member *store.Membership
}

func newAccounts(t *testing.T, s *store.Store, mods func(*accounts)) *accounts {
	t.Helper()
	now := time.Now().UTC()
	a := &accounts{
		key:    newKey("h-" + t.Name()),
		user:   &store.User{UserID: "u1", UserRole: "internal_user", Models: []string{}, Teams: []string{"t1"}, Metadata: map[string]any{}},
		team:   &store.Team{TeamID: "t1", Admins: []string{}, Members: []string{}, MembersWithRoles: []store.Member{}, Models: []string{}, Metadata: map[string]any{}},
		member: &store.Membership{TeamID: "t1", UserID: "u1"},
	}
	a.key.UserID, a.key.TeamID = ptr("u1"), ptr("t1")
	a.user.CreatedAt, a.team.CreatedAt = now, now
	if mods != nil {
		mods(a)
	}
	tx := s.Tx()
	for _, err := range []error{tx.PutKey(a.key), tx.PutUser(a.user), tx.PutTeam(a.team), tx.PutMembership(a.member)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatalf("create accounts: %v", err)
	}
	return a
}

func (a *accounts) input(id string, cost float64) store.ReserveInput {
	now := time.Now()
	return store.ReserveInput{
		RequestID: id, Key: a.key, User: a.user, Team: a.team, Membership: a.member,
		Model: "gpt-4o", Cost: cost, Estimate: cost, Now: now, TTL: time.Minute,
		Log: store.SpendLog{RequestID: id, APIKey: a.key.Token, User: "u1", TeamID: "t1", Model: "gpt-4o", StartTime: now.UTC()},
	}
}

func (a *accounts) spends(t *testing.T, s *store.Store) (key, user, team, member float64) {
	t.Helper()
	ctx := context.Background()
	k, err := s.GetKey(ctx, a.key.Token)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.GetUser(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := s.GetTeam(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.Memberships(ctx, "t1")
	if err != nil || len(ms) != 1 {
		t.Fatalf("memberships: %v, %v", ms, err)
	}
	return k.Spend, u.Spend, tm.Spend, ms[0].Spend
}

func TestReserveSettle_ChargesReservedThenActualCost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, func(a *accounts) {
		a.key.MaxBudget = ptr(10.0)
		a.key.MaxParallelRequests = ptr(int64(2))
		a.key.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 5}}
		a.key.ModelMaxBudget = map[string]store.ModelBudget{"gpt-4o": {BudgetLimit: 3}}
		a.user.MaxBudget = ptr(20.0)
		a.team.MaxBudget = ptr(30.0)
		a.member.MaxBudget = ptr(40.0)
	})
	r, err := s.Reserve(ctx, a.input("req-1", 0.5))
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	k, _ := s.GetKey(ctx, a.key.Token)
	if k.Spend != 0.5 || *k.Remaining != 9.5 || k.BudgetLimits[0].Remaining != 4.5 || k.ModelMaxBudget["gpt-4o"].Remaining != 2.5 || k.Inflight != 1 {
		t.Errorf("after reserve: spend %v remaining %v window %v model %v inflight %v; want 0.5 9.5 4.5 2.5 1",
			k.Spend, *k.Remaining, k.BudgetLimits[0].Remaining, k.ModelMaxBudget["gpt-4o"].Remaining, k.Inflight)
	}
	log := store.SpendLog{RequestID: "req-1", APIKey: a.key.Token, User: "u1", TeamID: "t1", Model: "gpt-4o", Status: store.StatusSuccess, StartTime: time.Now().UTC()}
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.2, Tokens: 30, Log: &log}); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	k, _ = s.GetKey(ctx, a.key.Token)
	if k.Spend != 0.2 || *k.Remaining != 9.8 || k.BudgetLimits[0].Spend != 0.2 || k.ModelMaxBudget["gpt-4o"].Spend != 0.2 || k.Inflight != 0 || k.ModelSpend["gpt-4o"] != 0.2 {
		t.Errorf("after settle: spend %v remaining %v window %v model budget %v inflight %v model_spend %v; want 0.2 9.8 0.2 0.2 0 0.2",
			k.Spend, *k.Remaining, k.BudgetLimits[0].Spend, k.ModelMaxBudget["gpt-4o"].Spend, k.Inflight, k.ModelSpend)
	}
	ks, us, ts, ms := a.spends(t, s)
	if ks != 0.2 || us != 0.2 || ts != 0.2 || ms != 0.2 {
		t.Errorf("spends key %v user %v team %v member %v, want 0.2 each", ks, us, ts, ms)
	}
	got, err := s.GetSpendLog(ctx, "req-1")
	if err != nil {
		t.Fatalf("GetSpendLog: %v", err)
	}
	if got.Spend != 0.2 || got.APIKey != a.key.Token || got.Status != store.StatusSuccess {
		t.Errorf("spend log = %+v, want spend 0.2, the key's hash, success", got)
	}
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.2, Log: &log}); !errors.Is(err, store.ErrSettled) {
		t.Errorf("second Settle = %v, want ErrSettled", err)
	}
	if ks2, _, _, _ := a.spends(t, s); ks2 != 0.2 {
		t.Errorf("key spend after a second settle = %v, want 0.2", ks2)
	}
}

func TestReserve_RefusesWithTheRefusingItemsValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mods  func(*accounts)
		check store.Check
		cost  float64
		want  store.Refusal
	}{
		{"key budget", func(a *accounts) { a.key.MaxBudget = ptr(1.0); a.key.Spend = 0.8 }, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonBudget, Scope: store.ScopeKey, Spend: 0.8, Max: 1}},
		{"user budget", func(a *accounts) { a.user.MaxBudget = ptr(1.0); a.user.Spend = 0.8 }, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonBudget, Scope: store.ScopeUser, ID: "u1", Spend: 0.8, Max: 1}},
		{"team budget", func(a *accounts) { a.team.MaxBudget = ptr(1.0); a.team.Spend = 0.8 }, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonBudget, Scope: store.ScopeTeam, ID: "t1", Spend: 0.8, Max: 1}},
		{"team member budget", func(a *accounts) { a.member.MaxBudget = ptr(1.0); a.member.Spend = 0.8 }, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonBudget, Scope: store.ScopeMember, ID: "t1:u1", UserID: "u1", TeamID: "t1", Spend: 0.8, Max: 1}},
		{"key window", func(a *accounts) {
			a.key.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "30d", MaxBudget: 9}, {BudgetDuration: "1h", MaxBudget: 1, Spend: 0.9}}
		}, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonWindow, Scope: store.ScopeKey, Spend: 0.9, Max: 1, Window: "1h"}},
		{"key model budget", func(a *accounts) {
			a.key.KeyAlias = ptr("alias-1")
			a.key.ModelMaxBudget = map[string]store.ModelBudget{"gpt-4o": {BudgetLimit: 0.5, TimePeriod: "30d", Spend: 0.4}}
		}, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonModelBudget, Scope: store.ScopeKey, Spend: 0.4, Max: 0.5, Model: "gpt-4o", KeyAlias: "alias-1"}},
		{"post_hoc key at its budget", func(a *accounts) { a.key.MaxBudget = ptr(1.0); a.key.Spend = 1 }, store.CheckPostHoc, 0,
			store.Refusal{Reason: store.ReasonBudget, Scope: store.ScopeKey, Spend: 1, Max: 1}},
		{"post_hoc team over its budget", func(a *accounts) { a.team.MaxBudget = ptr(1.0); a.team.Spend = 1.5 }, store.CheckPostHoc, 0,
			store.Refusal{Reason: store.ReasonBudget, Scope: store.ScopeTeam, ID: "t1", Spend: 1.5, Max: 1}},
		{"blocked key before its budget", func(a *accounts) { a.key.Blocked = true; a.key.MaxBudget = ptr(0.0) }, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonBlocked, Scope: store.ScopeKey}},
		{"blocked team", func(a *accounts) { a.team.Blocked = true }, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonBlocked, Scope: store.ScopeTeam, ID: "t1"}},
		{"parallel requests", func(a *accounts) { a.key.MaxParallelRequests = ptr(int64(1)); a.key.Inflight = 1 }, store.CheckReserve, 0.3,
			store.Refusal{Reason: store.ReasonParallel, Scope: store.ScopeKey, Limit: 1, Used: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _, _ := newStore(t)
			a := newAccounts(t, s, tt.mods)
			// The records were created with the spend the test gives them; the cached copies
			// the limiter holds would show the same, so refusals come from the conditions.
			in := a.input("r", tt.cost)
			in.Check = tt.check
			_, err := s.Reserve(context.Background(), in)
			var ref *store.Refusal
			if !errors.As(err, &ref) {
				t.Fatalf("Reserve = %v, want a refusal", err)
			}
			want := tt.want
			if want.Scope == store.ScopeKey {
				want.ID = a.key.Token
			}
			got := *ref
			got.ResetAt = time.Time{}
			if got != want {
				t.Errorf("refusal = %+v\nwant %+v", got, want)
			}
			if ks, us, ts, ms := a.spends(t, s); ks != a.key.Spend || us != a.user.Spend || ts != a.team.Spend || ms != a.member.Spend {
				t.Errorf("a refused reservation changed spend: key %v user %v team %v member %v", ks, us, ts, ms)
			}
		})
	}
}

func TestReserve_RefusesExpiredAndDeletedKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	past := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	a := newAccounts(t, s, func(a *accounts) { a.key.Expires = &past })
	_, err := s.Reserve(ctx, a.input("r1", 0.1))
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonExpired || !ref.Expires.Equal(past) {
		t.Errorf("expired key: Reserve = %v, want an expired refusal at %v", err, past)
	}
	if err := s.DeleteKeys(ctx, []*store.Key{a.key}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Reserve(ctx, a.input("r2", 0.1))
	if !errors.As(err, &ref) || ref.Reason != store.ReasonKeyMissing {
		t.Errorf("deleted key: Reserve = %v, want a key_missing refusal", err)
	}
}

func TestReserve_FollowsRecordsChangedSinceTheyWereCached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, nil)
	cached := *a.key // the limiter's cached copy: no budget, no rpm limit
	if _, err := s.UpdateKey(ctx, a.key.Token, func(k *store.Key) error {
		k.MaxBudget, k.RPMLimit = ptr(1.0), ptr(int64(1))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	in := a.input("r1", 0.4)
	in.Key = &cached
	if _, err := s.Reserve(ctx, in); err != nil {
		t.Fatalf("Reserve with a stale cached key: %v", err)
	}
	k, _ := s.GetKey(ctx, a.key.Token)
	if k.Remaining == nil || *k.Remaining != 0.6 {
		t.Errorf("remaining = %v, want 0.6 (the new budget was charged)", k.Remaining)
	}
	in = a.input("r2", 0.1)
	in.Key = &cached
	_, err := s.Reserve(ctx, in)
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonRequests || ref.Limit != 1 {
		t.Errorf("second call with the stale copy = %v, want the new rpm_limit of 1 to refuse it", err)
	}
}

func TestReserve_ChecksAMemberBudgetSetSinceTheRecordsWereCached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, stored := range []string{"membership without a budget", "no membership"} {
		t.Run(stored, func(t *testing.T) {
			t.Parallel()
			s, _, _ := newStore(t)
			a := newAccounts(t, s, nil)
			if stored == "no membership" {
				tx := s.Tx()
				tx.DeleteMembership("t1", "u1")
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// The caller cached no budgeted membership (auth leaves it out then).
			in := a.input("r0", 0.4)
			in.Membership = nil
			if _, err := s.Reserve(ctx, in); err != nil {
				t.Fatalf("Reserve before the member budget: %v", err)
			}
			tx := s.Tx()
			m := &store.Membership{TeamID: "t1", UserID: "u1", Budget: store.Budget{MaxBudget: ptr(0.5)}}
			var err error
			if stored == "no membership" {
				err = tx.PutMembership(m)
			} else {
				err = tx.UpdateMembership(a.member, m)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("set the member budget: %v", err)
			}
			for i, want := range []bool{true, false} {
				in := a.input("r"+strconv.Itoa(i+1), 0.4)
				in.Membership = nil // still the stale cached view
				_, err := s.Reserve(ctx, in)
				var ref *store.Refusal
				switch {
				case want && err != nil:
					t.Fatalf("call %d: %v, want admitted under the member budget", i+1, err)
				case !want && (!errors.As(err, &ref) || ref.Reason != store.ReasonBudget || ref.Scope != store.ScopeMember || ref.Max != 0.5):
					t.Fatalf("call %d: %v, want refused by the member budget of 0.5", i+1, err)
				}
			}
			ms, err := s.Memberships(ctx, "t1")
			if err != nil || len(ms) != 1 || ms[0].Spend != 0.4 {
				t.Errorf("memberships %+v, %v: want the one admitted call's 0.4 reserved on the member", ms, err)
			}
		})
	}
}

func TestReserve_ProxyBudgetIsCreatedAndEnforced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, nil)
	for i, want := range []bool{true, true, false} {
		in := a.input("r"+fmtInt(i), 0.4)
		in.ProxyMaxBudget = ptr(1.0)
		_, err := s.Reserve(ctx, in)
		var ref *store.Refusal
		switch {
		case want && err != nil:
			t.Fatalf("call %d: %v", i, err)
		case !want && (!errors.As(err, &ref) || ref.Scope != store.ScopeProxy || ref.Spend != 0.8 || ref.Max != 1):
			t.Errorf("call %d = %v, want a proxy budget refusal at spend 0.8, max 1", i, err)
		}
	}
}

// A request id is reserved once while its call is in flight (the gateway's ids are random
// UUIDs; the entry held on the key record is what refuses a second reservation).
func TestReserve_RefusesARequestIDInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, nil)
	r, err := s.Reserve(ctx, a.input("same", 0.1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Reserve(ctx, a.input("same", 0.1))
	var ref *store.Refusal
	if !errors.As(err, &ref) || ref.Reason != store.ReasonDuplicate {
		t.Errorf("Reserve with a request id in flight = %v, want a duplicate refusal", err)
	}
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.1, Log: &store.SpendLog{RequestID: "same", StartTime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
}

func TestSettleStale_SettlesAnExpiredReservationOnceUnderConcurrentRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, func(a *accounts) {
		a.key.MaxBudget = ptr(1.0)
		a.key.MaxParallelRequests = ptr(int64(1))
	})
	in := a.input("crashed", 0.25)
	in.Estimate = 0.25
	r, err := s.Reserve(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.SettleStale(ctx, time.Now(), 10); err != nil || n != 0 {
		t.Fatalf("SettleStale before expiry = %d, %v; want 0", n, err)
	}
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Go(func() {
			n, err := s.SettleStale(ctx, r.ExpireAt().Add(time.Second), 10)
			if err != nil {
				t.Errorf("SettleStale: %v", err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if total := counts[0] + counts[1] + counts[2] + counts[3]; total != 1 {
		t.Errorf("concurrent runs settled %v, want 1 in total", counts)
	}
	k, _ := s.GetKey(ctx, a.key.Token)
	if k.Spend != 0.25 || *k.Remaining != 0.75 || k.Inflight != 0 {
		t.Errorf("key spend %v remaining %v inflight %v, want 0.25 0.75 0 (charged the estimate once, lease released)", k.Spend, *k.Remaining, k.Inflight)
	}
	log, err := s.GetSpendLog(ctx, "crashed")
	if err != nil || log.Status != store.StatusFailure || log.Spend != 0.25 {
		t.Errorf("spend log = %+v, %v; want a failure charging 0.25", log, err)
	}
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.1}); !errors.Is(err, store.ErrSettled) {
		t.Errorf("late Settle = %v, want ErrSettled", err)
	}
}

func TestSpendLogs_QueriesByKeyUserTeamRequestAndDate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	day := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	logs := []store.SpendLog{
		{RequestID: "a", APIKey: "k1", User: "u1", TeamID: "t1", StartTime: day, Spend: 1},
		{RequestID: "b", APIKey: "k1", User: "u1", StartTime: day.Add(time.Hour), Spend: 2},
		{RequestID: "c", APIKey: "k2", User: "u2", TeamID: "t1", StartTime: day.AddDate(0, 0, 1), Spend: 4},
		{RequestID: "d", APIKey: "k2", User: "u2", StartTime: day.AddDate(0, 0, 3), Spend: 8},
	}
	for i := range logs {
		r, err := s.Reserve(ctx, store.ReserveInput{RequestID: logs[i].RequestID, Model: "m", Now: logs[i].StartTime})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Settle(ctx, r, store.Settlement{Cost: logs[i].Spend, Log: &logs[i]}); err != nil {
			t.Fatal(err)
		}
	}
	checkSpendLogs(t, s, []spendLogQuery{
		{"by key, newest first", store.SpendLogFilter{APIKey: "k1"}, []string{"b", "a"}},
		{"by user", store.SpendLogFilter{UserID: "u2"}, []string{"d", "c"}},
		{"by team", store.SpendLogFilter{TeamID: "t1"}, []string{"c", "a"}},
		{"by key and user", store.SpendLogFilter{APIKey: "k2", UserID: "u1"}, nil},
		{"by date range", store.SpendLogFilter{Start: day.Add(30 * time.Minute), End: day.AddDate(0, 0, 2)}, []string{"c", "b"}},
		{"by key and date", store.SpendLogFilter{APIKey: "k2", Start: day.AddDate(0, 0, 2), End: day.AddDate(0, 0, 5)}, []string{"d"}},
		{"with a limit", store.SpendLogFilter{Start: day, End: day.AddDate(0, 0, 5), Limit: 3}, []string{"d", "c", "b"}},
	})
	if l, err := s.GetSpendLog(ctx, "c"); err != nil || l.Spend != 4 || l.TeamID != "t1" {
		t.Errorf("GetSpendLog(c) = %+v, %v", l, err)
	}
	if _, err := s.GetSpendLog(ctx, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSpendLog(zz) = %v, want ErrNotFound", err)
	}
}

// TestResetKeySpend_KeepsWhatCallsInFlightReserved: a reset during a call must leave its
// reservation, or its settlement (actual - reserved) takes spend below zero and remaining
// past the budget.
func TestResetKeySpend_KeepsWhatCallsInFlightReserved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	a := newAccounts(t, s, func(a *accounts) { a.key.MaxBudget = ptr(2.0) })
	r, err := s.Reserve(ctx, a.input("req-1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ResetKeySpend(ctx, a.key.Token, func(*store.Key) error { return nil }, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, r, store.Settlement{Cost: 0.1}); err != nil {
		t.Fatal(err)
	}
	k, _ := s.GetKey(ctx, a.key.Token)
	if k.Spend != 0.1 || *k.Remaining != 1.9 {
		t.Errorf("spend %v remaining %v, want 0.1 and 1.9: the call settled after the reset counts, and only it", k.Spend, *k.Remaining)
	}
}
