// Command seedkeys writes n virtual keys straight into llmgate's table in batched
// transactions, so the console's browser test gets a 10,000-key account in seconds (as many
// /key/generate calls take minutes on DynamoDB Local). The keys are the store's own records,
// written with the store's own code; their secrets are thrown away.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

func main() {
	endpoint := flag.String("endpoint", "", "DynamoDB endpoint (DynamoDB Local)")
	table := flag.String("table", "", "llmgate's table")
	n := flag.Int("n", 10000, "keys to write")
	prefix := flag.String("alias-prefix", "seed-", "key_alias prefix; the alias ends with the key's number")
	flag.Parse()
	if err := run(context.Background(), *endpoint, *table, *n, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "seedkeys:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, endpoint, table string, n int, prefix string) error {
	if endpoint == "" || table == "" {
		return fmt.Errorf("-endpoint and -table are required")
	}
	st, err := store.New(ctx, store.Options{Table: table, Region: "us-east-1", Endpoint: endpoint})
	if err != nil {
		return err
	}
	// Older than anything created after the seed, one millisecond apart, so the newest-first
	// order is the seed order reversed.
	start := time.Now().Add(-time.Duration(n) * time.Millisecond)
	b := st.Batch()
	for i := range n {
		raw, err := auth.NewKey()
		if err != nil {
			return err
		}
		alias := fmt.Sprintf("%s%05d", prefix, i)
		at := start.Add(time.Duration(i) * time.Millisecond).UTC()
		k := &store.Key{
			Token: auth.Hash(raw), KeyName: auth.KeyName(raw), KeyAlias: &alias,
			Models: []string{}, Aliases: map[string]string{}, Metadata: map[string]any{},
			Audit: store.Audit{CreatedAt: at, UpdatedAt: at, CreatedBy: "seedkeys", UpdatedBy: "seedkeys"},
		}
		tx := st.Tx()
		if err := tx.PutKey(k); err != nil {
			return err
		}
		b.Add(tx)
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("write %d keys: %w", n, err)
	}
	return nil
}
