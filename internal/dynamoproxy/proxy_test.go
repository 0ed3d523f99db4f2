package dynamoproxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/llmgate/llmgate/internal/dynamoproxy"
	"github.com/llmgate/llmgate/internal/dynamotest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// start runs a proxy in front of the shared DynamoDB Local and returns it with a client
// (no SDK retries) and a fresh table reached through it.
func start(t *testing.T, o dynamoproxy.Options) (*dynamoproxy.Proxy, *dynamodb.Client, string) {
	t.Helper()
	o.Target = dynamotest.Endpoint(t)
	p, err := dynamoproxy.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	c, table := dynamotest.NewTable(t, func(d *dynamodb.Options) {
		d.BaseEndpoint = aws.String(p.URL())
		d.RetryMaxAttempts = 1
	})
	return p, c, table
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(pk), "sk": s("X")}
}

func TestFaults_AreTheErrorsAWSReturns(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		fault dynamoproxy.Fault
		tx    bool
		check func(error) bool
	}{
		{dynamoproxy.Conflict, true, func(err error) bool {
			var tce *types.TransactionCanceledException
			if !errors.As(err, &tce) || len(tce.CancellationReasons) != 2 {
				return false
			}
			codes := aws.ToString(tce.CancellationReasons[0].Code) + "," + aws.ToString(tce.CancellationReasons[1].Code)
			return codes == "None,TransactionConflict" || codes == "TransactionConflict,None"
		}},
		{dynamoproxy.Conflict, false, func(err error) bool {
			var tc *types.TransactionConflictException
			return errors.As(err, &tc)
		}},
		{dynamoproxy.Throughput, false, func(err error) bool {
			var pt *types.ProvisionedThroughputExceededException
			return errors.As(err, &pt)
		}},
		{dynamoproxy.Throttling, true, func(err error) bool {
			var ae smithy.APIError
			return errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException"
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.fault), func(t *testing.T) {
			p, c, table := start(t, dynamoproxy.Options{Every: 1, Faults: []dynamoproxy.Fault{tc.fault}})
			var err error
			if tc.tx {
				_, err = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Put: &types.Put{TableName: aws.String(table), Item: key("a")}},
					{Put: &types.Put{TableName: aws.String(table), Item: key("b")}},
				}})
			} else {
				_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key("a"),
					UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1")}})
			}
			if !tc.check(err) {
				t.Fatalf("got %v (%T), want the %s error AWS returns", err, err, tc.fault)
			}
			// Nothing reached DynamoDB Local: read it directly.
			direct := dynamotest.Client(t)
			got, err := direct.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("a"), ConsistentRead: aws.Bool(true)})
			if err != nil || len(got.Item) != 0 {
				t.Errorf("after a fault the item is %v (err %v); want nothing written", got.Item, err)
			}
			if u := p.Usage(); u.Faults[tc.fault] != 1 {
				t.Errorf("faults counted %v, want 1 %s", u.Faults, tc.fault)
			}
		})
	}
}

func TestFaults_AtARate(t *testing.T) {
	ctx := context.Background()
	p, c, table := start(t, dynamoproxy.Options{Rate: 0.2})
	failed := 0
	const calls = 400
	for range calls {
		if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("a")}); err != nil {
			failed++
		}
	}
	// 20 % of 400 is 80; the binomial's standard deviation is 8.
	if failed < 50 || failed > 110 {
		t.Errorf("%d of %d calls failed at rate 0.2, want about 80", failed, calls)
	}
	if u := p.Usage(); u.Faults[dynamoproxy.Conflict] != 0 {
		t.Errorf("a read got a transaction conflict: %v", u.Faults)
	}
	p.SetRate(0)
	for range 50 {
		if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("a")}); err != nil {
			t.Fatalf("rate 0: %v", err)
		}
	}
}

func TestPrice_AsDynamoDBBills(t *testing.T) {
	ctx := context.Background()
	pad := func(size int) types.AttributeValue { return s(strings.Repeat("x", size)) }
	type step func(c *dynamodb.Client, table string) error
	put := func(pk string, extra map[string]types.AttributeValue) step {
		return func(c *dynamodb.Client, table string) error {
			it := key(pk)
			for k, v := range extra {
				it[k] = v
			}
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it})
			return err
		}
	}
	add := func(pk string) step {
		return func(c *dynamodb.Client, table string) error {
			_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key(pk),
				UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1")}})
			return err
		}
	}
	tests := []struct {
		name  string
		setup []step
		run   step
		want  float64
		index float64 // of want, on index entries
	}{
		{"small put", nil, put("a", nil), 1, 0},
		{"1.5 KB put", nil, put("a", map[string]types.AttributeValue{"pad": pad(1500)}), 2, 0},
		{"update of a 3 KB item", []step{put("a", map[string]types.AttributeValue{"pad": pad(3000)})}, add("a"), 3, 0},
		{"put in a keys-only index", nil, put("a", map[string]types.AttributeValue{"kind": s("K"), "gsi_sort": s("1")}), 2, 1},
		{"update leaving a keys-only index entry alone",
			[]step{put("a", map[string]types.AttributeValue{"kind": s("K"), "gsi_sort": s("1")})}, add("a"), 1, 0},
		{"put of a 1.9 KB item in an all-attributes index", nil,
			put("a", map[string]types.AttributeValue{"gsi_key": s("k"), "gsi_sort": s("1"), "pad": pad(1900)}), 4, 2},
		{"delete in an index", []step{put("a", map[string]types.AttributeValue{"kind": s("K"), "gsi_sort": s("1")})},
			func(c *dynamodb.Client, table string) error {
				_, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("a")})
				return err
			}, 2, 1},
		{"failed condition on a 2 KB item", []step{put("a", map[string]types.AttributeValue{"pad": pad(2000)})},
			func(c *dynamodb.Client, table string) error {
				_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key("a"),
					ConditionExpression: aws.String("attribute_not_exists(pk)")})
				var ccf *types.ConditionalCheckFailedException
				if errors.As(err, &ccf) {
					return nil
				}
				return errors.New("want a failed condition")
			}, 2, 0},
		// DynamoDB Local reports 2 for this transaction: 2 per item, counted once.
		{"transaction: put, update, condition check", []step{put("b", nil), put("c", nil)},
			func(c *dynamodb.Client, table string) error {
				_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Put: &types.Put{TableName: aws.String(table), Item: key("a")}},
					{Update: &types.Update{TableName: aws.String(table), Key: key("b"), UpdateExpression: aws.String("ADD n :one"),
						ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1")}}},
					{ConditionCheck: &types.ConditionCheck{TableName: aws.String(table), Key: key("c"), ConditionExpression: aws.String("attribute_exists(pk)")}},
				}})
				return err
			}, 6, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, c, table := start(t, dynamoproxy.Options{Price: true})
			for _, st := range tc.setup {
				if err := st(c, table); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			p.Reset()
			if err := tc.run(c, table); err != nil {
				t.Fatal(err)
			}
			u := p.Usage()
			index := 0.0
			for _, ix := range u.IndexKeys {
				index += ix.WCU
			}
			if u.WCU != tc.want || index != tc.index {
				t.Errorf("priced %g WCU (%g on index entries), want %g (%g)", u.WCU, index, tc.want, tc.index)
			}
			a := u.Items[table+"/ a X"]
			if tc.name != "transaction: put, update, condition check" && (a == nil || a.WCU != tc.want-tc.index || a.PeakWCU != a.WCU) {
				t.Errorf("item a: %+v, want %g WCU in its second", a, tc.want-tc.index)
			}
		})
	}
}

func TestPrice_APartitionIsTheSumOfItsItems(t *testing.T) {
	ctx := context.Background()
	p, c, table := start(t, dynamoproxy.Options{Price: true})
	for _, sk := range []string{"1", "2", "3"} {
		it := map[string]types.AttributeValue{"pk": s("day"), "sk": s(sk)}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key("other")}); err != nil {
		t.Fatal(err)
	}
	u := p.Usage()
	if day := u.Partitions[table+"/ day "]; day == nil || day.Writes != 3 || day.WCU != 3 {
		t.Errorf("partition day: %+v, want 3 writes of 1 WCU", day)
	}
	if it := u.Items[table+"/ day 2"]; it == nil || it.WCU != 1 {
		t.Errorf("item day/2: %+v, want 1 WCU", it)
	}
	if other := u.Partitions[table+"/ other "]; other == nil || other.WCU != 1 || len(u.Partitions) != 2 {
		t.Errorf("partitions %v, want day and other", u.Partitions)
	}
}
