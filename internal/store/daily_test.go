package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// writeLog writes the spend log of a call that held nothing (as the master key's without a
// proxy budget), through Reserve and Settle as the gateway writes it.
func writeLog(t *testing.T, s *store.Store, l store.SpendLog) {
	t.Helper()
	ctx := context.Background()
	r, err := s.Reserve(ctx, store.ReserveInput{RequestID: l.RequestID, Model: l.ModelGroup, Now: l.StartTime, TTL: time.Minute, Log: l})
	if err != nil {
		t.Fatalf("Reserve %s: %v", l.RequestID, err)
	}
	if err := s.Settle(ctx, r, store.Settlement{Cost: l.Spend, Log: &l}); err != nil {
		t.Fatalf("Settle %s: %v", l.RequestID, err)
	}
}

func TestDailySpend_AddsUpEachScopePerDayAndPages(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	ctx := context.Background()
	day := func(d int, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	logs := []store.SpendLog{
		{RequestID: "r1", APIKey: "k1", User: "u1", TeamID: "t1", ModelGroup: "gpt-4o", RequestTags: []string{"prod"}, Spend: 0.25, PromptTokens: 10, CompletionTokens: 5, Status: store.StatusSuccess, StartTime: day(1, 23)},
		{RequestID: "r2", APIKey: "k1", User: "u1", TeamID: "t1", ModelGroup: "gpt-4o", Spend: 0.5, PromptTokens: 20, CompletionTokens: 8, Status: store.StatusFailure, StartTime: day(2, 0)},
		{RequestID: "r3", APIKey: "k2", User: "u2", TeamID: "t1", ModelGroup: "claude", RequestTags: []string{"prod", "batch"}, Spend: 1, PromptTokens: 1, CompletionTokens: 1, Status: store.StatusSuccess, StartTime: day(2, 12)},
		{RequestID: "r4", APIKey: "k1", User: "u1", ModelGroup: "claude", Spend: 2, Status: store.StatusSuccess, StartTime: day(5, 1)},
		{RequestID: "r5", APIKey: "k1", User: "u1", ModelGroup: "gpt-4o", Spend: 4, Status: store.StatusSuccess, StartTime: day(9, 1)}, // after the range
	}
	for _, l := range logs {
		writeLog(t, s, l)
	}
	tests := []struct {
		scope store.SpendScope
		want  []store.DaySpend
	}{
		{store.SpendScope{Kind: store.ScopeKey, ID: "k1"}, []store.DaySpend{
			{Day: "2026-11-01", SpendFigures: store.SpendFigures{Spend: 0.25, Calls: 1, PromptTokens: 10, CompletionTokens: 5}},
			{Day: "2026-11-02", SpendFigures: store.SpendFigures{Spend: 0.5, Calls: 1, Failures: 1, PromptTokens: 20, CompletionTokens: 8}},
			{Day: "2026-11-05", SpendFigures: store.SpendFigures{Spend: 2, Calls: 1}},
		}},
		{store.SpendScope{Kind: store.ScopeTeam, ID: "t1"}, []store.DaySpend{
			{Day: "2026-11-01", SpendFigures: store.SpendFigures{Spend: 0.25, Calls: 1, PromptTokens: 10, CompletionTokens: 5}},
			{Day: "2026-11-02", SpendFigures: store.SpendFigures{Spend: 1.5, Calls: 2, Failures: 1, PromptTokens: 21, CompletionTokens: 9}},
		}},
		{store.SpendScope{Kind: store.ScopeUser, ID: "u2"}, []store.DaySpend{
			{Day: "2026-11-02", SpendFigures: store.SpendFigures{Spend: 1, Calls: 1, PromptTokens: 1, CompletionTokens: 1}},
		}},
		{store.SpendScope{Kind: store.ScopeModel, ID: "claude"}, []store.DaySpend{
			{Day: "2026-11-02", SpendFigures: store.SpendFigures{Spend: 1, Calls: 1, PromptTokens: 1, CompletionTokens: 1}},
			{Day: "2026-11-05", SpendFigures: store.SpendFigures{Spend: 2, Calls: 1}},
		}},
		{store.SpendScope{Kind: store.ScopeTag, ID: "prod"}, []store.DaySpend{
			{Day: "2026-11-01", SpendFigures: store.SpendFigures{Spend: 0.25, Calls: 1, PromptTokens: 10, CompletionTokens: 5}},
			{Day: "2026-11-02", SpendFigures: store.SpendFigures{Spend: 1, Calls: 1, PromptTokens: 1, CompletionTokens: 1}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.scope.Kind, func(t *testing.T) {
			// Pages of 2 days: 1-2, 3-4, 5-6, 7 (from day 1 to day 7).
			var got []store.DaySpend
			cursor, pages := "", 0
			for {
				page, next, err := s.DailySpend(ctx, tc.scope, day(1, 5), day(7, 5), cursor, 2)
				if err != nil {
					t.Fatal(err)
				}
				got, cursor = append(got, page...), next
				if pages++; cursor == "" || pages > 10 {
					break
				}
			}
			if pages != 4 {
				t.Errorf("%d pages of 2 days over 7 days, want 4", pages)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("daily spend of %+v:\n got %+v\nwant %+v", tc.scope, got, tc.want)
			}
		})
	}
	if _, _, err := s.DailySpend(ctx, store.SpendScope{Kind: "org", ID: "x"}, day(1, 0), day(2, 0), "", 0); err == nil {
		t.Error("an unknown scope was accepted")
	}
}

func TestSpendLogs_ShardedIndexesReadBackNewestFirst(t *testing.T) {
	t.Parallel()
	c, table := dynamotest.NewTable(t)
	s := store.NewWithClient(c, table)
	ctx := context.Background()
	base := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	const n = 40
	for i := range n {
		// User "u" and user "u#1" (whose index keys look like "u"'s shard 1) share the team.
		user := "u"
		if i%4 == 0 {
			user = "u#1"
		}
		writeLog(t, s, store.SpendLog{RequestID: "req-" + fmtInt(i), APIKey: "k1", User: user, TeamID: "t1", ModelGroup: "m",
			Spend: 0.01, Status: store.StatusSuccess, StartTime: base.Add(time.Duration((i*7)%n) * time.Minute)})
	}
	out, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	shards := map[string]bool{}
	for _, it := range out.Items {
		if v, ok := it["gsi_key"].(*types.AttributeValueMemberS); ok {
			shards[v.Value] = true
		}
	}
	if len(shards) < store.LogShards/2 {
		t.Errorf("%d logs of one key use %d index keys; want them spread over about %d", n, len(shards), store.LogShards)
	}
	for _, f := range []struct {
		filter store.SpendLogFilter
		want   int
	}{
		{store.SpendLogFilter{APIKey: "k1"}, n},
		{store.SpendLogFilter{TeamID: "t1"}, n},
		{store.SpendLogFilter{UserID: "u"}, n - n/4},
		{store.SpendLogFilter{UserID: "u#1"}, n / 4},
		{store.SpendLogFilter{Start: base, End: base.Add(time.Hour)}, n},
		{store.SpendLogFilter{APIKey: "k1", Limit: 5}, 5},
	} {
		logs, err := s.SpendLogs(ctx, f.filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != f.want {
			t.Errorf("%+v: %d logs, want %d", f.filter, len(logs), f.want)
		}
		for i := 1; i < len(logs); i++ {
			if logs[i].StartTime.After(logs[i-1].StartTime) {
				t.Errorf("%+v: log %d (%v) is newer than log %d (%v); want newest first", f.filter, i, logs[i].StartTime, i-1, logs[i-1].StartTime)
				break
			}
		}
		for _, l := range logs {
			if f.filter.UserID != "" && l.User != f.filter.UserID {
				t.Errorf("%+v: got a log of user %q", f.filter, l.User)
				break
			}
		}
	}
}
