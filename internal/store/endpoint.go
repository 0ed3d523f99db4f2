package store

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// endpointMemo resolves each set of endpoint parameters through the SDK's endpoint rules once
// and then answers from memory. The SDK evaluates its rules for every request (they showed in
// the full path's profile at about 20 µs of CPU per call), although the rules are a function
// of the parameters alone and a process sees few sets of them: its region, endpoint and table.
// The answer is the rules' own, so FIPS, dual-stack, other partitions and a local endpoint
// resolve as they would without the memo.
type endpointMemo struct {
	rules dynamodb.EndpointResolverV2
	mu    sync.RWMutex
	known map[endpointKey]smithyendpoints.Endpoint
}

// maxEndpoints bounds the memo; past it parameters are resolved by the rules each time.
const maxEndpoints = 64

func newEndpointMemo() *endpointMemo {
	return &endpointMemo{rules: dynamodb.NewDefaultEndpointResolverV2(), known: map[endpointKey]smithyendpoints.Endpoint{}}
}

// endpointKey is every endpoint parameter, with whether each is set: the rules tell an unset
// parameter from an empty or false one.
type endpointKey struct {
	region, endpoint, accountID, accountIDMode, resourceARN optString
	dualStack, fips, search                                 optBool
}

type optString struct {
	v   string
	set bool
}

type optBool struct{ v, set bool }

func str(p *string) optString {
	if p == nil {
		return optString{}
	}
	return optString{*p, true}
}

func boolean(p *bool) optBool {
	if p == nil {
		return optBool{}
	}
	return optBool{*p, true}
}

func (m *endpointMemo) ResolveEndpoint(ctx context.Context, p dynamodb.EndpointParameters) (smithyendpoints.Endpoint, error) {
	if len(p.ResourceArnList) > 0 { // batches and transactions: a list would make a long key
		return m.rules.ResolveEndpoint(ctx, p)
	}
	k := endpointKey{
		region: str(p.Region), endpoint: str(p.Endpoint), accountID: str(p.AccountId),
		accountIDMode: str(p.AccountIdEndpointMode), resourceARN: str(p.ResourceArn),
		dualStack: boolean(p.UseDualStack), fips: boolean(p.UseFIPS), search: boolean(p.IsSearchOperation),
	}
	m.mu.RLock()
	e, ok := m.known[k]
	m.mu.RUnlock()
	if ok {
		return e, nil
	}
	e, err := m.rules.ResolveEndpoint(ctx, p)
	if err != nil {
		return e, err
	}
	m.mu.Lock()
	if len(m.known) < maxEndpoints {
		m.known[k] = e
	}
	m.mu.Unlock()
	return e, nil
}
