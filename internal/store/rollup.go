package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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
// AGG/STATE; hours after it are read from the logs.
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

// RollupKinds are the scope kinds the rotator rolls up.
var RollupKinds = []string{ScopeGlobal, ScopeModel, ScopeTeam, ScopeKey, ScopeUser, ScopeTag}

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

func (f *SpendFigures) add(g SpendFigures) {
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
	r.Total.add(f)
	for _, id := range logIDs(kind, l) {
		if r.IDs == nil {
			r.IDs = map[string]SpendFigures{}
		}
		g := r.IDs[id]
		g.add(f)
		r.IDs[id] = g
	}
}

func (r *Rollup) merge(o Rollup) {
	r.Total.add(o.Total)
	r.Other.add(o.Other)
	for id, f := range o.IDs {
		if r.IDs == nil {
			r.IDs = map[string]SpendFigures{}
		}
		g := r.IDs[id]
		g.add(f)
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
			out.Other.add(f)
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
	rolled := 0
	for !next.After(last) && rolled < maxHours {
		day := utcDay(next)
		end := earliestOf(last, day.Add(23*time.Hour), next.Add(time.Duration(maxHours-rolled-1)*time.Hour))
		st.Through = end
		if err := s.rollHours(ctx, next, st); err != nil {
			return rolled, true, err
		}
		rolled += int(end.Sub(next)/time.Hour) + 1
		next = end.Add(time.Hour)
	}
	return rolled, !next.After(last), nil
}

// rollHours rolls the hours from first to st.Through (hour starts, one UTC day), the day
// when that is its last hour and every hour of it is rolled, and then stores st.
func (s *Store) rollHours(ctx context.Context, first time.Time, st RollupState) error {
	last := st.Through
	hours := map[time.Time]map[string]*Rollup{}
	err := s.EachSpendLog(ctx, SpendLogFilter{Start: first, End: last.Add(time.Hour - time.Microsecond)}, func(l SpendLog) {
		h := l.StartTime.UTC().Truncate(time.Hour)
		if hours[h] == nil {
			hours[h] = map[string]*Rollup{}
			for _, k := range RollupKinds {
				hours[h][k] = &Rollup{}
			}
		}
		for _, k := range RollupKinds {
			hours[h][k].addLog(k, &l)
		}
	})
	if err != nil {
		return fmt.Errorf("roll up %s: %w", first.Format(rollupHourFormat), err)
	}
	now := time.Now().UTC()
	for h, kinds := range hours {
		for kind, r := range kinds {
			if err := s.putRollup(ctx, kind, sortRollupHour+h.Format(rollupHourFormat), r.capped(), now); err != nil {
				return err
			}
		}
	}
	day := utcDay(first)
	if last.Equal(day.Add(23*time.Hour)) && st.rolled(day) {
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
