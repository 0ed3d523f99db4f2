package store_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/callid"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// BenchmarkRollUpHour measures how fast the rotator rolls up one hour of spend logs
// (LLMGATE_BENCH_ROLLUP_LOGS of them, default 20,000, over 5,000 keys), reading it from the
// logs each time (state and stored parts deleted between rounds). It reports logs/s: an
// hour of 2,000 calls/s is 7.2M logs.
//
//	go test -run '^$' -bench RollUpHour -benchtime 3x ./internal/store/
func BenchmarkRollUpHour(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("LLMGATE_BENCH_ROLLUP_LOGS")); err == nil && v > 0 {
		n = v
	}
	c, table := dynamotest.NewTable(b)
	s := store.NewWithClient(c, table)
	ctx := context.Background()
	hour := time.Date(2026, 11, 7, 9, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				start := hour.Add(time.Duration(i) * time.Hour / time.Duration(n)).Truncate(time.Millisecond)
				l := store.SpendLog{RequestID: callid.New(start), APIKey: "key" + strconv.Itoa(i%5000), User: "u" + strconv.Itoa(i%500),
					TeamID: "t" + strconv.Itoa(i%50), ModelGroup: "m" + strconv.Itoa(i%5), RequestTags: []string{"tag" + strconv.Itoa(i%20)},
					Spend: 1e-4, PromptTokens: 100, CompletionTokens: 20, Status: store.StatusSuccess, StartTime: start}
				r, err := s.Reserve(ctx, store.ReserveInput{RequestID: l.RequestID, Model: l.ModelGroup, Now: l.StartTime, TTL: time.Minute, Log: l})
				if err == nil {
					err = s.Settle(ctx, r, store.Settlement{Cost: l.Spend, Log: &l})
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	for b.Loop() {
		if rolled, _, err := s.RollUp(ctx, hour.Add(time.Hour), hour, 1); err != nil || rolled != 1 {
			b.Fatalf("rolled %d: %v", rolled, err)
		}
		b.StopTimer()
		deleteItem(b, c, table, "AGG", "STATE")
		parts, err := c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: store.PrefixRollup + "PART#2026-11-07T09"}}})
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range parts.Items {
			deleteItem(b, c, table, store.PrefixRollup+"PART#2026-11-07T09", it["sk"].(*types.AttributeValueMemberS).Value)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "logs/s")
}
