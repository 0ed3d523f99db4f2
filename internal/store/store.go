// Package store is llmgate's state in DynamoDB: keys, users, teams, budget counters, rate
// windows, reservations and spend logs, with the conditional writes that keep them exact.
// It is the only package that talks to DynamoDB.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// Store reads and writes llmgate's state table.
type Store struct {
	db    *dynamodb.Client
	table string
	// minutes remembers, per key hash, the last minute this process saw its key record count
	// rpm/tpm in, to guess which form of the count a reservation takes (see countKeyRate).
	minutes minuteMemo
	// escrowCap is the most escrow shards a team budget is split into (see escrow.go).
	escrowCap int
	// spent remembers split teams found unable to pay (see refusalMemo).
	spent refusalMemo
}

// Options say which table to use and how to reach DynamoDB.
type Options struct {
	Table    string
	Region   string
	Endpoint string // a local DynamoDB; empty means AWS
	// APIOptions are extra SDK middlewares (e.g. a round-trip counter in tests and benchmarks).
	APIOptions []func(*dynamodb.Options)
	// EscrowShards is llmgate_settings.escrow_shards: the most escrow shards a team or key
	// budget is split into (0 or 1: none).
	EscrowShards int
}

// New builds a Store from the default AWS credential chain, or for a local endpoint with
// static dummy credentials.
func New(ctx context.Context, o Options) (*Store, error) {
	var loadOpts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(o.Region))
	}
	if o.Endpoint != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	endpoints := newEndpointMemo()
	local := func(opts *dynamodb.Options) {
		opts.Retryer = retryer()
		opts.EndpointResolverV2 = endpoints
		if o.Endpoint != "" {
			opts.BaseEndpoint = aws.String(o.Endpoint)
			// DynamoDB Local's cancelled transactions trip the SDK's CRC32 check; only locally.
			opts.DisableValidateResponseChecksum = true
		}
	}
	// oneWrite goes last, around whatever HTTP client the options chose.
	wrap := func(opts *dynamodb.Options) { opts.HTTPClient = oneWrite{opts.HTTPClient} }
	opts := append(append([]func(*dynamodb.Options){local, WritesToCompletion}, o.APIOptions...), wrap)
	s := NewWithClient(dynamodb.NewFromConfig(cfg, opts...), o.Table)
	s.SetEscrowShards(o.EscrowShards)
	return s, nil
}

// sdkAttempts bounds the SDK's attempts of one call: with 20 % of calls throttled, 1 in
// 10 million calls still fails after them.
const sdkAttempts = 10

// retryer is the SDK's standard retryer with the store's backoff and no retry quota. The
// standard one waits a second or more after a throttle and, once 20 % of calls fail, runs out
// of its quota and stops retrying; the store's callers bound their retries by a deadline
// instead (Reserve 3 s before the upstream call), so short jittered waits serve them better.
func retryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = sdkAttempts
		so.RateLimiter = ratelimit.None
		so.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			return jitter(attempt), nil
		})
	})
}

// oneWrite sends each request's headers and body in one write. net/http writes a request
// whose body it does not know to be in memory in two (the headers are flushed first), and the
// SDK wraps its body so that net/http cannot tell: two syscalls and two TCP segments per
// DynamoDB call, which the profile of the full path showed among its top costs (each call
// makes about four DynamoDB requests). A body net/http sees as a *bytes.Reader goes out with
// the headers. The SDK rewinds and rebuilds the body for every attempt, so a retry reads it
// afresh.
type oneWrite struct{ next aws.HTTPClient }

func (c oneWrite) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength <= 0 {
		return c.next.Do(r)
	}
	b := make([]byte, r.ContentLength)
	_, err := io.ReadFull(r.Body, b)
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return c.next.Do(r)
}

// writeAttemptCap bounds one attempt of a write that runs on after its caller's deadline.
const writeAttemptCap = 10 * time.Second

// WritesToCompletion makes every attempt of a write run to DynamoDB's answer (within
// writeAttemptCap), whatever its caller's context. A request cancelled in flight may still
// be applied after the caller has moved on: a reservation step of a refused call that its
// undo did not see, landing after it, would stay on its user or team record, charged, with
// no entry on the key record to lead the rotator to it. The caller's deadline still stops
// further attempts and retries, so a caller waits at most for the attempt in flight. New
// sets it; a client of NewWithClient needs it among its options.
func WritesToCompletion(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("WriteToCompletion",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				switch awsmiddleware.GetOperationName(ctx) {
				case "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem":
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), writeAttemptCap)
					defer cancel()
				}
				return next.HandleFinalize(ctx, in)
			}), "Retry", middleware.After)
	})
}

// NewWithClient wraps an existing client (tests pass one from dynamotest).
func NewWithClient(client *dynamodb.Client, table string) *Store {
	return &Store{db: client, table: table}
}

// Table returns the table name.
func (s *Store) Table() string { return s.table }

// Ping checks that the table is reachable and active.
func (s *Store) Ping(ctx context.Context) error {
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", s.table, err)
	}
	if st := out.Table.TableStatus; st != types.TableStatusActive {
		return fmt.Errorf("table %s is %s", s.table, st)
	}
	return nil
}

// EnsureTable creates the table from schema.State if it does not exist and enables TTL.
// Only the local server and tests call it; in AWS the CDK stack owns the table.
func (s *Store) EnsureTable(ctx context.Context) error {
	_, err := s.db.CreateTable(ctx, schema.State.CreateTableInput(s.table))
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		return nil
	case err != nil:
		return fmt.Errorf("create table %s: %w", s.table, err)
	}
	w := dynamodb.NewTableExistsWaiter(s.db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)}, time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", s.table, err)
	}
	_, err = s.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(s.table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(schema.State.TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", s.table, err)
	}
	return nil
}
