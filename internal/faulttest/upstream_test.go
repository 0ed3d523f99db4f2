package faulttest

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"testing"

	"github.com/llmgate/llmgate/internal/fakeopenai"
	"github.com/llmgate/llmgate/internal/gateway"
)

// routerSettings: one retry and a fallback from "primary" to "backup".
const routerSettings = `router_settings:
  num_retries: 1
  fallbacks: [{"primary": ["backup"]}]
`

// fullCost is the price of a whole fake answer: fakeopenai's usage at the test prices.
const fullCost = fakeopenai.PromptTokens*inputPrice + 8*outputPrice

// upstreamFaults are the failures an upstream can have, and what a client sees when no
// fallback saves the call.
var upstreamFaults = []struct {
	name       string
	fault      fakeopenai.Fault
	retried    bool // another attempt is made on the same deployment
	wantStatus int
	wantType   string
}{
	{"500", fakeopenai.ServerError, true, http.StatusInternalServerError, "internal_server_error"},
	{"429", fakeopenai.RateLimited, true, http.StatusTooManyRequests, "rate_limit_error"},
	{"timeout", fakeopenai.Hang, true, http.StatusRequestTimeout, "timeout_error"},
	{"connection reset", fakeopenai.Reset, true, http.StatusBadGateway, "internal_server_error"},
	{"invalid JSON", fakeopenai.InvalidJSON, true, http.StatusBadGateway, "internal_server_error"},
}

// faultyGateway serves "primary" from a failing upstream and "backup" from a healthy one.
func faultyGateway(t *testing.T, fault fakeopenai.Fault) (g *server, bad, good *fakeopenai.Server) {
	bad = fakeopenai.Start(fakeopenai.Options{Fault: func(int64) fakeopenai.Fault { return fault }})
	good = fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(bad.Close)
	t.Cleanup(good.Close)
	cfg := configYAML([]deployment{
		{"primary", "primary-1", bad.BaseURL},
		{"solo", "solo-1", bad.BaseURL},
		{"backup", "backup-1", good.BaseURL},
	}, routerSettings)
	return startGateway(t, "", cfg), bad, good
}

// TestUpstreamFault_FallbackServesAndChargesOnce: the failing deployment is retried, then
// the fallback answers; the client gets 200 from the fallback and is charged once, at the
// fallback's price for its usage.
func TestUpstreamFault_FallbackServesAndChargesOnce(t *testing.T) {
	for _, tc := range upstreamFaults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, bad, good := faultyGateway(t, tc.fault)
			key, token := g.generateKey(t, `{"max_budget": 10, "max_parallel_requests": 10}`)
			status, h, body, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", key, chatBody("primary", false))
			if err != nil || status != http.StatusOK {
				t.Fatalf("call: status %d, error %v: %s; want 200 from the fallback", status, err, body)
			}
			if got := h.Get(gateway.HeaderModelID); got != "backup-1" {
				t.Errorf("answered by %q; want the fallback backup-1", got)
			}
			wantBad := int64(1)
			if tc.retried {
				wantBad = 2
			}
			if got := bad.Requests(); got != wantBad {
				t.Errorf("failing upstream got %d requests; want %d (1 + num_retries)", got, wantBad)
			}
			if got := good.Requests(); got != 1 {
				t.Errorf("fallback upstream got %d requests; want 1", got)
			}
			l := g.settledLedger(t, token, 1)
			l.checkReconciled(t)
			if s := l.logs[0]; math.Abs(s.Spend-fullCost) > 1e-12 || s.Status != "success" {
				t.Errorf("spend log: %g (%s); want %g (success), the fallback's answer charged once", s.Spend, s.Status, fullCost)
			}
		})
	}
}

// TestUpstreamFault_WithoutFallbackClearErrorNoCharge: with no fallback the client gets a
// clear OpenAI-format error with the status of the failure, the call costs nothing, and
// its lease is released.
func TestUpstreamFault_WithoutFallbackClearErrorNoCharge(t *testing.T) {
	for _, tc := range upstreamFaults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, _, good := faultyGateway(t, tc.fault)
			key, token := g.generateKey(t, `{"max_budget": 10, "max_parallel_requests": 10}`)
			status, h, body, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", key, chatBody("solo", false))
			if err != nil {
				t.Fatal(err)
			}
			e := decodeError(t, body)
			if status != tc.wantStatus || e.Error.Type != tc.wantType {
				t.Errorf("got %d %s (%q); want %d %s", status, e.Error.Type, e.Error.Message, tc.wantStatus, tc.wantType)
			}
			if bytes.Contains(body, []byte("sk-fake-upstream")) {
				t.Errorf("error leaks the upstream API key: %s", body)
			}
			if tc.fault == fakeopenai.RateLimited && h.Get("Retry-After") == "" {
				t.Errorf("429 without retry-after")
			}
			if good.Requests() != 0 {
				t.Errorf("the healthy upstream was called; solo has no fallback")
			}
			l := g.settledLedger(t, token, 1)
			l.checkReconciled(t)
			if l.spend != 0 {
				t.Errorf("key spend %g after a failed call; want 0", l.spend)
			}
			if s := l.logs[0]; s.Status != "failure" {
				t.Errorf("spend log status %q; want failure", s.Status)
			}
		})
	}
}

// TestUpstreamFault_StreamCutHalfway: a stream that breaks after its first chunks cannot
// fall back (the client has them); it ends with an error event and no [DONE]. The upstream
// never reported usage, so the call is charged its reservation: at least a whole answer.
func TestUpstreamFault_StreamCutHalfway(t *testing.T) {
	g, bad, good := faultyGateway(t, fakeopenai.StreamCut)
	key, token := g.generateKey(t, `{"max_budget": 10, "max_parallel_requests": 10}`)
	status, _, body, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", key, chatBody("primary", true))
	if err != nil || status != http.StatusOK {
		t.Fatalf("stream: status %d, error %v: %s", status, err, body)
	}
	if !bytes.Contains(body, []byte(`"content":"tok "`)) {
		t.Errorf("stream carries no content chunk before the cut:\n%s", body)
	}
	if !bytes.Contains(body, []byte(`data: {"error":`)) || bytes.Contains(body, []byte("[DONE]")) {
		t.Errorf("stream does not end with an error event (and no [DONE]):\n%s", body)
	}
	if bad.Requests() != 1 || good.Requests() != 0 {
		t.Errorf("upstream requests: failing %d, fallback %d; want 1 and 0 (no retry after the first chunk)", bad.Requests(), good.Requests())
	}
	l := g.settledLedger(t, token, 1)
	l.checkReconciled(t)
	if s := l.logs[0]; s.Spend < fullCost {
		t.Errorf("cut stream charged %g; want its reservation, no less than a whole answer's %g", s.Spend, fullCost)
	}
}
