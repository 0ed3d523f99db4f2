package registry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/mock"
	"github.com/llmgate/llmgate/internal/provider/openaicompat"
	"github.com/llmgate/llmgate/internal/provider/providertest"
	"github.com/llmgate/llmgate/internal/provider/registry"
)

func TestLookup_BuiltinPrefixes(t *testing.T) {
	r := registry.New(nil)
	want := []string{"azure", "anthropic", "gemini", "bedrock", "mock"}
	for _, s := range openaicompat.Specs {
		want = append(want, s.Prefix)
	}
	for _, p := range want {
		if got, err := r.Lookup(p); err != nil || got == nil {
			t.Errorf("Lookup(%q) = %v, %v; want a provider", p, got, err)
		}
	}
	got := r.Prefixes()
	if !slices.IsSorted(got) || len(got) != len(want) {
		t.Errorf("Prefixes() = %v, want %d sorted prefixes", got, len(want))
	}
	got[0] = "changed"
	if r.Prefixes()[0] == "changed" {
		t.Error("Prefixes() returned the registry's own slice")
	}
}

func TestLookup_UnknownPrefixListsSupportedOnes(t *testing.T) {
	_, err := registry.New(nil).Lookup("vertex_ai")
	if !errors.Is(err, registry.ErrUnknownProvider) {
		t.Fatalf("err = %v, want ErrUnknownProvider", err)
	}
	for _, p := range []string{`"vertex_ai"`, "anthropic", "groq", "openai", "azure"} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %s", err, p)
		}
	}
}

func TestWithProvider_AddsAndReplaces(t *testing.T) {
	m := mock.New()
	r := registry.New(nil, registry.WithProvider("custom", m), registry.WithProvider("openai", m))
	for _, p := range []string{"custom", "openai"} {
		if got, err := r.Lookup(p); err != nil || got != provider.Provider(m) {
			t.Errorf("Lookup(%q) = %v, %v; want the given provider", p, got, err)
		}
	}
	if !slices.Contains(r.Prefixes(), "custom") {
		t.Errorf("Prefixes() = %v, want custom in it", r.Prefixes())
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestNew_ProvidersUseTheGivenClient(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.JSON(200, `{"id":"x","choices":[],"usage":{"prompt_tokens":1,"total_tokens":1}}`))
	ct := &countingTransport{next: u.Client().Transport}
	r := registry.New(&http.Client{Transport: ct})
	for _, prefix := range []string{"openai", "groq", "azure"} {
		p, err := r.Lookup(prefix)
		if err != nil {
			t.Fatal(err)
		}
		c := &provider.Call{Kind: provider.Chat, Body: []byte(`{"model":"m"}`), Model: "m",
			Params: config.LiteLLMParams{APIBase: u.URL, APIKey: "k"}}
		if _, err := p.Do(context.Background(), c); err != nil {
			t.Fatalf("%s: Do: %v", prefix, err)
		}
	}
	if n := ct.n.Load(); n != 3 {
		t.Errorf("the given client carried %d requests, want 3", n)
	}
}

func TestNewHTTPClient_IsTunedForAGateway(t *testing.T) {
	c := registry.NewHTTPClient()
	if c.Timeout != 0 {
		t.Errorf("Timeout = %v, want none (calls are bounded by their context)", c.Timeout)
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport = %T, want *http.Transport", c.Transport)
	}
	if tr.MaxIdleConnsPerHost < 64 || tr.MaxIdleConns < tr.MaxIdleConnsPerHost {
		t.Errorf("idle pool = %d per host, %d total; want at least 64 per host", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
	if tr.IdleConnTimeout <= 0 || tr.ResponseHeaderTimeout != 0 || !tr.ForceAttemptHTTP2 || tr.DisableKeepAlives {
		t.Errorf("transport = idle %v, header timeout %v, http2 %v, keep-alives off %v", tr.IdleConnTimeout, tr.ResponseHeaderTimeout, tr.ForceAttemptHTTP2, tr.DisableKeepAlives)
	}
	if tr == http.DefaultTransport {
		t.Error("NewHTTPClient shares http.DefaultTransport")
	}
}

// An upstream answer over the limit is refused whatever the provider, with and without a
// Content-Length, and never read whole (the old client buffered a 60 MB answer): Bedrock's
// Converse and InvokeModel answers too, read by the AWS SDK through the same client. Streams
// are exempt.
func TestLimitAnswers_RefusesLargeAnswers(t *testing.T) {
	const limit = 64 << 10
	big := `{"id":"x","pad":"` + strings.Repeat("x", 4*limit) + `"}`
	for _, chunked := range []bool{false, true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if chunked {
				w.(http.Flusher).Flush() // no Content-Length: sent chunked
			}
			_, _ = io.WriteString(w, big)
		}))
		r := registry.New(registry.LimitAnswers(srv.Client(), limit))
		chat := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
		calls := []struct {
			prefix string
			kind   provider.Kind
			model  string
			body   string
		}{
			{"openai", provider.Chat, "m", chat},
			{"azure", provider.Chat, "m", chat},
			{"anthropic", provider.Chat, "m", chat},
			{"gemini", provider.Chat, "m", chat},
			{"bedrock", provider.Chat, "m", chat}, // Converse
			{"bedrock", provider.Messages, "anthropic.claude-3-haiku", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`}, // InvokeModel
			{"bedrock", provider.Embedding, "cohere.embed-english-v3", `{"model":"m","input":"hi"}`},                                               // InvokeModel
		}
		for _, call := range calls {
			p, err := r.Lookup(call.prefix)
			if err != nil {
				t.Fatal(err)
			}
			c := &provider.Call{Kind: call.kind, Body: []byte(call.body), Model: call.model,
				Request: &openai.Request{Model: "m", Messages: []byte(`[{"role":"user","content":"hi"}]`)},
				Params: config.LiteLLMParams{APIBase: srv.URL, APIKey: "k", APIVersion: "2024-10-21",
					AWSRegionName: "us-west-2", AWSAccessKeyID: "AKIDTEST", AWSSecretAccessKey: "secret"}}
			_, err = p.Do(context.Background(), c)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest || !strings.Contains(pe.Message, "max_response_body_bytes") {
				t.Errorf("%s %s (chunked %v): err = %v, want a 400 naming max_response_body_bytes", call.prefix, call.kind, chunked, err)
			}
		}
		srv.Close()
	}

	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, big)
	}))
	defer stream.Close()
	resp, err := registry.LimitAnswers(stream.Client(), limit).Get(stream.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != len(big) {
		t.Errorf("event stream: read %d bytes, %v; want all %d", len(b), err, len(big))
	}
}
