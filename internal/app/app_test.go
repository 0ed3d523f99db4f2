package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
)

// TestNew_AuthOffWithoutProxyBudgetCallsNoDynamoDB sends a chat call through an app whose
// DynamoDB endpoint counts the requests it gets (and refuses each, so a reservation fails
// at once). With auth off and no proxy budget there is nothing to limit or account: no
// request reaches DynamoDB. A proxy budget, or a master key, needs the limiter.
func TestNew_AuthOffWithoutProxyBudgetCallsNoDynamoDB(t *testing.T) {
	tests := []struct {
		name, extra, key string
		wantStatus       int
		wantDynamoDB     bool
	}{
		{"auth off, no proxy budget", "", "", http.StatusOK, false},
		{"auth off, proxy budget", "litellm_settings:\n  max_budget: 100\n", "", http.StatusServiceUnavailable, true},
		{"auth on", "general_settings:\n  master_key: sk-app-test-master\n", "sk-app-test-master", http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			ddb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"__type":"com.amazon.coral.validate#ValidationException","message":"refused by the test"}`)
			}))
			defer ddb.Close()
			cfg, _, err := config.Parse([]byte("model_list:\n  - model_name: demo\n    litellm_params:\n      model: mock/demo\n"+tt.extra),
				func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			cfg.Settings.DynamoDBEndpoint, cfg.Settings.TableName, cfg.Settings.Region = ddb.URL, "llmgate-app-test", "us-east-1"
			a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
				strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`))
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			srv.Close() // waits for the handler, settle included
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if got := calls.Load(); (got > 0) != tt.wantDynamoDB {
				t.Errorf("%d DynamoDB requests; want some: %t", got, tt.wantDynamoDB)
			}
		})
	}
}

// TestRoutes_SplitBetweenTheHandlers: which handler serves a path, locally and (through
// infra's resources, which a test there ties to IsAdminPath) in AWS.
func TestRoutes_SplitBetweenTheHandlers(t *testing.T) {
	tests := []struct {
		path         string
		admin, model bool
	}{
		{"/health", false, false}, // calls the deployments: the gateway's router
		{"/health/liveliness", true, false},
		{"/health/readiness", true, false},
		{"/key", true, false},
		{"/key/generate", true, false},
		{"/ui", true, false},
		{"/model/new", false, true},
		{"/model/update", false, true},
		{"/model/delete", false, true},
		{"/model/abc-1/update", false, true},
		{"/model/info", false, false},
		{"/model/a/b/update", false, false},
		{"/model//update", false, false},
		{"/v1/chat/completions", false, false},
	}
	for _, tt := range tests {
		if got := IsAdminPath(tt.path); got != tt.admin {
			t.Errorf("IsAdminPath(%q) = %t, want %t", tt.path, got, tt.admin)
		}
		if got := IsModelRoute(tt.path); got != tt.model {
			t.Errorf("IsModelRoute(%q) = %t, want %t", tt.path, got, tt.model)
		}
	}
}
