package store_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

// countingConn counts the writes (syscalls) made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countingRoundTripper counts the requests sent.
type countingRoundTripper struct {
	next     http.RoundTripper
	requests *atomic.Int64
}

func (c countingRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	return c.next.RoundTrip(r)
}

// TestNew_SendsEachRequestInOneWrite: net/http flushes a request's headers before a body it
// does not know to be in memory, and the SDK's body is one it cannot tell; the store's client
// sends headers and body together, one write per DynamoDB request (the old client: two).
func TestNew_SendsEachRequestInOneWrite(t *testing.T) {
	var writes, requests atomic.Int64
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		return countingConn{c, &writes}, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	useTransport := func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: countingRoundTripper{tr, &requests}}
	}
	ctx := context.Background()
	st, err := store.New(ctx, store.Options{Table: dynamotest.TableName(t), Region: "us-east-1",
		Endpoint: dynamotest.Endpoint(t), APIOptions: []func(*dynamodb.Options){useTransport}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n < 3 {
		t.Fatalf("%d requests, want at least 3 (create, TTL, describe)", n)
	}
	if w, n := writes.Load(), requests.Load(); w != n {
		t.Errorf("%d writes for %d requests, want one each", w, n)
	}
}
