package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/llmgate/llmgate/internal/store"
)

func fmtInt(i int) string { return strconv.Itoa(i) }

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// spendLogQuery is a SpendLogs filter and the request ids it returns, in order.
type spendLogQuery struct {
	name string
	f    store.SpendLogFilter
	want []string
}

// checkSpendLogs runs each query on s and compares the request ids it returns.
func checkSpendLogs(t *testing.T, s *store.Store, queries []spendLogQuery) {
	t.Helper()
	for _, q := range queries {
		got, err := s.SpendLogs(context.Background(), q.f)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var ids []string
		for _, l := range got {
			ids = append(ids, l.RequestID)
		}
		if !equal(ids, q.want) {
			t.Errorf("%s: got %v, want %v", q.name, ids, q.want)
		}
	}
}
