package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Spend rollups. The rotator adds up the spend logs of every closed hour into one item per
// scope kind (pk AGG#<kind>, sk H#<yyyy-mm-ddThh>) and, once a UTC day's hours are all
// rolled, the day's hours into one item (sk D#<yyyy-mm-dd>). Each item is written whole from
// the logs (a Put, never an ADD), so a rerun writes the same figures again instead of adding
// them twice, and no call pays a write for them. An item holds the period's total and the
// figures of its RollupIDs highest-spending ids; the rest are added into Other, so an item
// stays a few write units however many keys were busy. The last hour rolled is kept in
// AGG/STATE; hours after it are read from the logs. Rolling an hour also adds each
// organization's spend in it to the organization's record (addOrgSpend).
const (
	PrefixRollup     = "AGG#"
	sortRollupHour   = "H#"
	sortRollupDay    = "D#"
	rollupStatePK    = "AGG"
	rollupStateSK    = "STATE"
	rollupHourFormat = "2006-01-02T15"
)

// ScopeGlobal is the rollup kind of every call, without ids.
const ScopeGlobal = "global"

// ScopeOrg is the rollup kind of organizations (a log's organization_id).
const ScopeOrg = "organization"

// RollupKinds are the scope kinds the rotator rolls up.
var RollupKinds = []string{ScopeGlobal, ScopeModel, ScopeTeam, ScopeKey, ScopeUser, ScopeTag, ScopeOrg, ScopeEndUser}

// RollupIDs is how many ids a rollup item holds figures for (the highest spending); the
// others are added into its Other.
const RollupIDs = 200

// SpendFigures are the spend, calls and tokens of a set of spend logs (failed calls
// included, at what they were charged).
type SpendFigures struct {
	Spend            float64 `dynamodbav:"s,omitempty" json:"spend"`
	Calls            int64   `dynamodbav:"c,omitempty" json:"api_requests"`
	Failures         int64   `dynamodbav:"f,omitempty" json:"failed_requests"`
	PromptTokens     int64   `dynamodbav:"p,omitempty" json:"prompt_tokens"`
	CompletionTokens int64   `dynamodbav:"o,omitempty" json:"completion_tokens"`
}

// Add adds g into f.
func (f *SpendFigures) Add(g SpendFigures) {
	f.Spend += g.Spend
	f.Calls += g.Calls
	f.Failures += g.Failures
	f.PromptTokens += g.PromptTokens
	f.CompletionTokens += g.CompletionTokens
}

func logFigures(l *SpendLog) SpendFigures {
	f := SpendFigures{Spend: l.Spend, Calls: 1, PromptTokens: int64(l.PromptTokens), CompletionTokens: int64(l.CompletionTokens)}
	if l.Status == StatusFailure {
		f.Failures = 1
	}
	return f
}

// Rollup is what one scope kind spent over an hour or a day: Total counts every call once
// (with or without an id of the kind), IDs the calls of each id (a call with two tags counts
// in both), Other the calls of the ids left out of IDs.
type Rollup struct {
	Total SpendFigures            `dynamodbav:"total" json:"total"`
	IDs   map[string]SpendFigures `dynamodbav:"ids,omitempty" json:"ids"`
	Other SpendFigures            `dynamodbav:"other" json:"other"`
}

// logIDs are the ids of kind a log counts under.
func logIDs(kind string, l *SpendLog) []string {
	var id string
	switch kind {
	case ScopeModel:
		id = l.ModelGroup
	case ScopeTeam:
		id = l.TeamID
	case ScopeKey:
		id = l.APIKey
	case ScopeUser:
		id = l.User
	case ScopeOrg:
		id = l.OrganizationID
	case ScopeEndUser:
		id = l.EndUser
	case ScopeTag:
		tags := slices.Clone(l.RequestTags)
		slices.Sort(tags)
		return slices.DeleteFunc(slices.Compact(tags), func(t string) bool { return t == "" })
	}
	if id == "" {
		return nil
	}
	return []string{id}
}

func (r *Rollup) addLog(kind string, l *SpendLog) {
	f := logFigures(l)
	r.Total.Add(f)
	for _, id := range logIDs(kind, l) {
		if r.IDs == nil {
			r.IDs = map[string]SpendFigures{}
		}
		g := r.IDs[id]
		g.Add(f)
		r.IDs[id] = g
	}
}

func (r *Rollup) merge(o Rollup) {
	r.Total.Add(o.Total)
	r.Other.Add(o.Other)
	for id, f := range o.IDs {
		if r.IDs == nil {
			r.IDs = map[string]SpendFigures{}
		}
		g := r.IDs[id]
		g.Add(f)
		r.IDs[id] = g
	}
}

// capped keeps the RollupIDs highest-spending ids (then most calls, then by id) and adds the
// rest into Other, and rounds the spends to the ledger's decimals.
func (r Rollup) capped() Rollup {
	ids := slices.SortedFunc(maps.Keys(r.IDs), func(a, b string) int {
		fa, fb := r.IDs[a], r.IDs[b]
		return cmp.Or(cmp.Compare(fb.Spend, fa.Spend), cmp.Compare(fb.Calls, fa.Calls), strings.Compare(a, b))
	})
	out := Rollup{Total: r.Total, Other: r.Other}
	for i, id := range ids {
		f := r.IDs[id]
		if i >= RollupIDs {
			out.Other.Add(f)
			continue
		}
		if out.IDs == nil {
			out.IDs = map[string]SpendFigures{}
		}
		f.Spend = usdFloat(f.Spend)
		out.IDs[id] = f
	}
	out.Total.Spend, out.Other.Spend = usdFloat(out.Total.Spend), usdFloat(out.Other.Spend)
	return out
}

func (r Rollup) empty() bool { return r.Total.Calls == 0 }

// rollupItem is a stored rollup.
type rollupItem struct {
	Rollup
	RolledAt time.Time `dynamodbav:"rolled_at"`
}

// RollupState says which hours the rollups cover: from Since to Through (hour starts, both
// rolled). Zero before the first roll.
type RollupState struct {
	Since   time.Time `dynamodbav:"since"`
	Through time.Time `dynamodbav:"through"`
}

// rolled reports whether the hour starting at h is rolled.
func (st RollupState) rolled(h time.Time) bool {
	return !st.Since.IsZero() && !h.Before(st.Since) && !h.After(st.Through)
}

// RollupState reads which hours the rollups cover.
func (s *Store) RollupState(ctx context.Context) (RollupState, error) {
	var st RollupState
	err := s.get(ctx, rollupStatePK, rollupStateSK, &st)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return RollupState{}, fmt.Errorf("rollup state: %w", err)
	}
	st.Since, st.Through = st.Since.UTC(), st.Through.UTC()
	return st, nil
}

// RollUp rolls up the spend logs of the hours that ended at or before closed and are not
// rolled yet, oldest first, at most maxHours of them (the first run starts at since). Callers
// pass as closed a time no settlement can still log a call before (reservation_ttl ago, once
// stale reservations are settled). It reports how many hours it rolled and whether closed
// hours are left. Overlapping or repeated runs write the same items.
//
// Each hour is read shard by shard (the day's partitions of logs, see daySources, that hold
// one), rollupWorkers shards at a time, and each shard's part is stored as it
// is done, so a run cut short (a Lambda's timeout) leaves what it read for the next run. A
// run stops starting hours, and stops its shards, rollupMargin before ctx's deadline, and
// then reports more hours left instead of an error.
func (s *Store) RollUp(ctx context.Context, closed, since time.Time, maxHours int) (int, bool, error) {
	last := closed.UTC().Add(-time.Hour).Truncate(time.Hour)
	st, err := s.RollupState(ctx)
	if err != nil {
		return 0, false, err
	}
	next := st.Through.Add(time.Hour)
	if st.Since.IsZero() {
		st.Since = since.UTC().Truncate(time.Hour)
		next = st.Since
	}
	work := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-rollupMargin))
		defer cancel()
	}
	rolled := 0
	for !next.After(last) && rolled < maxHours {
		// A stretch of hours within one UTC day: only its shards that hold a log are read.
		end := earliestOf(last, utcDay(next).Add(23*time.Hour), next.Add(time.Duration(maxHours-rolled-1)*time.Hour))
		busy, err := s.busyShards(work, next, end)
		for h := next; err == nil && !h.After(end); h = h.Add(time.Hour) {
			if len(busy) == 0 && h.Before(end) {
				continue // nothing to read: the state moves at the stretch's end
			}
			st.Through = h
			if err = s.rollHour(work, st, busy); err == nil {
				rolled, next = rolled+int(h.Sub(next)/time.Hour)+1, h.Add(time.Hour)
			}
		}
		if err != nil && work.Err() != nil && ctx.Err() == nil {
			return rolled, true, nil // out of time: the shards read are stored
		}
		if err != nil {
			return rolled, true, err
		}
	}
	return rolled, !next.After(last), nil
}

// busyShards returns the partitions of the logs of the day of first (see daySources) that
// hold a log of the hours first..last (hour starts).
func (s *Store) busyShards(ctx context.Context, first, last time.Time) ([]logSource, error) {
	sources := daySources(first)
	busy := make([]bool, len(sources))
	var wg sync.WaitGroup
	errs := make([]error, len(sources))
	for i, src := range sources {
		wg.Go(func() {
			in := src.query(s.table, logSort(first), logSort(last.Add(time.Hour-time.Microsecond))+"~")
			in.Limit = aws.Int32(1)
			out, err := s.db.Query(ctx, in)
			if err != nil {
				errs[i] = fmt.Errorf("query spend logs (%s %s): %w", src.index, src.value, err)
				return
			}
			busy[i] = len(out.Items) > 0
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []logSource
	for i, src := range sources {
		if busy[i] {
			out = append(out, src)
		}
	}
	return out, nil
}

// rollupWorkers is how many parts of an hour are read at once; rollupMargin is the time
// before a run's deadline it stops at.
const (
	rollupWorkers = 4
	rollupMargin  = 20 * time.Second
)

// maxOpenIDs bounds the ids a shard's running rollup of one kind holds; past it the rollup
// keeps its RollupIDs highest spenders and adds the rest into Other (totals stay exact), so
// a run's memory stays bounded (rollupWorkers * kinds * maxOpenIDs ids) however many keys
// were busy.
const maxOpenIDs = 20_000

// hourPart is what one log shard of an hour holds, per kind, each capped to RollupIDs ids.
type hourPart map[string]Rollup

// partTTL is how long a stored part is kept (DynamoDB's TTL deletes it).
const partTTL = 7 * 24 * time.Hour

// rollHour rolls the hour starting at st.Through: the parts of its log partitions sources
// (rollupSlices each, stored by an earlier run that was cut short, else read from the logs
// and stored), merged into an item per kind; the day's items when the hour is the day's last and every hour of
// the day is rolled; then st.
func (s *Store) rollHour(ctx context.Context, st RollupState, sources []logSource) error {
	h := st.Through
	pk := PrefixRollup + "PART#" + h.Format(rollupHourFormat)
	var units []partUnit
	for _, src := range sources {
		for k := range rollupSlices {
			units = append(units, partUnit{src, h.Add(time.Duration(k) * time.Hour / rollupSlices)})
		}
	}
	parts, err := s.storedParts(ctx, pk, units)
	if err != nil {
		return err
	}
	jobs := make(chan int)
	errs := make(chan error, rollupWorkers)
	for range rollupWorkers {
		go func() {
			var err error
			for i := range jobs {
				if err == nil {
					parts[i], err = s.readPart(ctx, pk, units[i])
				}
			}
			errs <- err
		}()
	}
	// Overlapping runs take the parts in different orders, so they split the work.
	for _, i := range rand.Perm(len(units)) {
		if parts[i] == nil {
			jobs <- i
		}
	}
	close(jobs)
	for range rollupWorkers {
		err = cmp.Or(err, <-errs)
	}
	if err != nil {
		return fmt.Errorf("roll up %s: %w", h.Format(rollupHourFormat), err)
	}
	now := time.Now().UTC()
	for _, kind := range RollupKinds {
		var r Rollup
		for _, p := range parts {
			r.merge(p[kind])
		}
		if r.empty() {
			continue
		}
		if err := s.putRollup(ctx, kind, sortRollupHour+h.Format(rollupHourFormat), r.capped(), now); err != nil {
			return err
		}
		if kind == ScopeOrg {
			// The organizations' spend: what each spent this hour, added to its record once.
			for id, f := range r.IDs {
				if err := s.addOrgSpend(ctx, id, h.Format(rollupHourFormat), f.Spend); err != nil {
					return err
				}
			}
		}
	}
	day := utcDay(h)
	if h.Equal(day.Add(23*time.Hour)) && st.rolled(day) {
		for _, kind := range RollupKinds {
			hrs, err := s.rollupItems(ctx, kind, sortRollupHour+day.Format(time.DateOnly), sortRollupHour+day.Format(time.DateOnly)+"~")
			if err != nil {
				return err
			}
			var r Rollup
			for _, h := range hrs {
				r.merge(h)
			}
			if r.empty() {
				continue
			}
			if err := s.putRollup(ctx, kind, sortRollupDay+day.Format(time.DateOnly), r.capped(), now); err != nil {
				return err
			}
		}
	}
	it, err := marshal(st)
	if err != nil {
		return err
	}
	maps.Copy(it, keyOf(rollupStatePK, rollupStateSK))
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: it,
		// An overlapping run that got further keeps its state.
		ConditionExpression:       aws.String("attribute_not_exists(through) OR through < :t"),
		ExpressionAttributeValues: item{":t": it["through"]},
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("rollup state: %w", err)
	}
	return nil
}

// partItem is a stored hourPart: pk AGG#PART#<hour>, sk its partUnit's.
type partItem struct {
	Kinds hourPart `dynamodbav:"kinds"`
	TTL   int64    `dynamodbav:"ttl"`
}

// rollupSlices splits a shard's hour into parts of 10 minutes, the unit a run reads and
// stores in one go: at 2,000 calls/s one holds ~70,000 logs (docs/cost.md).
const rollupSlices = 6

// partUnit is one part of an hour: the logs of a partition from a time on, for an hour /
// rollupSlices.
type partUnit struct {
	src  logSource
	from time.Time
}

// sk names the part: "<by_kind key>@<minute>" as builds before dated logs stored them, and
// "TABLE#" before a day's shard in the table (the same string as its undated by_kind key).
func (u partUnit) sk() string {
	if u.src.index == "" {
		return "TABLE#" + u.src.value + "@" + u.from.Format("04")
	}
	return u.src.value + "@" + u.from.Format("04")
}

// storedParts reads the parts of the hour stored under pk (by an earlier run that was cut
// short), in the order of units; nil where none is stored.
func (s *Store) storedParts(ctx context.Context, pk string, units []partUnit) ([]hourPart, error) {
	keys := make([]item, len(units))
	sks := make([]string, len(units))
	for i, u := range units {
		sks[i] = u.sk()
		keys[i] = keyOf(pk, sks[i])
	}
	items, err := s.batchGet(ctx, keys, true)
	if err != nil {
		return nil, fmt.Errorf("rollup parts: %w", err)
	}
	parts := make([]hourPart, len(units))
	for _, it := range items {
		var p partItem
		if err := attributevalue.UnmarshalMap(it, &p); err != nil {
			return nil, fmt.Errorf("decode rollup part: %w", err)
		}
		sk, _ := it["sk"].(*types.AttributeValueMemberS)
		if i := slices.Index(sks, sk.Value); i >= 0 {
			parts[i] = p.Kinds
		}
	}
	return parts, nil
}

// readPart adds up the logs of a part and stores it under pk (unless it is empty).
func (s *Store) readPart(ctx context.Context, pk string, u partUnit) (hourPart, error) {
	open := map[string]*Rollup{}
	for _, k := range RollupKinds {
		open[k] = &Rollup{}
	}
	stream := s.logStream(u.src, logSort(u.from), logSort(u.from.Add(time.Hour/rollupSlices-time.Microsecond))+"~")
	for {
		if err := stream.fill(ctx); err != nil {
			return nil, fmt.Errorf("read logs of %s: %w", u.sk(), err)
		}
		if len(stream.buf) == 0 {
			break
		}
		for i := range stream.buf {
			for _, k := range RollupKinds {
				r := open[k]
				r.addLog(k, &stream.buf[i])
				if len(r.IDs) > maxOpenIDs {
					*r = r.capped()
				}
			}
		}
		stream.buf = stream.buf[:0]
	}
	part := hourPart{}
	for k, r := range open {
		if !r.empty() {
			part[k] = r.capped()
		}
	}
	if len(part) == 0 {
		return part, nil
	}
	it, err := marshal(partItem{Kinds: part, TTL: time.Now().Add(partTTL).Unix()})
	if err != nil {
		return nil, err
	}
	maps.Copy(it, keyOf(pk, u.sk()))
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it}); err != nil {
		return nil, fmt.Errorf("put rollup part %s: %w", u.sk(), err)
	}
	return part, nil
}

func (s *Store) putRollup(ctx context.Context, kind, sk string, r Rollup, now time.Time) error {
	it, err := marshal(rollupItem{Rollup: r, RolledAt: now})
	if err != nil {
		return err
	}
	maps.Copy(it, keyOf(PrefixRollup+kind, sk))
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it}); err != nil {
		return fmt.Errorf("put rollup %s %s: %w", kind, sk, err)
	}
	return nil
}

// rollupItems reads the rollup items of kind with sort keys from lo to hi, keyed by sort key.
func (s *Store) rollupItems(ctx context.Context, kind, lo, hi string) (map[string]Rollup, error) {
	out := map[string]Rollup{}
	pager := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :p AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: item{":p": &types.AttributeValueMemberS{Value: PrefixRollup + kind}, ":lo": &types.AttributeValueMemberS{Value: lo}, ":hi": &types.AttributeValueMemberS{Value: hi}},
		ConsistentRead:            aws.Bool(true),
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query rollups of %s: %w", kind, err)
		}
		for _, it := range page.Items {
			var r rollupItem
			if err := attributevalue.UnmarshalMap(it, &r); err != nil {
				return nil, fmt.Errorf("decode rollup of %s: %w", kind, err)
			}
			sk, _ := it["sk"].(*types.AttributeValueMemberS)
			if sk != nil {
				out[sk.Value] = r.Rollup
			}
		}
	}
	return out, nil
}

// DayRollup is what a scope kind spent on one UTC day.
type DayRollup struct {
	Day string `json:"date"` // YYYY-MM-DD
	Rollup
}

// DailyRollups returns what kind (one of RollupKinds) spent per UTC day from `from` to `to`
// (inclusive, at most MaxDailySpendDays days), oldest first, days without calls left out:
// rolled days from their day item, rolled hours of a day not rolled whole from their hour
// items, and only the hours after the last rolled one from the spend logs.
func (s *Store) DailyRollups(ctx context.Context, kind string, from, to time.Time) ([]DayRollup, error) {
	if !slices.Contains(RollupKinds, kind) {
		return nil, fmt.Errorf("daily spend: unknown scope %q", kind)
	}
	first, last := utcDay(from), utcDay(to)
	if last.Sub(first) >= MaxDailySpendDays*24*time.Hour {
		return nil, fmt.Errorf("daily spend: at most %d days at a time", MaxDailySpendDays)
	}
	st, err := s.RollupState(ctx)
	if err != nil {
		return nil, err
	}
	byDay, err := s.rolledDays(ctx, kind, first, last, st)
	if err != nil {
		return nil, err
	}
	err = st.eachOpenRange(first, last, func(lo, hi time.Time) error {
		return s.EachSpendLog(ctx, SpendLogFilter{Start: lo, End: hi}, func(l SpendLog) {
			day := l.StartTime.UTC().Format(time.DateOnly)
			r := byDay[day]
			r.addLog(kind, &l)
			byDay[day] = r
		})
	})
	if err != nil {
		return nil, fmt.Errorf("daily spend of %s: %w", kind, err)
	}
	var out []DayRollup
	for _, day := range slices.Sorted(maps.Keys(byDay)) {
		if r := byDay[day]; !r.empty() {
			out = append(out, DayRollup{Day: day, Rollup: r.capped()})
		}
	}
	return out, nil
}

// rolledDays reads the rolled part of the days first..last (UTC dates) of kind: a day item
// for a day rolled whole, the hour items of a day rolled in part. Days without a rolled call
// are left out.
func (s *Store) rolledDays(ctx context.Context, kind string, first, last time.Time, st RollupState) (map[string]Rollup, error) {
	out := map[string]Rollup{}
	if st.Since.IsZero() {
		return out, nil
	}
	days, err := s.rollupItems(ctx, kind, sortRollupDay+first.Format(time.DateOnly), sortRollupDay+last.Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	for sk, r := range days {
		out[strings.TrimPrefix(sk, sortRollupDay)] = r
	}
	for day := first; !day.After(last); day = day.AddDate(0, 0, 1) {
		end := day.Add(23 * time.Hour)
		if (st.rolled(day) && st.rolled(end)) || st.Since.After(end) || st.Through.Before(day) {
			continue // rolled whole (read above) or not at all
		}
		lo, hi := latestOf(day, st.Since), earliestOf(end, st.Through)
		hrs, err := s.rollupItems(ctx, kind, sortRollupHour+lo.Format(rollupHourFormat), sortRollupHour+hi.Format(rollupHourFormat))
		if err != nil {
			return nil, err
		}
		var r Rollup
		for _, h := range hrs {
			r.merge(h)
		}
		if !r.empty() {
			out[day.Format(time.DateOnly)] = r
		}
	}
	return out, nil
}

// eachOpenRange calls fn with the time ranges (inclusive) of the days first..last whose
// hours are not rolled: before Since and after Through.
func (st RollupState) eachOpenRange(first, last time.Time, fn func(lo, hi time.Time) error) error {
	end := last.Add(24*time.Hour - time.Microsecond)
	if st.Since.IsZero() || st.Since.After(end) || st.Through.Add(time.Hour).Before(first) {
		return fn(first, end)
	}
	if st.Since.After(first) {
		if err := fn(first, st.Since.Add(-time.Microsecond)); err != nil {
			return err
		}
	}
	if open := st.Through.Add(time.Hour); !open.After(end) {
		return fn(open, end)
	}
	return nil
}

func earliestOf(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

func latestOf(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.After(t) {
			t = u
		}
	}
	return t
}
