package lambdahttp

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestNewRequest(t *testing.T) {
	tests := []struct {
		name       string
		ev         events.APIGatewayProxyRequest
		method     string
		uri        string
		host       string
		header     http.Header
		body       string
		remoteAddr string
	}{
		{
			name:   "path and method",
			ev:     events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/chat/completions", Body: `{"model":"m"}`},
			method: "POST", uri: "/v1/chat/completions", header: http.Header{}, body: `{"model":"m"}`,
		},
		{
			name:   "method from the request context when the event lacks it",
			ev:     events.APIGatewayProxyRequest{Path: "/health", RequestContext: events.APIGatewayProxyRequestContext{HTTPMethod: "GET"}},
			method: "GET", uri: "/health", header: http.Header{},
		},
		{
			name:   "leading stage segment stripped",
			ev:     events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/prod/v1/models", RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod"}},
			method: "GET", uri: "/v1/models", header: http.Header{},
		},
		{
			name:   "stage alone becomes the root",
			ev:     events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/prod", RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod"}},
			method: "GET", uri: "/", header: http.Header{},
		},
		{
			name:   "segment that only starts like the stage kept",
			ev:     events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/production/x", RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod"}},
			method: "GET", uri: "/production/x", header: http.Header{},
		},
		{
			name:   "path without the stage kept",
			ev:     events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/key/info", RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod"}},
			method: "GET", uri: "/key/info", header: http.Header{},
		},
		{
			name:   "empty path is the root",
			ev:     events.APIGatewayProxyRequest{HTTPMethod: "GET"},
			method: "GET", uri: "/", header: http.Header{},
		},
		{
			name: "multi-value query wins over single values and is re-encoded",
			ev: events.APIGatewayProxyRequest{
				HTTPMethod:                      "GET",
				Path:                            "/spend/logs",
				QueryStringParameters:           map[string]string{"user_id": "b", "team_id": "t 1"},
				MultiValueQueryStringParameters: map[string][]string{"user_id": {"a", "b"}},
			},
			method: "GET", uri: "/spend/logs?team_id=t+1&user_id=a&user_id=b", header: http.Header{},
		},
		{
			name: "headers merged, canonicalized, Host moved out",
			ev: events.APIGatewayProxyRequest{
				HTTPMethod:        "GET",
				Path:              "/",
				Headers:           map[string]string{"host": "api.example.com", "authorization": "Bearer sk-1", "x-multi": "2"},
				MultiValueHeaders: map[string][]string{"X-Multi": {"1", "2"}, "accept": {"text/event-stream"}},
			},
			method: "GET", uri: "/", host: "api.example.com",
			header: http.Header{"Authorization": {"Bearer sk-1"}, "X-Multi": {"1", "2"}, "Accept": {"text/event-stream"}},
		},
		{
			name:   "base64 body decoded",
			ev:     events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/embeddings", Body: "AAEC/w==", IsBase64Encoded: true},
			method: "POST", uri: "/v1/embeddings", header: http.Header{}, body: "\x00\x01\x02\xff",
		},
		{
			name: "source IP becomes RemoteAddr",
			ev: events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/", RequestContext: events.APIGatewayProxyRequestContext{
				Identity: events.APIGatewayRequestIdentity{SourceIP: "2001:db8::1"},
			}},
			method: "GET", uri: "/", header: http.Header{}, remoteAddr: "[2001:db8::1]:0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type ctxKey struct{}
			ctx := context.WithValue(context.Background(), ctxKey{}, "v")
			r, err := NewRequest(ctx, tt.ev)
			if err != nil {
				t.Fatalf("NewRequest: %v", err)
			}
			if r.Method != tt.method {
				t.Errorf("Method = %q, want %q", r.Method, tt.method)
			}
			if r.RequestURI != tt.uri || r.URL.RequestURI() != tt.uri {
				t.Errorf("RequestURI = %q, URL = %q, want %q", r.RequestURI, r.URL.RequestURI(), tt.uri)
			}
			if r.Host != tt.host {
				t.Errorf("Host = %q, want %q", r.Host, tt.host)
			}
			if !reflect.DeepEqual(r.Header, tt.header) {
				t.Errorf("Header = %v, want %v", r.Header, tt.header)
			}
			b, _ := io.ReadAll(r.Body)
			if string(b) != tt.body || r.ContentLength != int64(len(tt.body)) {
				t.Errorf("body = %q (ContentLength %d), want %q", b, r.ContentLength, tt.body)
			}
			if r.RemoteAddr != tt.remoteAddr {
				t.Errorf("RemoteAddr = %q, want %q", r.RemoteAddr, tt.remoteAddr)
			}
			if r.Context().Value(ctxKey{}) != "v" {
				t.Error("request context is not derived from the invocation context")
			}
		})
	}
}

func TestNewRequest_RejectsInvalidBase64Body(t *testing.T) {
	_, err := NewRequest(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/", Body: "not base64!", IsBase64Encoded: true})
	if err == nil {
		t.Fatal("NewRequest accepted an invalid base64 body")
	}
}
