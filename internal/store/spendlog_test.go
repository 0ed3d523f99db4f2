package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/llmgate/llmgate/internal/callid"
	"github.com/llmgate/llmgate/internal/store"
)

// logItems returns the spend log items of the table by request id, as stored.
func logItems(t *testing.T, c *dynamodb.Client, table string) map[string]map[string]types.AttributeValue {
	t.Helper()
	out := map[string]map[string]types.AttributeValue{}
	pager := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{
		TableName:                 aws.String(table),
		FilterExpression:          aws.String("attribute_exists(request_id) AND begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: store.PrefixSpendLog}},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			var l store.SpendLog
			if err := attributevalue.UnmarshalMap(it, &l); err != nil {
				t.Fatal(err)
			}
			out[l.RequestID] = it
		}
	}
	return out
}

func str(it map[string]types.AttributeValue, name string) string {
	v, _ := it[name].(*types.AttributeValueMemberS)
	if v == nil {
		return ""
	}
	return v.Value
}

// Logs of call ids (dated) are stored in their day's shard and listed from the table; logs
// of other ids (an older build's) keep their old item and by_kind entry. Both are found by
// call id, and listed and rolled up together, exactly at hour and day boundaries.
func TestSpendLogs_DatedAndUndatedIDsAreListedAndRolledUpExactlyAcrossHoursAndDays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	at := func(d, h, m, s, ms int) time.Time { return time.Date(2026, 11, d, h, m, s, ms*1e6, time.UTC) }
	dated := func(start time.Time) string { return callid.New(start) }
	logs := []store.SpendLog{
		{RequestID: dated(at(30, 23, 59, 59, 999)), ResponseID: "resp-a", APIKey: "k1", User: "u1", TeamID: "t1", ModelGroup: "m", Spend: 1, Status: store.StatusSuccess, StartTime: at(30, 23, 59, 59, 999)},
		{RequestID: uuid.NewString(), ResponseID: "resp-b", APIKey: "k1", User: "u1", ModelGroup: "m", Spend: 2, Status: store.StatusSuccess, StartTime: at(30, 23, 59, 59, 999).Add(500 * time.Microsecond)},
		{RequestID: dated(at(31, 0, 0, 0, 0)), APIKey: "k2", TeamID: "t1", ModelGroup: "m", Spend: 4, Status: store.StatusFailure, StartTime: at(31, 0, 0, 0, 0)},
		{RequestID: dated(at(31, 0, 59, 59, 999)), ResponseID: "resp-d", APIKey: "k1", User: "u1", ModelGroup: "m", Spend: 8, Status: store.StatusSuccess, StartTime: at(31, 0, 59, 59, 999)},
		{RequestID: uuid.NewString(), APIKey: "k2", ModelGroup: "m", Spend: 16, Status: store.StatusSuccess, StartTime: at(31, 1, 0, 0, 0)},
		{RequestID: dated(at(31, 1, 0, 0, 0)), APIKey: "k2", ModelGroup: "m", Spend: 32, Status: store.StatusSuccess, StartTime: at(31, 1, 0, 0, 0)},
	}
	// The limiter takes a call's start a moment after the gateway made its id: the last ms
	// of a day plus 0.6 ms is the next day, but the log is listed at its id's time.
	for _, l := range logs {
		if _, ok := callid.Time(l.RequestID); ok {
			l.StartTime = l.StartTime.Add(600 * time.Microsecond)
		}
		writeLog(t, s, l)
	}

	items := logItems(t, c, table)
	for i, l := range logs {
		it := items[l.RequestID]
		if _, ok := callid.Time(l.RequestID); ok {
			day := l.StartTime.Format(time.DateOnly)
			if pk, sk := str(it, "pk"), str(it, "sk"); !strings.HasPrefix(pk, "LOG#"+day+"#") || sk != "LOG#"+l.StartTime.Format("2006-01-02T15:04:05.000000Z")+"#"+l.RequestID || str(it, "kind") != "" {
				t.Errorf("log %d (dated): pk %q sk %q kind %q; want pk LOG#%s#<shard>, its start in sk, no by_kind entry", i, pk, sk, str(it, "kind"), day)
			}
		} else if str(it, "pk") != "LOG#"+l.RequestID || str(it, "sk") != "LOG" || str(it, "kind") == "" {
			t.Errorf("log %d (undated): pk %q sk %q kind %q; want the old item", i, str(it, "pk"), str(it, "sk"), str(it, "kind"))
		}
		got, err := s.GetSpendLog(ctx, l.RequestID)
		if err != nil || !got.StartTime.Equal(l.StartTime) || got.Spend != l.Spend {
			t.Errorf("GetSpendLog(log %d) = %+v, %v; want start %v spend %v", i, got, err, l.StartTime, l.Spend)
		}
	}
	if _, err := s.GetSpendLog(ctx, callid.New(at(31, 0, 0, 0, 0))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSpendLog of an unknown call id = %v, want ErrNotFound", err)
	}

	id := func(i ...int) []string {
		var out []string
		for _, n := range i {
			out = append(out, logs[n].RequestID)
		}
		return out
	}
	hour := func(d, h int) store.SpendLogFilter {
		return store.SpendLogFilter{Start: at(d, h, 0, 0, 0), End: at(d, h, 59, 59, 999).Add(999 * time.Microsecond)}
	}
	// Logs 4 and 5 start at the same instant: ordered by id.
	at01 := id(5, 4)
	if logs[5].RequestID < logs[4].RequestID {
		at01 = id(4, 5)
	}
	checkSpendLogs(t, s, []spendLogQuery{
		{"all, newest first", store.SpendLogFilter{Start: at(30, 0, 0, 0, 0), End: at(31, 23, 0, 0, 0)}, append(at01, id(3, 2, 1, 0)...)},
		{"the hour before midnight", hour(30, 23), id(1, 0)},
		{"the hour after midnight", hour(31, 0), id(3, 2)},
		{"the next hour", hour(31, 1), at01},
		{"by key k1", store.SpendLogFilter{APIKey: "k1"}, id(3, 1, 0)},
		{"by team t1", store.SpendLogFilter{TeamID: "t1"}, id(2, 0)},
	})

	from, to := at(30, 0, 0, 0, 0), at(32, 0, 0, 0, 0)
	checkRollups(t, s, "from the logs", from, to, logs)
	if n, _, err := s.RollUp(ctx, at(31, 1, 0, 0, 0), from, 100); err != nil || n != 25 {
		t.Fatalf("rolled %d hours to 01:00 (%v); want 25", n, err)
	}
	checkRollups(t, s, "rolled to 01:00", from, to, logs)
	if n, _, err := s.RollUp(ctx, at(31, 2, 0, 0, 0), from, 100); err != nil || n != 1 {
		t.Fatalf("rolled %d hours to 02:00 (%v); want 1", n, err)
	}
	checkRollups(t, s, "rolled to 02:00", from, to, logs)
}

// A dated log is written once however often its call is settled: by the call, again after a
// lost answer, and by rotators racing to settle it as expired.
func TestSettle_ADatedLogOnceUnderRepeatedAndRacingSettles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, table := newStore(t)
	a := newAccounts(t, s, nil)
	id := callid.New(time.Now())
	in := a.input(id, 0.25)
	r, err := s.Reserve(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	settled := make([]bool, 4)
	for i := range settled {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				log := in.Log
				log.Spend = 0.25
				err = s.Settle(ctx, r, store.Settlement{Cost: 0.25, Log: &log})
			} else {
				var n int
				n, err = s.SettleStale(ctx, r.ExpireAt().Add(time.Second), 10)
				if n > 1 {
					t.Errorf("SettleStale settled %d", n)
				}
				settled[i] = n == 1
				return
			}
			settled[i] = err == nil
			if err != nil && !errors.Is(err, store.ErrSettled) {
				t.Errorf("Settle: %v", err)
			}
		})
	}
	wg.Wait()
	n := 0
	for _, ok := range settled {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d settles succeeded, want 1", n)
	}
	if key, _, _, _ := a.spends(t, s); key != 0.25 {
		t.Errorf("key spend %v, want 0.25 (charged once)", key)
	}
	var found []string
	for rid := range logItems(t, c, table) {
		found = append(found, rid)
	}
	if !equal(found, []string{id}) {
		t.Errorf("spend logs %v, want one of %s", found, id)
	}
}
