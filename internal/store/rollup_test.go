package store_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// sumLogs adds up logs per UTC day as a rollup of kind holds them (ids not capped).
func sumLogs(kind string, logs []store.SpendLog) []store.DayRollup {
	byDay := map[string]*store.DayRollup{}
	add := func(f *store.SpendFigures, l store.SpendLog) {
		f.Spend += l.Spend
		f.Calls++
		if l.Status == store.StatusFailure {
			f.Failures++
		}
		f.PromptTokens += int64(l.PromptTokens)
		f.CompletionTokens += int64(l.CompletionTokens)
	}
	for _, l := range logs {
		day := l.StartTime.UTC().Format(time.DateOnly)
		d := byDay[day]
		if d == nil {
			d = &store.DayRollup{Day: day}
			byDay[day] = d
		}
		add(&d.Total, l)
		var ids []string
		switch kind {
		case store.ScopeModel:
			ids = []string{l.ModelGroup}
		case store.ScopeTeam:
			ids = []string{l.TeamID}
		case store.ScopeKey:
			ids = []string{l.APIKey}
		case store.ScopeUser:
			ids = []string{l.User}
		case store.ScopeTag:
			ids = l.RequestTags
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			if d.IDs == nil {
				d.IDs = map[string]store.SpendFigures{}
			}
			f := d.IDs[id]
			add(&f, l)
			d.IDs[id] = f
		}
	}
	var out []store.DayRollup
	for _, day := range slices.Sorted(func(yield func(string) bool) {
		for d := range byDay {
			if !yield(d) {
				return
			}
		}
	}) {
		out = append(out, *byDay[day])
	}
	return out
}

// roundRollups rounds the spends of rs as the store does, so float sums compare.
func roundRollups(rs []store.DayRollup) []store.DayRollup {
	r := func(f float64) float64 { return float64(int64(f*1e6+0.5)) / 1e6 }
	for i := range rs {
		rs[i].Total.Spend, rs[i].Other.Spend = r(rs[i].Total.Spend), r(rs[i].Other.Spend)
		for id, f := range rs[i].IDs {
			f.Spend = r(f.Spend)
			rs[i].IDs[id] = f
		}
	}
	return rs
}

// deleteItem deletes an item of the table, as TTL or a lost write would.
func deleteItem(tb testing.TB, c *dynamodb.Client, table, pk, sk string) {
	tb.Helper()
	if _, err := c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}}); err != nil {
		tb.Fatal(err)
	}
}

func checkRollups(t *testing.T, s *store.Store, when string, from, to time.Time, logs []store.SpendLog) {
	t.Helper()
	for _, kind := range store.RollupKinds {
		got, err := s.DailyRollups(context.Background(), kind, from, to)
		if err != nil {
			t.Fatalf("%s: DailyRollups(%s): %v", when, kind, err)
		}
		if want := roundRollups(sumLogs(kind, logs)); !reflect.DeepEqual(roundRollups(got), want) {
			t.Errorf("%s: daily %s rollups:\n got %+v\nwant %+v", when, kind, got, want)
		}
	}
}

func TestRollUp_EqualsTheLogsRerunsIdempotentlyAndTakesLateHours(t *testing.T) {
	t.Parallel()
	c, table := dynamotest.NewTable(t)
	s := store.NewWithClient(c, table)
	ctx := context.Background()
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
	logs := []store.SpendLog{
		{RequestID: "a1", APIKey: "k1", User: "u1", TeamID: "t1", ModelGroup: "gpt-4o", RequestTags: []string{"prod", "batch"}, Spend: 0.25, PromptTokens: 10, CompletionTokens: 5, Status: store.StatusSuccess, StartTime: at(1, 0, 5)},
		{RequestID: "a2", APIKey: "k2", User: "u2", TeamID: "t1", ModelGroup: "claude", Spend: 0.5, PromptTokens: 20, CompletionTokens: 8, Status: store.StatusFailure, StartTime: at(1, 0, 59)},
		{RequestID: "a3", APIKey: "k1", User: "u1", ModelGroup: "gpt-4o", RequestTags: []string{"prod"}, Spend: 1.125, Status: store.StatusSuccess, StartTime: at(1, 5, 30)},
		{RequestID: "a4", APIKey: "k3", TeamID: "t2", ModelGroup: "claude", Spend: 2, PromptTokens: 3, Status: store.StatusSuccess, StartTime: at(1, 23, 59)},
		{RequestID: "b1", APIKey: "k3", TeamID: "t2", ModelGroup: "gpt-4o", Spend: 0.001, Status: store.StatusSuccess, StartTime: at(2, 0, 0)},
		{RequestID: "b2", APIKey: "k1", User: "u1", TeamID: "t1", ModelGroup: "gpt-4o", RequestTags: []string{"batch"}, Spend: 3, Status: store.StatusSuccess, StartTime: at(2, 4, 10)},
		{RequestID: "b3", APIKey: "k2", User: "u2", TeamID: "t1", ModelGroup: "claude", Spend: 0.75, Status: store.StatusSuccess, StartTime: at(2, 12, 0)}, // open
	}
	for _, l := range logs {
		writeLog(t, s, l)
	}
	from, to := at(1, 0, 0), at(3, 0, 0)
	checkRollups(t, s, "before any roll (all from the logs)", from, to, logs)

	// Hours that ended by 06:00 on day 2 are closed: 30 hours, rolled 7 at a time.
	total, runs := 0, 0
	for more := true; more; runs++ {
		n, m, err := s.RollUp(ctx, at(2, 6, 0), from, 7)
		if err != nil {
			t.Fatal(err)
		}
		total, more = total+n, m
		if runs > 10 {
			t.Fatal("RollUp keeps reporting more hours")
		}
	}
	if st, err := s.RollupState(ctx); err != nil || total != 30 || !st.Through.Equal(at(2, 5, 0)) || !st.Since.Equal(from) {
		t.Fatalf("rolled %d hours in %d runs, state %+v (%v); want 30 hours, since %v through %v", total, runs, st, err, from, at(2, 5, 0))
	}
	checkRollups(t, s, "after rolling day 1 and day 2 to 06:00", from, to, logs)

	// The rolled hours are read from the rollups: a log deleted from the table still counts
	// in its rolled hour, while the open hours are read from the logs.
	del := func(id string) { deleteItem(t, c, table, store.PrefixSpendLog+id, store.SortSpendLog) }
	del("a3") // day 1: rolled whole
	del("b2") // day 2, 04:00: a rolled hour of a day rolled in part
	checkRollups(t, s, "rolled logs deleted", from, to, logs)

	// A rerun from scratch (state gone) writes the same items: nothing is counted twice.
	writeLog(t, s, logs[2])
	writeLog(t, s, logs[5])
	deleteItem(t, c, table, "AGG", "STATE")
	for range 2 {
		if _, _, err := s.RollUp(ctx, at(2, 6, 0), from, 100); err != nil {
			t.Fatal(err)
		}
	}
	if n, more, err := s.RollUp(ctx, at(2, 6, 0), from, 100); err != nil || n != 0 || more {
		t.Errorf("a run with nothing newly closed rolled %d hours (more %v, %v); want 0", n, more, err)
	}
	checkRollups(t, s, "rolled again", from, to, logs)

	// A call settled late into an hour that was still open is counted once its hour closes.
	late := store.SpendLog{RequestID: "b4", APIKey: "k9", User: "u9", TeamID: "t9", ModelGroup: "new-model", RequestTags: []string{"late"}, Spend: 0.5, Status: store.StatusFailure, StartTime: at(2, 6, 1)}
	writeLog(t, s, late)
	logs = append(logs, late)
	checkRollups(t, s, "late log in an open hour", from, to, logs)
	if n, _, err := s.RollUp(ctx, at(2, 13, 0), from, 100); err != nil || n != 7 {
		t.Fatalf("rolled %d hours to 13:00 (%v); want 7", n, err)
	}
	del("b4")
	del("b3")
	checkRollups(t, s, "late hours rolled (their logs deleted)", from, to, logs)

	// DailySpend of one scope adds the same up, from the rollups.
	got, _, err := s.DailySpend(ctx, store.SpendScope{Kind: store.ScopeTeam, ID: "t1"}, from, to, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.DaySpend{
		{Day: "2026-11-01", SpendFigures: store.SpendFigures{Spend: 0.75, Calls: 2, Failures: 1, PromptTokens: 30, CompletionTokens: 13}},
		{Day: "2026-11-02", SpendFigures: store.SpendFigures{Spend: 3.75, Calls: 2}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DailySpend of team t1:\n got %+v\nwant %+v", got, want)
	}
}

func TestRollUp_KeepsTheTopIDsAndReadsAFoldedIDFromItsLogs(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	ctx := context.Background()
	hour := time.Date(2026, 11, 7, 9, 0, 0, 0, time.UTC)
	n := store.RollupIDs + 3
	for i := range n {
		// Key i spends (i+1) micro-dollars: keys 0..2 are the cheapest, folded.
		writeLog(t, s, store.SpendLog{RequestID: "r" + fmtInt(i), APIKey: "key" + fmtInt(i), ModelGroup: "m", Spend: float64(i+1) / 1e6, Status: store.StatusSuccess, StartTime: hour.Add(time.Duration(i) * time.Second)})
	}
	if _, _, err := s.RollUp(ctx, hour.Add(time.Hour), hour, 10); err != nil {
		t.Fatal(err)
	}
	days, err := s.DailyRollups(ctx, store.ScopeKey, hour, hour)
	if err != nil || len(days) != 1 {
		t.Fatalf("DailyRollups: %+v, %v", days, err)
	}
	d := days[0]
	if len(d.IDs) != store.RollupIDs || d.Other.Calls != 3 || d.Total.Calls != int64(n) || d.Other.Spend != 6e-6 {
		t.Errorf("%d ids, other %+v, total %+v; want %d ids, 3 calls ($0.000006) in other, %d calls", len(d.IDs), d.Other, d.Total, store.RollupIDs, n)
	}
	if _, ok := d.IDs["key0"]; ok {
		t.Error("the cheapest key is among the ids; want it folded into other")
	}
	got, _, err := s.DailySpend(ctx, store.SpendScope{Kind: store.ScopeKey, ID: "key1"}, hour, hour, "", 0)
	if want := []store.DaySpend{{Day: "2026-11-07", SpendFigures: store.SpendFigures{Spend: 2e-6, Calls: 1}}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("DailySpend of a folded key: %+v (%v), want %+v", got, err, want)
	}
}

// A run stores each log shard's part of an hour as it reads it, so a run cut short leaves
// what it read to the next: an hour rolled again (its state gone) is not read from its logs
// a second time, and a run with no time left reports hours left instead of failing. On the
// old code, which read a day's hours in one go and stored only whole hours, the rerun read
// the logs again (here: deleted, so the hour came out empty).
func TestRollUp_StoresShardPartsSoACutShortRunResumes(t *testing.T) {
	t.Parallel()
	c, table := dynamotest.NewTable(t)
	s := store.NewWithClient(c, table)
	ctx := context.Background()
	hour := time.Date(2026, 11, 7, 9, 0, 0, 0, time.UTC)
	var logs []store.SpendLog
	for i := range 40 { // spread over the log shards by request id
		l := store.SpendLog{RequestID: "r" + fmtInt(i), APIKey: "key" + fmtInt(i%7), User: "u" + fmtInt(i%3), ModelGroup: "m", Spend: float64(i+1) / 1e4, Status: store.StatusSuccess, StartTime: hour.Add(time.Duration(i) * time.Minute / 2)}
		writeLog(t, s, l)
		logs = append(logs, l)
	}
	// No time left: nothing rolled, hours left, no error.
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n, more, err := s.RollUp(short, hour.Add(time.Hour), hour, 10); n != 0 || !more || err != nil {
		t.Fatalf("a run without time: rolled %d, more %v, %v; want 0, true, nil", n, more, err)
	}
	if n, _, err := s.RollUp(ctx, hour.Add(time.Hour), hour, 10); n != 1 || err != nil {
		t.Fatalf("rolled %d hours (%v), want 1", n, err)
	}
	checkRollups(t, s, "rolled", hour, hour, logs)
	// The hour's logs expire and its state is lost; a rerun rolls it from the stored parts.
	for _, l := range logs {
		deleteItem(t, c, table, store.PrefixSpendLog+l.RequestID, store.SortSpendLog)
	}
	deleteItem(t, c, table, "AGG", "STATE")
	if n, _, err := s.RollUp(ctx, hour.Add(time.Hour), hour, 10); n != 1 || err != nil {
		t.Fatalf("rerun rolled %d hours (%v), want 1", n, err)
	}
	checkRollups(t, s, "rolled again from the parts", hour, hour, logs)
}

// Rolling an hour adds its calls' spend to their organizations once: a rerun of the hours
// (state lost) adds nothing, a later hour adds on, a budgeted organization's remaining
// follows, and a deleted organization is skipped.
func TestRollUp_AddsEachHourToItsOrganizationOnce(t *testing.T) {
	t.Parallel()
	c, table := dynamotest.NewTable(t)
	s := store.NewWithClient(c, table)
	ctx := context.Background()
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
	budget := 10.0
	tx := s.Tx()
	for _, o := range []*store.Org{{OrganizationID: "acme", Budget: store.Budget{MaxBudget: &budget}}, {OrganizationID: "beta"}} {
		if err := tx.PutOrg(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range []store.SpendLog{
		{RequestID: "o1", ModelGroup: "gpt-4o", OrganizationID: "acme", TeamID: "t1", Spend: 0.25, Status: store.StatusSuccess, StartTime: at(1, 0, 5)},
		{RequestID: "o2", ModelGroup: "gpt-4o", OrganizationID: "acme", TeamID: "t2", Spend: 0.5, Status: store.StatusFailure, StartTime: at(1, 0, 50)},
		{RequestID: "o3", ModelGroup: "gpt-4o", OrganizationID: "acme", TeamID: "t1", Spend: 1, Status: store.StatusSuccess, StartTime: at(1, 3, 0)},
		{RequestID: "o4", ModelGroup: "gpt-4o", OrganizationID: "beta", Spend: 2, Status: store.StatusSuccess, StartTime: at(1, 1, 0)},
		{RequestID: "o5", ModelGroup: "gpt-4o", OrganizationID: "gone", Spend: 4, Status: store.StatusSuccess, StartTime: at(1, 1, 0)},
		{RequestID: "o6", ModelGroup: "gpt-4o", TeamID: "t3", Spend: 8, Status: store.StatusSuccess, StartTime: at(1, 1, 0)},
		{RequestID: "o7", ModelGroup: "gpt-4o", OrganizationID: "acme", Spend: 3, Status: store.StatusSuccess, StartTime: at(1, 5, 0)}, // open until 06:00
	} {
		writeLog(t, s, l)
	}
	check := func(when string, acme, beta float64) {
		t.Helper()
		for id, want := range map[string]float64{"acme": acme, "beta": beta} {
			o, err := s.GetOrg(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if o.Spend != want || (id == "acme" && (o.Remaining == nil || *o.Remaining != budget-want)) || (id == "beta" && o.Remaining != nil) {
				t.Errorf("%s: %s spend %v remaining %v, want %v", when, id, o.Spend, o.Remaining, want)
			}
		}
	}
	if _, _, err := s.RollUp(ctx, at(1, 5, 0), at(1, 0, 0), 100); err != nil {
		t.Fatal(err)
	}
	check("hours to 05:00 rolled", 1.75, 2)
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "AGG"}, "sk": &types.AttributeValueMemberS{Value: "STATE"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RollUp(ctx, at(1, 5, 0), at(1, 0, 0), 100); err != nil {
		t.Fatal(err)
	}
	check("the same hours rolled again", 1.75, 2)
	if _, _, err := s.RollUp(ctx, at(1, 6, 0), at(1, 0, 0), 100); err != nil {
		t.Fatal(err)
	}
	check("05:00 rolled", 4.75, 2)
}
