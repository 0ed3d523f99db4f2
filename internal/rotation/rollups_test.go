package rotation_test

import (
	"context"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
)

// backlogged is a Reconciler that always settles as many stale reservations as it may, so
// some are left for the next run.
type backlogged struct{}

func (backlogged) SettleStale(_ context.Context, _ time.Time, limit int) (int, error) {
	return limit, nil
}

func TestRun_RollsUpHoursOnceReservationTTLHasPassed(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	for i, at := range []time.Time{utc(2026, 11, 3, 11, 50, 0), utc(2026, 11, 3, 12, 5, 0)} {
		l := store.SpendLog{RequestID: "r" + string(rune('a'+i)), APIKey: "k", ModelGroup: "m", Spend: 0.5, Status: store.StatusSuccess, StartTime: at}
		res, err := st.Reserve(ctx, store.ReserveInput{RequestID: l.RequestID, Model: "m", Now: at, TTL: time.Minute, Log: l})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Settle(ctx, res, store.Settlement{Cost: l.Spend, Log: &l}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClock(utc(2026, 11, 3, 12, 30, 0))
	opts := func(o *rotation.Options) { o.ReservationTTL, o.RollupBackfill = 20*time.Minute, 3*time.Hour }
	r, _ := newRotator(st, c, nil, opts)
	through := func() time.Time {
		s, err := st.RollupState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Through
	}
	// 12:30 - 20 min - the margin: hours up to 11:00 are closed; 12:00 is not.
	if rep := run(t, r); rep.Rolled != 3 || rep.RollupsDue || !through().Equal(utc(2026, 11, 3, 11, 0, 0)) {
		t.Fatalf("at 12:30 rolled %d hours through %v; want 3 (09:00-11:00)", rep.Rolled, through())
	}
	// With stale reservations left over, their logs could still land: no roll.
	c.Set(utc(2026, 11, 3, 13, 30, 0))
	rb, _ := newRotator(st, c, nil, func(o *rotation.Options) { opts(o); o.Reconciler = backlogged{} })
	if rep := run(t, rb); rep.Rolled != 0 {
		t.Fatalf("with a reconcile backlog rolled %d hours; want 0", rep.Rolled)
	}
	if rep := run(t, r); rep.Rolled != 1 || !through().Equal(utc(2026, 11, 3, 12, 0, 0)) {
		t.Fatalf("at 13:30 rolled %d hours through %v; want 12:00", rep.Rolled, through())
	}
	days, err := st.DailyRollups(ctx, store.ScopeGlobal, c.Now(), c.Now())
	if err != nil || len(days) != 1 || days[0].Total.Calls != 2 || days[0].Total.Spend != 1 {
		t.Errorf("global rollup of the day: %+v (%v); want 2 calls, $1", days, err)
	}
}
