package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads GET /metrics as Prometheus would and returns the families by name.
func scrape(t *testing.T, s *server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := s.request(t, masterKey, http.MethodGet, "/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value sums the counter, gauge or histogram-sum values of the family's series whose labels
// include want, and says how many series matched.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	f := fams[name]
	if f == nil {
		return 0, 0
	}
	var sum float64
	n := 0
series:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue series
			}
		}
		n++
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, n
}

func TestMetrics(t *testing.T) {
	up := newUpstream(t)
	s := start(t, fmt.Sprintf(e2eConfig, up.URL))
	ctx := context.Background()

	team := s.admin(t, "POST", "/team/new", map[string]any{"team_alias": "metrics-team", "max_budget": 50})
	teamID := team["team_id"].(string)
	gen := s.admin(t, "POST", "/key/generate", map[string]any{"team_id": teamID, "key_alias": "metrics-key", "max_budget": 10})
	key, hash := gen["key"].(string), gen["token"].(string)
	c := client(s, key)

	var prompt, completion int64
	for _, msg := range []string{"one", "two two"} {
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "demo", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(msg)}})
		if err != nil {
			t.Fatal(err)
		}
		prompt, completion = prompt+resp.Usage.PromptTokens, completion+resp.Usage.CompletionTokens
	}
	// upstream-broken answers 500 and falls back to upstream: one failed and one good
	// attempt, one successful call.
	resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "upstream-broken", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	prompt, completion = prompt+resp.Usage.PromptTokens, completion+resp.Usage.CompletionTokens
	// A model the key may not use: refused before any upstream call.
	if _, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "no-such-model", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err == nil {
		t.Fatal("no-such-model answered")
	}
	if r, _ := s.request(t, "sk-wrong", "POST", "/v1/chat/completions", map[string]any{"model": "demo"}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", r.StatusCode)
	}

	t.Run("auth", func(t *testing.T) {
		for _, tc := range []struct {
			key  string
			want int
		}{{"", http.StatusUnauthorized}, {key, http.StatusForbidden}, {masterKey, http.StatusOK}} {
			if r, b := s.request(t, tc.key, "GET", "/metrics", nil); r.StatusCode != tc.want {
				t.Errorf("GET /metrics as %q: %d %s, want %d", tc.key, r.StatusCode, b, tc.want)
			}
		}
	})

	// A call is recorded after its settle write, which follows the answer: once all five
	// are recorded, the ledger holds their spend.
	var fams map[string]*dto.MetricFamily
	eventually(t, 10*time.Second, func() string {
		fams = scrape(t, s)
		if n, _ := value(fams, "litellm_proxy_total_requests_metric_total", nil); n != 5 {
			return fmt.Sprintf("%v calls recorded, want 5", n)
		}
		return ""
	})
	info := s.admin(t, "GET", "/key/info?key="+key, nil)["info"].(map[string]any)
	ledger := info["spend"].(float64)
	if ledger <= 0 {
		t.Fatalf("ledger spend %v", ledger)
	}
	k := map[string]string{"hashed_api_key": hash, "api_key_alias": "metrics-key", "team": teamID, "team_alias": "metrics-team"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for _, src := range []map[string]string{k, extra} {
			for a, b := range src {
				m[a] = b
			}
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"litellm_spend_metric_total", k, ledger},
		{"litellm_requests_metric_total", k, 3},
		{"litellm_requests_metric_total", with(map[string]string{"model": "upstream"}), 1},
		{"litellm_input_tokens_metric_total", k, float64(prompt)},
		{"litellm_output_tokens_metric_total", k, float64(completion)},
		{"litellm_total_tokens_total", k, float64(prompt + completion)},
		{"litellm_proxy_total_requests_metric_total", with(map[string]string{"status_code": "200"}), 3},
		{"litellm_proxy_failed_requests_metric_total", with(map[string]string{"requested_model": "no-such-model", "exception_status": "400"}), 1},
		{"litellm_proxy_failed_requests_metric_total", map[string]string{"hashed_api_key": "", "exception_status": "401"}, 1},
		{"litellm_request_total_latency_metric", map[string]string{"team": teamID}, 4},
		{"litellm_llm_api_latency_metric", map[string]string{"team": teamID, "model": "upstream"}, 1},
		{"litellm_api_key_max_budget_metric", map[string]string{"hashed_api_key": hash}, 10},
		{"litellm_team_max_budget_metric", map[string]string{"team": teamID, "team_alias": "metrics-team"}, 50},
		{"litellm_deployment_failure_responses_total", map[string]string{"litellm_model_name": "openai/up-500", "exception_status": "500"}, 2},
		{"litellm_deployment_success_responses_total", map[string]string{"model_id": "upstream-1", "requested_model": "upstream"}, 1},
		{"litellm_deployment_success_responses_total", map[string]string{"model_id": "demo-1"}, 2},
		{"litellm_deployment_state", map[string]string{"model_id": "upstream-1"}, 0},
		{"litellm_deployment_state", map[string]string{"litellm_model_name": "openai/up-500"}, 1},
	} {
		got, n := value(fams, tc.name, tc.labels)
		if n == 0 || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s%v = %v over %d series, want %v", tc.name, tc.labels, got, n, tc.want)
		}
	}
	// Remaining budgets are, as in LiteLLM, the key's spend when its record was read (cached
	// up to auth_cache_ttl) plus the call's cost: exact for a key's first call.
	fresh := s.admin(t, "POST", "/key/generate", map[string]any{"max_budget": 2})
	fc := client(s, fresh["key"].(string))
	if _, err := fc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "demo", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("fresh")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		if n, _ := value(scrape(t, s), "litellm_requests_metric_total", map[string]string{"hashed_api_key": fresh["token"].(string)}); n != 1 {
			return "the fresh key's call is not recorded"
		}
		return ""
	})
	freshSpend := s.admin(t, "GET", "/key/info?key="+fresh["key"].(string), nil)["info"].(map[string]any)["spend"].(float64)
	fams = scrape(t, s)
	if got, n := value(fams, "litellm_remaining_api_key_budget_metric", map[string]string{"hashed_api_key": fresh["token"].(string)}); n != 1 || math.Abs(got-(2-freshSpend)) > 1e-12 {
		t.Errorf("remaining budget of a fresh key %v over %d series, want %v", got, n, 2-freshSpend)
	}
	if got, _ := value(fams, "litellm_remaining_api_key_budget_metric", map[string]string{"hashed_api_key": hash}); got > 10 || got < 10-ledger-1e-12 {
		t.Errorf("remaining key budget %v, want in [%v, 10]", got, 10-ledger)
	}
	// No series names a key, a request or an end user.
	resp2, body := s.request(t, masterKey, "GET", "/metrics", nil)
	if resp2.StatusCode != http.StatusOK || strings.Contains(string(body), key) || strings.Contains(string(body), "end_user") ||
		strings.Contains(string(body), "request_id") {
		t.Errorf("/metrics holds a key, end_user or request_id")
	}
	checkLogs(t, s, key)
}
