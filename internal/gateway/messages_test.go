package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/fakeanthropic"
	"github.com/llmgate/llmgate/internal/fakeopenai"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider/registry"
	"github.com/llmgate/llmgate/internal/router"
)

// wireHarness is a gateway on the real providers, with a fake Anthropic upstream behind
// the "claude" group (pass-through) and, as Bedrock, the "claude-bedrock" group (Anthropic's
// format over InvokeModel, priced from the cost map), a fake OpenAI upstream behind
// "gpt-chat" (chat only: Messages and Responses calls are translated) and "gpt-resp"
// (Responses pass-through).
type wireHarness struct {
	srv  *httptest.Server
	ant  *fakeanthropic.Server
	oai  *fakeopenai.Server
	lim  *fakeLimiter
	auth llmcall.Authenticator
}

func newWireHarness(t *testing.T, auth llmcall.Authenticator, lim *fakeLimiter) *wireHarness {
	t.Helper()
	h := &wireHarness{ant: fakeanthropic.Start(), oai: fakeopenai.Start(fakeopenai.Options{Chunks: 3}), lim: lim}
	t.Cleanup(h.ant.Close)
	t.Cleanup(h.oai.Close)
	cfg := &config.Config{ModelList: []config.Deployment{
		{ModelName: "claude", LiteLLMParams: config.LiteLLMParams{Model: "anthropic/claude-sonnet-4-5", APIBase: h.ant.URL, APIKey: "sk-ant-upstream"},
			ModelInfo: config.ModelInfo{ID: "claude-1", InputCostPerToken: ptr(3e-06), OutputCostPerToken: ptr(15e-06)}},
		{ModelName: "claude-bedrock", LiteLLMParams: config.LiteLLMParams{Model: "bedrock/" + bedrockClaude, APIBase: h.ant.URL,
			AWSRegionName: "us-east-1", AWSAccessKeyID: "AKIDTEST", AWSSecretAccessKey: "secret"}},
		{ModelName: "gpt-chat", LiteLLMParams: config.LiteLLMParams{Model: "groq/llama", APIBase: h.oai.BaseURL, APIKey: "sk-groq-upstream"},
			ModelInfo: config.ModelInfo{ID: "chat-1", InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(2e-06)}},
		{ModelName: "gpt-resp", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-5", APIBase: h.oai.BaseURL, APIKey: "sk-openai-upstream"},
			ModelInfo: config.ModelInfo{ID: "resp-1", InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(2e-06)}},
	}, RouterSettings: config.RouterSettings{NumRetries: ptr(0)}}
	rtr, err := router.New(router.Options{Config: cfg, Providers: registry.New(nil)})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Config: cfg, Router: rtr, Authenticator: auth}
	if lim != nil {
		o.Limiter = lim
	}
	gw, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(gw)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *wireHarness) do(t *testing.T, method, path string, header http.Header, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var anthropicHeaders = http.Header{"Anthropic-Version": {"2023-06-01"}, "Anthropic-Beta": {"claude-code-20250219,interleaved-thinking-2025-05-14"}}

// namedEvent is one SSE event with its name.
type namedEvent struct {
	name string
	data map[string]any
}

func namedEvents(t *testing.T, body io.Reader) []namedEvent {
	t.Helper()
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	var out []namedEvent
	for _, frame := range strings.Split(strings.TrimSpace(string(raw)), "\n\n") {
		var ev namedEvent
		for _, line := range strings.Split(frame, "\n") {
			if name, ok := strings.CutPrefix(line, "event: "); ok {
				ev.name = name
			} else if data, ok := strings.CutPrefix(line, "data: "); ok {
				if err := json.Unmarshal([]byte(data), &ev.data); err != nil {
					t.Fatalf("event data %q: %v", data, err)
				}
			}
		}
		if ev.data["type"] != ev.name {
			t.Errorf("event %q carries type %v", ev.name, ev.data["type"])
		}
		out = append(out, ev)
	}
	return out
}

func names(evs []namedEvent) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.name)
	}
	return strings.Join(s, " ")
}

// deltaText joins the text of the content_block_delta events.
func deltaText(evs []namedEvent) string {
	var sb strings.Builder
	for _, e := range evs {
		if d, ok := e.data["delta"].(map[string]any); ok && d["type"] == "text_delta" {
			sb.WriteString(d["text"].(string))
		}
	}
	return sb.String()
}

const weatherTool = `"tools":[{"name":"get_weather","description":"Weather of a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]`

func TestMessages_PassThroughToAnthropic(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	body := `{"model":"claude","max_tokens":100,"unknown_field":{"kept":true},"messages":[{"role":"user","content":"hi"}]}`
	resp := h.do(t, "POST", "/v1/messages?beta=true", anthropicHeaders, body)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if got["type"] != "message" || got["content"].([]any)[0].(map[string]any)["text"] != fakeanthropic.Answer {
		t.Errorf("answer %v", got)
	}
	hdr, up := h.ant.Last()
	if want := strings.Replace(body, `"claude"`, `"claude-sonnet-4-5"`, 1); string(up) != want {
		t.Errorf("upstream body\n%s\nwant\n%s", up, want)
	}
	if hdr.Get("Anthropic-Beta") != anthropicHeaders.Get("Anthropic-Beta") || hdr.Get("X-Api-Key") != "sk-ant-upstream" {
		t.Errorf("upstream headers %v", hdr)
	}
	lim.waitOutcomes(t, 1)
	o := lim.outcomes[0]
	if o.Usage.PromptTokens != fakeanthropic.InputTokens || o.Usage.PromptTokensDetails == nil || o.Usage.PromptTokensDetails.CachedTokens != fakeanthropic.CacheRead ||
		o.Usage.CompletionTokens == 0 || o.Provider != "anthropic" || o.Cost <= 0 {
		t.Errorf("outcome %+v", o)
	}
	if c, _ := strconv.ParseFloat(resp.Header.Get(HeaderResponseCost), 64); c != o.Cost {
		t.Errorf("cost header %q, outcome cost %g", resp.Header.Get(HeaderResponseCost), o.Cost)
	}
	if ch := lim.charges[0]; ch.MaxTokens != 100 || ch.Route != "/messages" || ch.PromptTokens == 0 {
		t.Errorf("charge %+v", ch)
	}
}

func TestMessages_StreamedPassThroughRelaysEveryEvent(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/messages", anthropicHeaders, `{"model":"claude","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	evs := namedEvents(t, resp.Body)
	want := "message_start ping content_block_start" + strings.Repeat(" content_block_delta", len(strings.Fields(fakeanthropic.Answer))) +
		" content_block_stop message_delta message_stop"
	if names(evs) != want {
		t.Errorf("events\n%s\nwant\n%s", names(evs), want)
	}
	if deltaText(evs) != fakeanthropic.Answer {
		t.Errorf("text %q", deltaText(evs))
	}
	lim.waitOutcomes(t, 1)
	if u := lim.outcomes[0].Usage; u.PromptTokens != fakeanthropic.InputTokens || u.CompletionTokens != len(strings.Fields(fakeanthropic.Answer)) {
		t.Errorf("settled usage %+v, want message_start's input and message_delta's output", u)
	}
}

const bedrockClaude = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

func TestMessages_BedrockClaudeInAnthropicsFormat(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			lim := &fakeLimiter{}
			h := newWireHarness(t, nil, lim)
			body := fmt.Sprintf(`{"model":"claude-bedrock","max_tokens":100,"stream":%v,"thinking":{"type":"enabled","budget_tokens":64},
				"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}`, stream)
			resp := h.do(t, "POST", "/v1/messages?beta=true", anthropicHeaders, body)
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if stream {
				evs := namedEvents(t, resp.Body)
				if deltaText(evs) != fakeanthropic.Answer || evs[0].name != "message_start" || evs[len(evs)-1].name != "message_stop" {
					t.Errorf("events %s, text %q", names(evs), deltaText(evs))
				}
			} else {
				var got struct{ Content []struct{ Text string } }
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || len(got.Content) == 0 || got.Content[0].Text != fakeanthropic.Answer {
					t.Errorf("answer %+v (%v)", got, err)
				}
			}
			op := map[bool]string{false: "/invoke", true: "/invoke-with-response-stream"}[stream]
			if paths := h.ant.Paths(); len(paths) != 1 || paths[0] != "/model/"+bedrockClaude+op {
				t.Errorf("upstream paths %q", paths)
			}
			_, up := h.ant.Last()
			var sent map[string]json.RawMessage
			_ = json.Unmarshal(up, &sent)
			if string(sent["anthropic_beta"]) != `["claude-code-20250219","interleaved-thinking-2025-05-14"]` ||
				string(sent["system"]) != `[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}]` ||
				string(sent["thinking"]) != `{"type":"enabled","budget_tokens":64}` {
				t.Errorf("sent to Bedrock: %s", up)
			}
			lim.waitOutcomes(t, 1)
			o, ch := lim.outcomes[0], lim.charges[0]
			if o.Usage.PromptTokens != fakeanthropic.InputTokens || o.Usage.PromptTokensDetails == nil ||
				o.Usage.PromptTokensDetails.CachedTokens != fakeanthropic.CacheRead || o.Usage.CompletionTokens != len(strings.Fields(fakeanthropic.Answer)) {
				t.Errorf("usage %+v", o.Usage)
			}
			// Priced from the cost map's us.anthropic.claude-sonnet-4-5 (cache reads at a tenth of
			// input), no more than the reservation.
			const input, cacheRead, output = 3.3e-06, 3.3e-07, 1.65e-05
			want := float64(fakeanthropic.InputTokens-fakeanthropic.CacheRead)*input + float64(fakeanthropic.CacheRead)*cacheRead +
				float64(o.Usage.CompletionTokens)*output
			if o.Provider != "bedrock" || math.Abs(o.Cost-want) > 1e-12 || o.Cost > ch.Cost {
				t.Errorf("outcome provider %q cost %g, want %g and <= the reservation %g", o.Provider, o.Cost, want, ch.Cost)
			}
		})
	}
}

// TestMessages_OneHourCacheWritesAreChargedAtTheirPrice: cache writes with a 1-hour TTL
// (usage.cache_creation.ephemeral_1h_input_tokens) are charged at the cost map's
// cache_creation_input_token_cost_above_1hr, through Anthropic and Bedrock, streamed or not,
// within the reservation. On the code before they were charged at the 5-minute price
// (3.75e-6 instead of 6e-6 a token for Claude Sonnet 4.5).
func TestMessages_OneHourCacheWritesAreChargedAtTheirPrice(t *testing.T) {
	// Per-token prices: the "claude" group's config sets input and output; the cache prices
	// are the cost map's, as are all of Bedrock's.
	prices := map[string][4]float64{ // input, cache read, 1-hour cache write, output
		"claude":         {3e-06, 3e-07, 6e-06, 15e-06},
		"claude-bedrock": {3.3e-06, 3.3e-07, 6.6e-06, 1.65e-05},
	}
	for group, pr := range prices {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprint(group, " stream=", stream), func(t *testing.T) {
				lim := &fakeLimiter{}
				h := newWireHarness(t, nil, lim)
				body := fmt.Sprintf(`{"model":%q,"max_tokens":100,"stream":%v,
					"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"hi"}]}`, group, stream)
				resp := h.do(t, "POST", "/v1/messages", anthropicHeaders, body)
				if resp.StatusCode != 200 {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("status %d: %s", resp.StatusCode, b)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				lim.waitOutcomes(t, 1)
				o, ch := lim.outcomes[0], lim.charges[0]
				if u := o.Usage; u.PromptTokens != fakeanthropic.InputTokens || u.CacheCreationInputTokens != fakeanthropic.CacheWrite1h ||
					u.CacheCreation1hInputTokens != fakeanthropic.CacheWrite1h {
					t.Fatalf("usage %+v", u)
				}
				plain := fakeanthropic.InputTokens - fakeanthropic.CacheRead - fakeanthropic.CacheWrite1h
				want := float64(plain)*pr[0] + float64(fakeanthropic.CacheRead)*pr[1] + float64(fakeanthropic.CacheWrite1h)*pr[2] +
					float64(o.Usage.CompletionTokens)*pr[3]
				if math.Abs(o.Cost-want) > 1e-12 || o.Cost > ch.Cost {
					t.Errorf("cost %g, want %g and <= the reservation %g", o.Cost, want, ch.Cost)
				}
			})
		}
	}
}

func TestMessages_BedrockErrorIsAnthropics(t *testing.T) {
	h := newWireHarness(t, nil, nil)
	h.ant.FailAll = true
	for _, stream := range []bool{false, true} {
		resp := h.do(t, "POST", "/v1/messages", anthropicHeaders, fmt.Sprintf(`{"model":"claude-bedrock","max_tokens":1,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, stream))
		var e struct {
			Type  string
			Error struct{ Type, Message string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != 503 || e.Type != "error" || e.Error.Type != "overloaded_error" || !strings.Contains(e.Error.Message, "ServiceUnavailableException") {
			t.Errorf("stream %v: got %d %+v, want 503 overloaded_error", stream, resp.StatusCode, e)
		}
	}
}

func TestMessages_TranslatedToChat(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/messages", anthropicHeaders, `{"model":"gpt-chat","max_tokens":100,"system":[{"type":"text","text":"be brief"}],`+
		`"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],`+weatherTool+`}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var got struct {
		Type       string `json:"type"`
		Role       string `json:"role"`
		StopReason string `json:"stop_reason"`
		Content    []struct{ Type, Text string }
		Usage      struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if got.Type != "message" || got.Role != "assistant" || got.StopReason != "end_turn" || len(got.Content) != 1 || got.Content[0].Text != "tok tok tok " ||
		got.Usage.InputTokens != fakeopenai.PromptTokens || got.Usage.OutputTokens != 3 {
		t.Errorf("answer %+v", got)
	}
	lim.waitOutcomes(t, 1)
	if o := lim.outcomes[0]; o.Usage.PromptTokens != fakeopenai.PromptTokens || o.Provider != "groq" {
		t.Errorf("outcome %+v", o)
	}
}

func TestMessages_StreamTranslatedFromChat(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/messages", anthropicHeaders, `{"model":"gpt-chat","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	evs := namedEvents(t, resp.Body)
	want := "message_start ping content_block_start content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if names(evs) != want {
		t.Errorf("events\n%s\nwant\n%s", names(evs), want)
	}
	if deltaText(evs) != "tok tok tok " {
		t.Errorf("text %q", deltaText(evs))
	}
	md := evs[len(evs)-2].data
	if md["delta"].(map[string]any)["stop_reason"] != "end_turn" || md["usage"].(map[string]any)["output_tokens"] != float64(3) ||
		md["usage"].(map[string]any)["input_tokens"] != float64(fakeopenai.PromptTokens) {
		t.Errorf("message_delta %v", md)
	}
	lim.waitOutcomes(t, 1)
	if u := lim.outcomes[0].Usage; u.PromptTokens != fakeopenai.PromptTokens || u.CompletionTokens != 3 {
		t.Errorf("settled usage %+v", u)
	}
}

func TestMessages_ToolUseStreamsInputJSON(t *testing.T) {
	h := newWireHarness(t, nil, nil)
	resp := h.do(t, "POST", "/v1/messages", anthropicHeaders, `{"model":"claude","max_tokens":100,"stream":true,`+weatherTool+
		`,"messages":[{"role":"user","content":"what is the weather in Paris?"}]}`)
	evs := namedEvents(t, resp.Body)
	var args strings.Builder
	for _, e := range evs {
		if d, ok := e.data["delta"].(map[string]any); ok && d["type"] == "input_json_delta" {
			args.WriteString(d["partial_json"].(string))
		}
	}
	if args.String() != `{"city":"Paris"}` {
		t.Errorf("tool input %q; events %s", args.String(), names(evs))
	}
}

func TestMessages_ErrorsInAnthropicFormat(t *testing.T) {
	cases := []struct {
		name    string
		auth    llmcall.Authenticator
		lim     *fakeLimiter
		header  http.Header
		body    string
		status  int
		errType string
		message string
	}{
		{"no key", fakeAuth{}, nil, anthropicHeaders, `{"model":"claude","max_tokens":1,"messages":[]}`, 401, "authentication_error", "invalid key"},
		{"unknown model", nil, nil, anthropicHeaders, `{"model":"nope","max_tokens":1,"messages":[]}`, 400, "invalid_request_error", "Invalid model name"},
		{"no max_tokens", nil, nil, anthropicHeaders, `{"model":"claude","messages":[]}`, 400, "invalid_request_error", "max_tokens"},
		{"not json", nil, nil, anthropicHeaders, `{"model":`, 400, "invalid_request_error", "Messages request"},
		{"budget", nil, &fakeLimiter{refuse: budgetError()},
			anthropicHeaders, `{"model":"claude","max_tokens":1,"messages":[]}`, 400, "invalid_request_error", "Budget has been exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newWireHarness(t, tc.auth, tc.lim)
			resp := h.do(t, "POST", "/v1/messages", tc.header, tc.body)
			var e struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status || e.Type != "error" || e.Error.Type != tc.errType || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("got %d %+v, want %d %s containing %q", resp.StatusCode, e, tc.status, tc.errType, tc.message)
			}
		})
	}
}

func TestMessages_UpstreamErrorKeepsAnthropicsStatusAndType(t *testing.T) {
	h := newWireHarness(t, nil, nil)
	h.ant.FailAll = true
	resp := h.do(t, "POST", "/v1/messages", anthropicHeaders, `{"model":"claude","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`)
	var e struct{ Error struct{ Type string } }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 503 || e.Error.Type != "overloaded_error" {
		t.Errorf("got %d %+v, want 503 overloaded_error", resp.StatusCode, e)
	}
}

func TestCountTokens(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	for _, model := range []string{"claude", "gpt-chat"} {
		resp := h.do(t, "POST", "/v1/messages/count_tokens", anthropicHeaders, `{"model":"`+model+`","messages":[{"role":"user","content":"hello there"}]}`)
		var got map[string]int
		_ = json.NewDecoder(resp.Body).Decode(&got)
		if resp.StatusCode != 200 || got["input_tokens"] <= 0 {
			t.Errorf("%s: %d %v", model, resp.StatusCode, got)
		}
	}
	if p := h.ant.Paths(); !reflect.DeepEqual(p, []string{"/v1/messages/count_tokens"}) {
		t.Errorf("anthropic upstream saw %v, want the count_tokens pass-through", p)
	}
	if len(lim.charges) != 0 {
		t.Errorf("count_tokens reserved %+v; it costs nothing", lim.charges)
	}
}

func TestModels_AnthropicShapeWithAnthropicVersion(t *testing.T) {
	h := newWireHarness(t, nil, nil)
	resp := h.do(t, "GET", "/v1/models", anthropicHeaders, "")
	var got struct {
		Data    []struct{ Type, ID, DisplayName, CreatedAt string }
		HasMore *bool  `json:"has_more"`
		FirstID string `json:"first_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if len(got.Data) != 4 || got.Data[0].Type != "model" || got.Data[0].ID != "claude" || got.HasMore == nil || got.FirstID != "claude" {
		t.Errorf("models %+v", got)
	}
}

func budgetError() error {
	return openai.Errorf(400, openai.TypeBudgetExceeded, "Budget has been exceeded! Current cost: 2, Max budget: 1")
}
