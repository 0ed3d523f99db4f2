package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{
			name:       "api error keeps status, type, param and code",
			err:        Errorf(http.StatusBadRequest, TypeInvalidRequest, "bad model").WithParam("model"),
			wantStatus: 400,
			wantBody:   `{"error":{"message":"bad model","type":"invalid_request_error","param":"model","code":"400"}}`,
		},
		{
			name:       "null param when unset",
			err:        Errorf(http.StatusTooManyRequests, TypeRateLimit, "slow down"),
			wantStatus: 429,
			wantBody:   `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"429"}}`,
		},
		{
			name:       "plain error becomes an opaque 500",
			err:        errors.New("dial tcp 10.0.0.1: secret detail"),
			wantStatus: 500,
			wantBody:   `{"error":{"message":"internal server error","type":"internal_server_error","param":null,"code":"500"}}`,
		},
		{
			name:       "not implemented",
			err:        NotImplemented("/v1/images/generations"),
			wantStatus: 501,
			wantBody:   `{"error":{"message":"/v1/images/generations is not implemented by llmgate yet","type":"not_implemented_error","param":null,"code":"501"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tt.err)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type = %q", ct)
			}
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("content-length = %q, want %d (the body's size)", cl, rec.Body.Len())
			}
			var got, want any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			_ = json.Unmarshal([]byte(tt.wantBody), &want)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Errorf("body = %s, want %s", gb, wb)
			}
		})
	}
}

func TestWriteErrorCopiesHeaders(t *testing.T) {
	e := Errorf(http.StatusTooManyRequests, TypeRateLimit, "limit")
	e.Header = http.Header{"Retry-After": {"60"}}
	rec := httptest.NewRecorder()
	WriteError(rec, e)
	if got := rec.Header().Get("Retry-After"); got != "60" {
		t.Errorf("retry-after = %q, want 60", got)
	}
}
