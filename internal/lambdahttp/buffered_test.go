package lambdahttp

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestBuffered(t *testing.T) {
	tests := []struct {
		name       string
		h          http.HandlerFunc
		wantStatus int
		wantBody   string
		wantB64    bool
		wantHeader map[string]string
	}{
		{
			name: "status, headers and text body",
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{"key":"sk-1"}`)
			},
			wantStatus: http.StatusCreated, wantBody: `{"key":"sk-1"}`, wantHeader: map[string]string{"Content-Type": "application/json"},
		},
		{
			name: "flushed stream arrives whole",
			h: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush()
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
			},
			wantStatus: http.StatusOK, wantBody: "data: 1\n\ndata: [DONE]\n\n",
		},
		{
			name:       "binary body base64-encoded",
			h:          func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte{0xff, 0x00}) },
			wantStatus: http.StatusOK, wantBody: base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}), wantB64: true,
		},
		{
			name:       "empty handler is 200",
			h:          func(http.ResponseWriter, *http.Request) {},
			wantStatus: http.StatusOK,
		},
		{
			name: "panic replaces the partial answer with an OpenAI 500",
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Partial", "1")
				_, _ = io.WriteString(w, "partial")
				panic("boom")
			},
			wantStatus: http.StatusInternalServerError, wantHeader: map[string]string{"Content-Type": "application/json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := Buffered(tt.h, discard)(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/"})
			if err != nil {
				t.Fatalf("Buffered: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp.IsBase64Encoded != tt.wantB64 {
				t.Errorf("IsBase64Encoded = %v, want %v", resp.IsBase64Encoded, tt.wantB64)
			}
			if tt.wantStatus == http.StatusInternalServerError {
				assertOpenAIError(t, []byte(resp.Body), "internal_server_error")
				if _, ok := resp.Headers["X-Partial"]; ok {
					t.Error("headers from before the panic were kept")
				}
			} else if resp.Body != tt.wantBody {
				t.Errorf("body = %q, want %q", resp.Body, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if resp.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, resp.Headers[k], v)
				}
			}
		})
	}
}

func TestBuffered_CancelsTheRequestWhenTheHandlerReturns(t *testing.T) {
	var reqCtx context.Context
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reqCtx = r.Context() })
	if _, err := Buffered(h, discard)(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/"}); err != nil {
		t.Fatalf("Buffered: %v", err)
	}
	if reqCtx.Err() == nil {
		t.Error("request context still live after the invocation")
	}
}
