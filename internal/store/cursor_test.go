package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

func TestListKeysAfter_PagesEveryKeyOnceInOrder(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var want []string // newest first
	for i := range 7 {
		token := fmt.Sprintf("%064d", i)
		team := "t1"
		if i%2 == 1 {
			team = "t2"
		}
		tx := s.Tx()
		if err := tx.PutKey(&store.Key{Token: token, KeyName: "sk-...x", TeamID: &team, Audit: store.Audit{CreatedAt: base.Add(time.Duration(i) * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want = append([]string{token}, want...)
	}
	pages := func(f store.KeyFilter, size int) ([]string, int) {
		var got []string
		cursor, n := "", 0
		for {
			keys, next, err := s.ListKeysAfter(ctx, f, true, cursor, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				got = append(got, k.Token)
			}
			n++
			if cursor = next; cursor == "" || n > 10 {
				return got, n
			}
		}
	}
	if got, n := pages(store.KeyFilter{}, 3); !reflect.DeepEqual(got, want) || n != 3 {
		t.Errorf("all keys in pages of 3: %d pages %v, want 3 pages %v", n, got, want)
	}
	if got, n := pages(store.KeyFilter{}, 7); len(got) != 7 || n != 1 {
		t.Errorf("7 keys in pages of 7: %d pages of %d keys, want 1 page (no empty last page)", n, len(got))
	}
	if got, _ := pages(store.KeyFilter{TeamID: "t2"}, 2); !reflect.DeepEqual(got, []string{want[1], want[3], want[5]}) {
		t.Errorf("team t2's keys: %v", got)
	}
	for _, bad := range []string{"x", "eyJzIjoiVEVBTSMiLCJwIjoiYSIsImsiOiJiIn0"} { // not base64 JSON; another list's sort key
		if _, _, err := s.ListKeysAfter(ctx, store.KeyFilter{}, true, bad, 3); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", bad, err)
		}
	}
}

func TestSpendLogsAfter_PagesEveryLogOnceNewestFirst(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	ctx := context.Background()
	base := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	for i := range 9 {
		// Logs 3 and 4 start at the same instant, so a page may end between them.
		at := base.Add(time.Duration(min(i, 8-i+i%2)) * time.Minute)
		writeLog(t, s, store.SpendLog{RequestID: fmt.Sprintf("req-%d", i), APIKey: "k1", ModelGroup: "m", Spend: 0.01, Status: store.StatusSuccess, StartTime: at})
	}
	for _, f := range []store.SpendLogFilter{{APIKey: "k1"}, {Start: base.Add(-time.Hour), End: base.Add(time.Hour)}} {
		all, err := s.SpendLogs(ctx, f)
		if err != nil || len(all) != 9 {
			t.Fatalf("%+v: %d logs (%v)", f, len(all), err)
		}
		var got []store.SpendLog
		cursor := ""
		for range 10 {
			page, next, err := s.SpendLogsAfter(ctx, f, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if cursor = next; cursor == "" {
				break
			}
		}
		if !reflect.DeepEqual(got, all) {
			t.Errorf("%+v: pages of 2 gave %d logs, want the %d of SpendLogs in the same order", f, len(got), len(all))
		}
	}
	if _, _, err := s.SpendLogsAfter(ctx, store.SpendLogFilter{APIKey: "k1"}, "bm90LWEtbG9n", 2); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("a cursor that is no log's sort key: %v, want ErrBadCursor", err)
	}
}
