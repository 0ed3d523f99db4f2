package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// BenchmarkListKeys_10k measures one /key/list page of 25 keys in an account of 10,000 on
// DynamoDB Local: numbered pages (which count every key for total_count) against cursor
// pages (which read the page only), and a count up to 1,000 (the console's Keys card).
//
//	go test -run '^$' -bench ListKeys_10k -benchtime 10x ./internal/store/
func BenchmarkListKeys_10k(b *testing.B) {
	const n, size = 10_000, 25
	st := store.NewWithClient(dynamotest.NewTable(b))
	ctx := context.Background()
	batch := st.Batch()
	start := time.Now().Add(-n * time.Millisecond).UTC()
	for i := range n {
		at := start.Add(time.Duration(i) * time.Millisecond)
		tx := st.Tx()
		if err := tx.PutKey(&store.Key{Token: fmt.Sprintf("%064x", i), KeyName: "sk-...bench", Audit: store.Audit{CreatedAt: at, UpdatedAt: at}}); err != nil {
			b.Fatal(err)
		}
		batch.Add(tx)
	}
	if err := batch.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("numbered page 1 with total_count", func(b *testing.B) {
		for b.Loop() {
			if keys, total, err := st.ListKeys(ctx, store.KeyFilter{}, store.Page{Number: 1, Size: size, Desc: true}); err != nil || len(keys) != size || total != n {
				b.Fatalf("%d keys of %d: %v", len(keys), total, err)
			}
		}
	})
	b.Run("numbered page 200 with total_count", func(b *testing.B) {
		for b.Loop() {
			if keys, _, err := st.ListKeys(ctx, store.KeyFilter{}, store.Page{Number: 200, Size: size, Desc: true}); err != nil || len(keys) != size {
				b.Fatalf("%d keys: %v", len(keys), err)
			}
		}
	})
	b.Run("count up to 1,000", func(b *testing.B) {
		for b.Loop() {
			if got, more, err := st.CountKeys(ctx, store.KeyFilter{}, 1000); err != nil || got != 1000 || !more {
				b.Fatalf("counted %d (more %v): %v", got, more, err)
			}
		}
	})
	var cursor200 string
	for range 199 {
		_, next, err := st.ListKeysAfter(ctx, store.KeyFilter{}, true, cursor200, size)
		if err != nil {
			b.Fatal(err)
		}
		cursor200 = next
	}
	b.Run("cursor page 1", func(b *testing.B) {
		for b.Loop() {
			if keys, next, err := st.ListKeysAfter(ctx, store.KeyFilter{}, true, "", size); err != nil || len(keys) != size || next == "" {
				b.Fatalf("%d keys: %v", len(keys), err)
			}
		}
	})
	b.Run("cursor page 200", func(b *testing.B) {
		for b.Loop() {
			if keys, _, err := st.ListKeysAfter(ctx, store.KeyFilter{}, true, cursor200, size); err != nil || len(keys) != size {
				b.Fatalf("%d keys: %v", len(keys), err)
			}
		}
	})
}
