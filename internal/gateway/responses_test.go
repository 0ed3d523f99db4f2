package gateway

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

const functionTool = `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}},{"type":"web_search"}]`

// outputText joins the output_text parts of a response's message items.
func outputText(resp map[string]any) string {
	var sb strings.Builder
	for _, it := range resp["output"].([]any) {
		item := it.(map[string]any)
		if item["type"] != "message" {
			continue
		}
		for _, p := range item["content"].([]any) {
			sb.WriteString(p.(map[string]any)["text"].(string))
		}
	}
	return sb.String()
}

func TestResponses_PassThroughToOpenAI(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/responses", nil, `{"model":"gpt-resp","input":"hi","store":false,"metadata":{"k":"v"},"include":["reasoning.encrypted_content"]}`)
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || got["object"] != "response" || outputText(got) != fakeopenai.ResponsesAnswer {
		t.Fatalf("%d %v", resp.StatusCode, got)
	}
	lim.waitOutcomes(t, 1)
	o := lim.outcomes[0]
	if o.Usage.PromptTokens != 30 || o.Usage.CompletionTokens != 7 || o.Usage.PromptTokensDetails == nil || o.Usage.PromptTokensDetails.CachedTokens != 10 || o.Provider != "openai" {
		t.Errorf("outcome %+v", o)
	}
}

func TestResponses_StreamedPassThroughEndsWithCompleted(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/responses", nil, `{"model":"gpt-resp","input":"hi","stream":true}`)
	evs := namedEvents(t, resp.Body)
	if len(evs) == 0 || evs[0].name != "response.created" || evs[len(evs)-1].name != "response.completed" {
		t.Fatalf("events %s", names(evs))
	}
	lim.waitOutcomes(t, 1)
	if u := lim.outcomes[0].Usage; u.PromptTokens != 30 || u.CompletionTokens != 7 {
		t.Errorf("settled usage %+v, want response.completed's", u)
	}
}

func TestResponses_TranslatedToChat(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/responses", nil, `{"model":"gpt-chat","instructions":"be brief","input":[{"role":"developer","content":"dev"},{"role":"user","content":[{"type":"input_text","text":"hi"}]}],`+functionTool+`}`)
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || got["status"] != "completed" || outputText(got) != "tok tok tok " {
		t.Fatalf("%d %v", resp.StatusCode, got)
	}
	if u := got["usage"].(map[string]any); u["input_tokens"] != float64(fakeopenai.PromptTokens) || u["output_tokens"] != float64(3) {
		t.Errorf("usage %v", u)
	}
}

func TestResponses_StreamTranslatedFromChat(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/responses", nil, `{"model":"gpt-chat","input":"hi","stream":true}`)
	evs := namedEvents(t, resp.Body)
	want := "response.created response.in_progress response.output_item.added response.content_part.added" +
		" response.output_text.delta response.output_text.delta response.output_text.delta" +
		" response.output_text.done response.content_part.done response.output_item.done response.completed"
	if names(evs) != want {
		t.Errorf("events\n%s\nwant\n%s", names(evs), want)
	}
	for i, e := range evs {
		if e.data["sequence_number"] != float64(i) {
			t.Errorf("event %d has sequence_number %v", i, e.data["sequence_number"])
		}
	}
	done := evs[len(evs)-2].data["item"].(map[string]any)
	if done["content"].([]any)[0].(map[string]any)["text"] != "tok tok tok " {
		t.Errorf("output_item.done %v", done)
	}
	final := evs[len(evs)-1].data["response"].(map[string]any)
	if u := final["usage"].(map[string]any); u["input_tokens"] != float64(fakeopenai.PromptTokens) || u["output_tokens"] != float64(3) || outputText(final) != "tok tok tok " {
		t.Errorf("response.completed %v", final)
	}
	lim.waitOutcomes(t, 1)
	if u := lim.outcomes[0].Usage; u.CompletionTokens != 3 {
		t.Errorf("settled usage %+v", u)
	}
}

func TestResponses_PreviousResponseIDOnAChatDeploymentIsA400(t *testing.T) {
	h := newWireHarness(t, nil, nil)
	resp := h.do(t, "POST", "/v1/responses", nil, `{"model":"gpt-chat","input":"hi","previous_response_id":"resp_1"}`)
	e := readError(t, resp)
	if resp.StatusCode != 400 || e.Type != "invalid_request_error" || !strings.Contains(e.Message, "previous_response_id") {
		t.Errorf("%d %+v", resp.StatusCode, e)
	}
}

func TestResponses_BudgetRefusalIsAnOpenAIError(t *testing.T) {
	h := newWireHarness(t, nil, &fakeLimiter{refuse: budgetError()})
	resp := h.do(t, "POST", "/v1/responses", nil, `{"model":"gpt-resp","input":"hi","stream":true}`)
	e := readError(t, resp)
	if resp.StatusCode != 400 || e.Type != "budget_exceeded" {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("%d %+v %s", resp.StatusCode, e, b)
	}
}

func TestResponses_BackgroundResponseIsChargedItsReservation(t *testing.T) {
	lim := &fakeLimiter{}
	h := newWireHarness(t, nil, lim)
	resp := h.do(t, "POST", "/v1/responses", nil, `{"model":"gpt-resp","input":"a long task","background":true,"max_output_tokens":500}`)
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || got["status"] != "queued" || got["usage"] != nil {
		t.Fatalf("%d %v", resp.StatusCode, got)
	}
	// The answer says nothing of what the response will use: the key pays the most it can
	// cost, not nothing.
	lim.waitOutcomes(t, 1)
	if o, ch := lim.outcomes[0], lim.charges[0]; ch.Cost <= 0 || o.Cost != ch.Cost || o.Usage.CompletionTokens != 500 {
		t.Errorf("outcome cost %g usage %+v, want the reservation %g", o.Cost, o.Usage, ch.Cost)
	}
}
