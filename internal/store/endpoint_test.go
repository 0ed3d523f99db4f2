package store_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/llmgate/llmgate/internal/store"
)

// The memo answers what the SDK's rules answer, the first time and from memory, for the
// regions and endpoints a deployment can use, and keeps no errors.
func TestEndpointMemoAnswersAsTheRules(t *testing.T) {
	ctx := context.Background()
	rules, memo := dynamodb.NewDefaultEndpointResolverV2(), store.NewEndpointMemo()
	params := func(region string, mod func(*dynamodb.EndpointParameters)) dynamodb.EndpointParameters {
		p := dynamodb.EndpointParameters{
			Region: aws.String(region), UseDualStack: aws.Bool(false), UseFIPS: aws.Bool(false),
			AccountIdEndpointMode: aws.String("preferred"), ResourceArn: aws.String("llmgate"),
		}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	cases := map[string]dynamodb.EndpointParameters{
		"us-east-1":  params("us-east-1", nil),
		"eu-west-1":  params("eu-west-1", nil),
		"local":      params("us-east-1", func(p *dynamodb.EndpointParameters) { p.Endpoint = aws.String("http://127.0.0.1:8000") }),
		"fips":       params("us-east-1", func(p *dynamodb.EndpointParameters) { p.UseFIPS = aws.Bool(true) }),
		"dual-stack": params("eu-west-1", func(p *dynamodb.EndpointParameters) { p.UseDualStack = aws.Bool(true) }),
		"china":      params("cn-north-1", nil),
		"gov-cloud":  params("us-gov-west-1", nil),
		"account":    params("eu-west-1", func(p *dynamodb.EndpointParameters) { p.AccountId = aws.String("111122223333") }),
		"account-off": params("eu-west-1", func(p *dynamodb.EndpointParameters) {
			p.AccountId, p.AccountIdEndpointMode = aws.String("111122223333"), aws.String("disabled")
		}),
		"table-arn": params("eu-west-1", func(p *dynamodb.EndpointParameters) {
			p.ResourceArn = aws.String("arn:aws:dynamodb:eu-west-1:111122223333:table/llmgate")
		}),
		"no-table": params("eu-west-1", func(p *dynamodb.EndpointParameters) { p.ResourceArn = nil }),
		"transaction": params("eu-west-1", func(p *dynamodb.EndpointParameters) {
			p.ResourceArn, p.ResourceArnList = nil, []string{"llmgate", "llmgate"}
		}),
		"fips-local": params("us-east-1", func(p *dynamodb.EndpointParameters) {
			p.Endpoint, p.UseFIPS = aws.String("http://127.0.0.1:8000"), aws.Bool(true)
		}),
		"empty-endpoint": params("us-east-1", func(p *dynamodb.EndpointParameters) { p.Endpoint = aws.String("") }),
		"no-region":      params("", func(p *dynamodb.EndpointParameters) { p.Region = nil }),
	}
	for name, p := range cases {
		want, wantErr := rules.ResolveEndpoint(ctx, p)
		for i := range 2 {
			got, err := memo.ResolveEndpoint(ctx, p)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s, call %d: memo gives %+v, %v; the rules give %+v, %v", name, i+1, got, err, want, wantErr)
			}
		}
	}
	for name, want := range map[string]string{"us-east-1": "https://dynamodb.us-east-1.amazonaws.com", "eu-west-1": "https://dynamodb.eu-west-1.amazonaws.com", "local": "http://127.0.0.1:8000"} {
		if got, err := memo.ResolveEndpoint(ctx, cases[name]); err != nil || got.URI.String() != want {
			t.Errorf("%s: %s, %v; want %s", name, got.URI.String(), err, want)
		}
	}
}

// The store's client resolves its endpoints through the memo.
func TestStoreResolvesEndpointsThroughTheMemo(t *testing.T) {
	var got dynamodb.EndpointResolverV2
	_, err := store.New(context.Background(), store.Options{Table: "t", Region: "us-east-1", Endpoint: "http://127.0.0.1:1",
		APIOptions: []func(*dynamodb.Options){func(o *dynamodb.Options) { got = o.EndpointResolverV2 }}})
	if err != nil {
		t.Fatal(err)
	}
	if want := store.NewEndpointMemo(); reflect.TypeOf(got) != reflect.TypeOf(want) {
		t.Errorf("the client resolves endpoints with %T, not the memo %T", got, want)
	}
}
