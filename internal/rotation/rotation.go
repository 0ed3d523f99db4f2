// Package rotation is llmgate's scheduled maintenance, run by the rotator Lambda on an
// EventBridge schedule and by a ticker in the local server: it resets budgets whose period has
// ended, auto-rotates keys (delivering new values to Secrets Manager), deletes rotated-out key
// hashes past their grace period, settles reservations that were never settled, and rolls
// up the spend logs of closed hours into hourly and daily aggregates (store.RollUp).
//
// Every run finds its work through the sparse due_* indexes (never a scan), does at most
// Limit items per kind, and leaves the rest to the next run. Runs are idempotent and may
// overlap: each change is a conditional write on the reset or rotation time it read, so two
// runs never reset a budget or rotate a key twice.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/store"
	"github.com/llmgate/llmgate/internal/store/schema"
)

// Indexes are the indexes a run queries: the sparse due ones, and by_kind, where the rollups
// read the spend logs of older builds (ids without a time). The rotator's IAM policy (infra)
// grants exactly these.
var Indexes = []string{schema.IndexDueReset, schema.IndexDueRotate, schema.IndexDueExpire, schema.IndexByKind}

// DefaultLimit is how many items of each kind a run handles when Options.Limit is 0.
const DefaultLimit = 500

// Reconciler settles reservations and parallel-request leases whose expiry has passed (the
// limits package implements it).
type Reconciler interface {
	SettleStale(ctx context.Context, now time.Time, limit int) (int, error)
}

// Options configure a Rotator.
type Options struct {
	Store *store.Store
	// Rekeyer rotates keys and delivers their values; nil means no Secrets Manager, so due
	// keys are not rotated.
	Rekeyer *keyvault.Rekeyer
	// Reconciler settles stale reservations; nil skips that step.
	Reconciler Reconciler
	// Location aligns budget resets (litellm_settings.timezone); nil is UTC.
	Location *time.Location
	// ProxyBudget says litellm_settings.max_budget is set; ProxyBudgetDuration is its
	// budget_duration (empty: it never resets).
	ProxyBudget         bool
	ProxyBudgetDuration string
	// RotationEnabled turns auto-rotation on (LITELLM_KEY_ROTATION_ENABLED).
	RotationEnabled bool
	// Grace keeps a rotated-out key working this long (LITELLM_KEY_ROTATION_GRACE_PERIOD).
	Grace time.Duration
	// Limit bounds the items of each kind one run handles (DefaultLimit when 0).
	Limit int
	// ReservationTTL is litellm_settings.reservation_ttl: an hour is rolled up once it ended
	// this long ago, when no settlement can log a call in it any more
	// (config.DefaultReservationTTL when 0).
	ReservationTTL time.Duration
	// RollupBackfill is how far back the first rollup starts (DefaultRollupBackfill when 0).
	RollupBackfill time.Duration
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Rotator runs the scheduled maintenance.
type Rotator struct {
	o Options
}

// New returns a Rotator.
func New(o Options) *Rotator {
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.ReservationTTL <= 0 {
		o.ReservationTTL = config.DefaultReservationTTL.Std()
	}
	if o.RollupBackfill <= 0 {
		o.RollupBackfill = DefaultRollupBackfill
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Rekeyer == nil {
		o.Rekeyer = keyvault.NewRekeyer(o.Store, nil)
	}
	return &Rotator{o: o}
}

// Report counts what one run did.
type Report struct {
	Resets     int  // records whose budgets were reset
	Rotations  int  // keys rotated
	Deliveries int  // interrupted Secrets Manager deliveries finished
	Deletions  int  // rotated-out key hashes deleted
	Reconciled int  // stale reservations and leases settled
	Rolled     int  // hours of spend logs rolled up
	RollupsDue bool // closed hours are left to roll up (the first runs catch up a backfill)
	Failures   int  // items that failed and are left for the next run
	More       bool // a limit was reached: more items are due
}

// pass is one run: its clock reading, its logger and what it did so far.
type pass struct {
	now time.Time
	log *slog.Logger
	rep Report
	// backlog says stale reservations are left for the next run: their logs may still land
	// in hours that look closed.
	backlog bool
}

// Run does one round of maintenance and logs one summary line ("rotator run"). attrs
// (slog key-value pairs, such as the id of the event that started the run) are added to
// every line the run logs. Failures of single items are counted, logged and left for the
// next run; the error reports steps that could not run at all (the table unreachable, for
// instance).
func (r *Rotator) Run(ctx context.Context, attrs ...any) (Report, error) {
	start := time.Now()
	p := &pass{now: r.o.Now().UTC(), log: r.o.Logger.With(attrs...)}
	err := errors.Join(
		r.resets(ctx, p),
		r.rotations(ctx, p),
		r.cleanup(ctx, p),
		r.reconcile(ctx, p),
		r.rollups(ctx, p),
	)
	rep := p.rep
	level := slog.LevelInfo
	if err != nil || rep.Failures > 0 {
		level = slog.LevelWarn
	}
	sum := []any{
		"resets", rep.Resets, "rotations", rep.Rotations, "deliveries", rep.Deliveries,
		"deletions", rep.Deletions, "reconciled", rep.Reconciled, "rolled_hours", rep.Rolled, "rollups_due", rep.RollupsDue, "failures", rep.Failures,
		"more", rep.More, "now", p.now, "duration_ms", time.Since(start).Milliseconds(),
	}
	if err != nil {
		sum = append(sum, "error", err.Error())
	}
	p.log.Log(ctx, level, "rotator run", sum...)
	return rep, err
}

// RunEvery runs the rotator now and then every interval until ctx ends, as the EventBridge
// schedule does in AWS; the local server runs it in a goroutine. Each run logs its own line.
func (r *Rotator) RunEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, _ = r.Run(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fail counts and logs the failure of one item.
func (p *pass) fail(ctx context.Context, step string, ref store.Ref, err error) {
	p.rep.Failures++
	p.log.WarnContext(ctx, "rotator: "+step+" failed; retried next run", "pk", ref.PK, "sk", ref.SK, "error", err.Error())
}

// resets resets the budgets that are due.
func (r *Rotator) resets(ctx context.Context, p *pass) error {
	if err := r.scheduleProxyBudget(ctx, p.now); err != nil {
		return err
	}
	refs, more, err := r.o.Store.DueResets(ctx, p.now, r.o.Limit)
	if err != nil {
		return fmt.Errorf("budget resets: %w", err)
	}
	p.rep.More = p.rep.More || more
	for _, ref := range refs {
		done, err := r.reset(ctx, ref, p.now)
		switch {
		case err != nil:
			p.postpone(ctx, r.o.Store, schema.IndexDueReset, "budget reset", ref, err)
		case done:
			p.rep.Resets++
		}
	}
	return nil
}

// failedDelay is how long an item whose budget reset or key rotation failed waits for its
// next try.
const failedDelay = 5 * time.Minute

// postpone counts and logs the failure of one item of a due index and skips the item for
// failedDelay, so it cannot keep the head of the queue from the rest.
func (p *pass) postpone(ctx context.Context, st *store.Store, index, step string, ref store.Ref, err error) {
	p.fail(ctx, step, ref, err)
	if err := st.Defer(ctx, index, ref, p.now, p.now.Add(failedDelay)); err != nil {
		p.log.WarnContext(ctx, "rotator: deferring a failed "+step+" failed", "pk", ref.PK, "sk", ref.SK, "error", err.Error())
	}
}

// maxResetParts bounds the budgets (the record's own, windows, model budgets) one reset
// write touches, so the update expression stays under DynamoDB's size limit however many
// windows a record has; a record with more is reset in several writes.
const maxResetParts = 16

// maxResetWrites bounds the writes of one record's reset in one run.
const maxResetWrites = 64

// scheduleProxyBudget keeps the proxy budget's reset schedule in step with the config.
func (r *Rotator) scheduleProxyBudget(ctx context.Context, now time.Time) error {
	if !r.o.ProxyBudget {
		return nil
	}
	var next time.Time
	if r.o.ProxyBudgetDuration != "" {
		d, err := duration.Parse(r.o.ProxyBudgetDuration)
		if err != nil {
			return fmt.Errorf("litellm_settings.budget_duration: %w", err)
		}
		next = duration.NextReset(d, now, r.o.Location)
	}
	return r.o.Store.ScheduleProxyBudget(ctx, r.o.ProxyBudgetDuration, next)
}

// reset resets the due budgets of one record. It reads the record afresh and, when another
// run got there first, finds nothing due and does nothing.
func (r *Rotator) reset(ctx context.Context, ref store.Ref, now time.Time) (bool, error) {
	done := false
	for range maxResetWrites {
		more := false
		err := store.Retry(ctx, func() error {
			rec, err := r.o.Store.GetBudgetRecord(ctx, ref)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			plan, err := Plan(rec, now, r.o.Location)
			if err != nil || plan.Empty() {
				return err
			}
			part := firstParts(plan, maxResetParts)
			if err := r.o.Store.ResetBudgets(ctx, rec, part); err != nil {
				return err
			}
			done, more = true, len(part.Windows)+len(part.Models) < len(plan.Windows)+len(plan.Models)
			return nil
		})
		if err != nil || !more {
			return done, err
		}
	}
	return done, nil
}

// firstParts is the part of plan one write resets: at most n budgets, the record's own
// first, then windows in order, then model budgets by name.
func firstParts(plan store.BudgetReset, n int) store.BudgetReset {
	out := store.BudgetReset{Budget: plan.Budget, Next: plan.Next}
	if plan.Budget {
		n--
	}
	for _, i := range slices.Sorted(maps.Keys(plan.Windows)) {
		if n <= 0 {
			return out
		}
		if out.Windows == nil {
			out.Windows = map[int]*time.Time{}
		}
		out.Windows[i], n = plan.Windows[i], n-1
	}
	for _, m := range slices.Sorted(maps.Keys(plan.Models)) {
		if n <= 0 {
			return out
		}
		if out.Models == nil {
			out.Models = map[string]*time.Time{}
		}
		out.Models[m], n = plan.Models[m], n-1
	}
	return out
}

// Plan returns which budgets of rec are due at now and when each resets next: the next
// boundary of its duration after now, aligned in loc (duration.NextReset). A budget with a
// reset time but no duration resets once.
func Plan(rec *store.BudgetRecord, now time.Time, loc *time.Location) (store.BudgetReset, error) {
	var plan store.BudgetReset
	next := func(d string) (*time.Time, error) {
		if strings.TrimSpace(d) == "" {
			return nil, nil
		}
		p, err := duration.Parse(d)
		if err != nil {
			return nil, err
		}
		t := duration.NextReset(p, now, loc).UTC()
		return &t, nil
	}
	due := func(at *time.Time) bool { return at != nil && !at.After(now) }
	if due(rec.BudgetResetAt) {
		n, err := next(rec.BudgetDuration)
		if err != nil {
			return plan, fmt.Errorf("budget_duration: %w", err)
		}
		plan.Budget, plan.Next = true, n
	}
	for i, w := range rec.BudgetLimits {
		if !due(w.ResetAt) {
			continue
		}
		n, err := next(w.BudgetDuration)
		if err != nil {
			return plan, fmt.Errorf("budget_limits[%d].budget_duration: %w", i, err)
		}
		if plan.Windows == nil {
			plan.Windows = map[int]*time.Time{}
		}
		plan.Windows[i] = n
	}
	for m, mb := range rec.ModelMaxBudget {
		if !due(mb.ResetAt) {
			continue
		}
		n, err := next(mb.TimePeriod)
		if err != nil {
			return plan, fmt.Errorf("model_max_budget[%q].time_period: %w", m, err)
		}
		if plan.Models == nil {
			plan.Models = map[string]*time.Time{}
		}
		plan.Models[m] = n
	}
	return plan, nil
}

// errNotDue aborts a rotation whose key changed since the run found it due.
var errNotDue = errors.New("key no longer due for rotation")

// rotations rotates the keys that are due.
func (r *Rotator) rotations(ctx context.Context, p *pass) error {
	if !r.o.RotationEnabled {
		return nil
	}
	refs, more, err := r.o.Store.DueRotations(ctx, p.now, r.o.Limit)
	if err != nil {
		return fmt.Errorf("key rotations: %w", err)
	}
	p.rep.More = p.rep.More || more
	for _, ref := range refs {
		done, err := r.rotate(ctx, ref.Token(), p.now)
		switch {
		case done:
			p.rep.Rotations++
			if err != nil { // rotated; a later cleanup run finishes the delivery
				p.fail(ctx, "key rotation", ref, err)
			}
		case err != nil:
			p.postpone(ctx, r.o.Store, schema.IndexDueRotate, "key rotation", ref, err)
		}
	}
	return nil
}

// rotate rotates one key if it is still due: the rotation is conditional on the
// key_rotation_at read here, so a key another run rotated meanwhile is left alone.
func (r *Rotator) rotate(ctx context.Context, token string, now time.Time) (bool, error) {
	k, err := r.o.Store.GetKey(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if k.IsPointer() || !k.AutoRotate || k.KeyRotationAt == nil || k.KeyRotationAt.After(now) {
		return false, nil
	}
	if !r.o.Rekeyer.Delivers() || k.KeyAlias == nil || *k.KeyAlias == "" {
		// Nobody could read the new value: rotating would lock the key's users out.
		return false, errors.New("auto_rotate needs general_settings.store_virtual_keys and a key_alias, so the new value reaches Secrets Manager")
	}
	read := *k.KeyRotationAt
	res, err := r.o.Rekeyer.Rekey(ctx, keyvault.RekeyInput{
		Token: token, Grace: r.o.Grace, Now: now,
		Change: func(k *store.Key) error {
			if !k.AutoRotate || k.KeyRotationAt == nil || !k.KeyRotationAt.Equal(read) {
				return errNotDue
			}
			return nil
		},
	})
	if errors.Is(err, errNotDue) || errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if res.DeliveryErr != nil {
		// Rotated, and both values work until a later run finishes the delivery.
		return true, fmt.Errorf("rotated, delivery to Secrets Manager pending: %w", res.DeliveryErr)
	}
	return true, nil
}

// cleanup deletes rotated-out hashes past their revoke time and resumes unfinished
// deliveries.
func (r *Rotator) cleanup(ctx context.Context, p *pass) error {
	refs, more, err := r.o.Store.DueExpired(ctx, p.now, r.o.Limit)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	p.rep.More = p.rep.More || more
	for _, ref := range refs {
		if strings.HasPrefix(ref.PK, store.PrefixDelivery) {
			done, err := r.o.Rekeyer.Resume(ctx, ref.Token(), p.now)
			switch {
			case err != nil:
				p.fail(ctx, "Secrets Manager delivery", ref, err)
			case done:
				p.rep.Deliveries++
			}
			continue
		}
		deleted, err := r.o.Store.DeleteRevoked(ctx, ref.Token(), p.now)
		switch {
		case err != nil:
			p.fail(ctx, "revoked key deletion", ref, err)
		case deleted:
			p.rep.Deletions++
		}
	}
	return nil
}

// reconcile settles stale reservations and leases.
func (r *Rotator) reconcile(ctx context.Context, p *pass) error {
	if r.o.Reconciler == nil {
		return nil
	}
	n, err := r.o.Reconciler.SettleStale(ctx, p.now, r.o.Limit)
	p.rep.Reconciled += n
	if err != nil {
		p.backlog = true
		return fmt.Errorf("stale reservations: %w", err)
	}
	if n >= r.o.Limit {
		p.rep.More, p.backlog = true, true
	}
	return nil
}

// DefaultRollupBackfill is how far back the first rollup starts.
const DefaultRollupBackfill = 31 * 24 * time.Hour

// maxRollupHours bounds the hours one run rolls up (the first runs catch up a backfill in
// steps).
const maxRollupHours = 48

// rollupMargin is added to reservation_ttl before an hour counts as closed: a settlement
// that started just before its reservation expired still commits within it.
const rollupMargin = time.Minute

// rollups rolls up the spend logs of the hours that closed, after the stale reservations
// of this run are settled (their logs carry their calls' start times). With stale
// reservations left over it waits for the run that settles them.
func (r *Rotator) rollups(ctx context.Context, p *pass) error {
	if p.backlog {
		return nil
	}
	n, more, err := r.o.Store.RollUp(ctx, p.now.Add(-r.o.ReservationTTL-rollupMargin), p.now.Add(-r.o.RollupBackfill), maxRollupHours)
	p.rep.Rolled, p.rep.RollupsDue = p.rep.Rolled+n, more
	if err != nil {
		return fmt.Errorf("spend rollups: %w", err)
	}
	return nil
}
