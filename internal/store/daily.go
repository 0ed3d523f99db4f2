package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scopes of DailySpend besides ScopeKey, ScopeUser and ScopeTeam.
const (
	ScopeModel = "model" // a model group (the spend log's model_group)
	ScopeTag   = "tag"   // a request tag
)

// SpendScope names what DailySpend adds up: one key (its hash), user, team, model group or
// request tag.
type SpendScope struct {
	Kind string // ScopeKey, ScopeUser, ScopeTeam, ScopeModel or ScopeTag
	ID   string
}

// DaySpend is what a scope spent on one UTC day, from its spend logs (failed calls
// included, at what they were charged).
type DaySpend struct {
	Day string `json:"date"` // YYYY-MM-DD, UTC
	SpendFigures
}

// MaxDailySpendDays is the most days one DailySpend page covers.
const MaxDailySpendDays = 92

// DailySpend returns a scope's spend per UTC day, oldest first, over the days from `from`
// to `to` (both inclusive, UTC dates), one page of at most days days (0: 31, at most
// MaxDailySpendDays) starting at cursor ("" for the first page). Days without a call are left
// out. It returns the cursor of the next page, "" after the last.
//
// Rolled hours are read from the rollups (no write on the request path pays for them); the
// hours not rolled yet, and the days on which the scope's id was folded into a rollup's
// Other, from the logs: a key, user or team its own index partition, a model or tag the
// days' logs of every key.
func (s *Store) DailySpend(ctx context.Context, scope SpendScope, from, to time.Time, cursor string, days int) ([]DaySpend, string, error) {
	if scope.ID == "" {
		return nil, "", errors.New("daily spend: the scope's id is required")
	}
	f := SpendLogFilter{}
	keep := func(SpendLog) bool { return true }
	switch scope.Kind {
	case ScopeKey:
		f.APIKey = scope.ID
	case ScopeUser:
		f.UserID = scope.ID
	case ScopeTeam:
		f.TeamID = scope.ID
	case ScopeModel:
		keep = func(l SpendLog) bool { return l.ModelGroup == scope.ID }
	case ScopeTag:
		keep = func(l SpendLog) bool { return slices.Contains(l.RequestTags, scope.ID) }
	default:
		return nil, "", fmt.Errorf("daily spend: unknown scope %q", scope.Kind)
	}
	if days <= 0 {
		days = 31
	}
	days = min(days, MaxDailySpendDays)
	first, last := utcDay(from), utcDay(to)
	if cursor != "" {
		c, err := time.Parse(time.DateOnly, cursor)
		if err != nil {
			return nil, "", fmt.Errorf("daily spend: bad cursor %q", cursor)
		}
		first = c
	}
	if first.After(last) {
		return nil, "", nil
	}
	end := first.AddDate(0, 0, days-1)
	next := ""
	if end.Before(last) {
		next = end.AddDate(0, 0, 1).Format(time.DateOnly)
	} else {
		end = last
	}
	st, err := s.RollupState(ctx)
	if err != nil {
		return nil, "", err
	}
	rolled, err := s.rolledDays(ctx, scope.Kind, first, end, st)
	if err != nil {
		return nil, "", err
	}
	byDay := map[string]*SpendFigures{}
	var folded []string // days whose rolled part left the id in Other
	for day, r := range rolled {
		if g, ok := r.IDs[scope.ID]; ok {
			byDay[day] = &g
		} else if r.Other.Calls > 0 {
			folded = append(folded, day)
		}
	}
	add := func(l SpendLog) {
		if !keep(l) {
			return
		}
		day := l.StartTime.UTC().Format(time.DateOnly)
		d := byDay[day]
		if d == nil {
			d = &SpendFigures{}
			byDay[day] = d
		}
		d.Add(logFigures(&l))
	}
	err = st.eachOpenRange(first, end, func(lo, hi time.Time) error {
		f.Start, f.End = lo, hi
		return s.EachSpendLog(ctx, f, add)
	})
	for _, day := range folded {
		if err != nil {
			break
		}
		// The rolled hours of the day are read again from the logs: drop what they added.
		d, _ := time.Parse(time.DateOnly, day)
		delete(byDay, day)
		f.Start, f.End = d, d.Add(24*time.Hour-time.Microsecond)
		err = s.EachSpendLog(ctx, f, add)
	}
	if err != nil {
		return nil, "", fmt.Errorf("daily spend of %s %s: %w", scope.Kind, scope.ID, err)
	}
	out := make([]DaySpend, 0, len(byDay))
	for day, d := range byDay {
		f := *d
		f.Spend = usdFloat(f.Spend)
		out = append(out, DaySpend{Day: day, SpendFigures: f})
	}
	slices.SortFunc(out, func(a, b DaySpend) int { return strings.Compare(a.Day, b.Day) })
	return out, next, nil
}

func utcDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
