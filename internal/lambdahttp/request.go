package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// NewRequest converts an API Gateway REST proxy event into a server-side *http.Request, as
// net/http would have built it: path (without a leading stage segment), query with all
// values, headers with all values, Host, the decoded body, and the caller's source IP as
// RemoteAddr. ctx, with the API Gateway request id (APIRequestID), becomes the request's
// context.
func NewRequest(ctx context.Context, ev events.APIGatewayProxyRequest) (*http.Request, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("decode base64 request body: %w", err)
		}
	}
	method := ev.HTTPMethod
	if method == "" {
		method = ev.RequestContext.HTTPMethod
	}
	if id := ev.RequestContext.RequestID; id != "" {
		ctx = context.WithValue(ctx, apiRequestIDKey{}, id)
	}
	r, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	r.URL = &url.URL{
		Path:     stripStage(ev.Path, ev.RequestContext.Stage),
		RawQuery: url.Values(merge(ev.MultiValueQueryStringParameters, ev.QueryStringParameters, nil)).Encode(),
	}
	r.RequestURI = r.URL.RequestURI()
	r.Header = merge(ev.MultiValueHeaders, ev.Headers, http.CanonicalHeaderKey)
	// net/http moves Host out of the header map; so do we.
	r.Host = r.Header.Get("Host")
	r.Header.Del("Host")
	if ip := ev.RequestContext.Identity.SourceIP; ip != "" {
		r.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	return r, nil
}

type apiRequestIDKey struct{}

// APIRequestID returns the API Gateway request id of the request ctx belongs to (the
// access log's requestId), or "".
func APIRequestID(ctx context.Context) string {
	id, _ := ctx.Value(apiRequestIDKey{}).(string)
	return id
}

// stripStage removes a leading "/<stage>" segment. API Gateway's own path leaves the stage
// out, but paths taken from the request context or some emulators carry it.
func stripStage(path, stage string) string {
	if path == "" {
		return "/"
	}
	if stage == "" {
		return path
	}
	rest, ok := strings.CutPrefix(path, "/"+stage)
	switch {
	case !ok:
		return path
	case rest == "":
		return "/"
	case rest[0] == '/':
		return rest
	}
	return path
}

// merge combines API Gateway's multi-value map with its single-value map; a key the
// multi-value map has wins (API Gateway fills both; hand-written events often only one).
// canon, if not nil, normalizes keys (header names are case-insensitive).
func merge(multi map[string][]string, single map[string]string, canon func(string) string) map[string][]string {
	if canon == nil {
		canon = func(k string) string { return k }
	}
	out := make(map[string][]string, len(multi)+len(single))
	for k, vs := range multi {
		k = canon(k)
		out[k] = append(out[k], vs...)
	}
	for k, s := range single {
		if k = canon(k); out[k] == nil {
			out[k] = []string{s}
		}
	}
	return out
}
