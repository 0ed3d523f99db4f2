// Package events_test replays every sample event in this folder into the handlers the Lambda
// functions serve, against DynamoDB Local and the mock provider.
package events_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/lambdahttp"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// masterKey is the key the sample events authenticate with.
const masterKey = "sk-llmgate-events-master-key"

// testConfig serves the events' models from the mock provider.
const testConfig = `
model_list:
  - model_name: demo
    litellm_params: {model: mock/demo}
    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
  - model_name: demo-embed
    litellm_params: {model: mock/demo-embed}
    model_info: {mode: embedding, input_cost_per_token: 0.0000001}
general_settings:
  master_key: ` + masterKey + `
`

// answer is what a function returned for an event, whichever way it was invoked.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// replay is one event file, the function it goes to and what its answer must satisfy.
type replay struct {
	file   string
	target string // "completions", "admin" or "rotator"
	status int
	check  func(t *testing.T, a answer)
}

// replays run in this order: key-info reads the key key-generate creates.
var replays = []replay{
	{"chat.json", "completions", http.StatusOK, func(t *testing.T, a answer) {
		var resp struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		decode(t, a.body, &resp)
		if resp.Object != "chat.completion" || len(resp.Choices) == 0 || resp.Choices[0].Message.Content == "" {
			t.Errorf("body = %s, want a chat.completion with content", a.body)
		}
	}},
	{"chat-stream.json", "completions", http.StatusOK, func(t *testing.T, a answer) {
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("Content-Type = %q, want text/event-stream", ct)
		}
		var data []string
		for line := range strings.SplitSeq(string(a.body), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = append(data, d)
			}
		}
		if len(data) < 2 || data[len(data)-1] != "[DONE]" || !strings.Contains(data[0], `"chat.completion.chunk"`) {
			t.Errorf("stream = %q, want chat.completion.chunk events ending in [DONE]", a.body)
		}
	}},
	{"messages-stream.json", "completions", http.StatusOK, func(t *testing.T, a answer) {
		evs := namedEvents(t, a)
		names := eventNames(evs)
		if len(evs) < 6 || names[0] != "message_start" || names[len(names)-1] != "message_stop" ||
			!slices.Contains(names, "content_block_start") || !slices.Contains(names, "content_block_stop") {
			t.Fatalf("events %v, want Anthropic's sequence from message_start to message_stop", names)
		}
		var text strings.Builder
		for _, e := range evs {
			if d, _ := e.data["delta"].(map[string]any); e.name == "content_block_delta" && d["type"] == "text_delta" {
				text.WriteString(d["text"].(string))
			}
		}
		usage, _ := evs[len(evs)-2].data["usage"].(map[string]any)
		if text.Len() == 0 || names[len(names)-2] != "message_delta" || usage["output_tokens"] == nil {
			t.Errorf("text %q, events %v, final usage %v", text.String(), names, usage)
		}
	}},
	{"responses-stream.json", "completions", http.StatusOK, func(t *testing.T, a answer) {
		evs := namedEvents(t, a)
		names := eventNames(evs)
		if len(evs) < 5 || names[0] != "response.created" || names[len(names)-1] != "response.completed" ||
			!slices.Contains(names, "response.output_text.delta") || !slices.Contains(names, "response.output_item.done") {
			t.Fatalf("events %v, want the Responses sequence from response.created to response.completed", names)
		}
		for i, e := range evs {
			if e.data["sequence_number"] != float64(i) {
				t.Errorf("event %d (%s) has sequence_number %v", i, e.name, e.data["sequence_number"])
			}
		}
		final, _ := evs[len(evs)-1].data["response"].(map[string]any)
		if u, _ := final["usage"].(map[string]any); u["output_tokens"] == nil || final["status"] != "completed" {
			t.Errorf("response.completed %v", final)
		}
	}},
	{"embeddings.json", "completions", http.StatusOK, func(t *testing.T, a answer) {
		var resp struct {
			Object string `json:"object"`
			Data   []struct {
				Embedding []float64 `json:"embedding"`
			} `json:"data"`
		}
		decode(t, a.body, &resp)
		if resp.Object != "list" || len(resp.Data) != 2 || len(resp.Data[0].Embedding) == 0 {
			t.Errorf("body = %s, want two embeddings", a.body)
		}
	}},
	{"key-generate.json", "admin", http.StatusOK, func(t *testing.T, a answer) {
		var resp struct {
			Key      string `json:"key"`
			KeyAlias string `json:"key_alias"`
		}
		decode(t, a.body, &resp)
		if resp.Key != "sk-events-replay-Q7xL2m9Tz4Kp8Wb3" || resp.KeyAlias != "events-replay" {
			t.Errorf("body = %s, want the generated key and its alias", a.body)
		}
	}},
	{"key-info.json", "admin", http.StatusOK, func(t *testing.T, a answer) {
		var resp struct {
			Info struct {
				KeyAlias string   `json:"key_alias"`
				Models   []string `json:"models"`
			} `json:"info"`
		}
		decode(t, a.body, &resp)
		if resp.Info.KeyAlias != "events-replay" || !slices.Equal(resp.Info.Models, []string{"demo"}) {
			t.Errorf("body = %s, want the key generated by key-generate.json", a.body)
		}
	}},
	{"health-readiness.json", "admin", http.StatusOK, func(t *testing.T, a answer) {
		var resp struct{ Status string }
		decode(t, a.body, &resp)
		if resp.Status != "healthy" {
			t.Errorf("body = %s, want status healthy", a.body)
		}
	}},
	{"health-liveliness.json", "admin", http.StatusOK, func(t *testing.T, a answer) {
		if !bytes.Contains(a.body, []byte("alive")) {
			t.Errorf("body = %s, want I'm alive!", a.body)
		}
	}},
	{"rotator-scheduled.json", "rotator", 0, nil},
}

func TestReplay_EveryEventFileGetsTheAnswerItsRouteGives(t *testing.T) {
	files, _ := filepath.Glob("*.json")
	for _, f := range files {
		if !slices.ContainsFunc(replays, func(r replay) bool { return r.file == f }) {
			t.Errorf("events/%s has no replay case", f)
		}
	}
	a := newApp(t)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	streaming := lambdahttp.Streaming(a.Gateway, log)
	buffered := lambdahttp.Buffered(a.Gateway, log)
	admin := httpadapter.New(a.Admin).ProxyWithContext
	ctx := context.Background()

	for _, r := range replays {
		t.Run(r.file, func(t *testing.T) {
			raw, err := os.ReadFile(r.file)
			if err != nil {
				t.Fatal(err)
			}
			if r.target == "rotator" {
				var ev events.EventBridgeEvent
				decode(t, raw, &ev)
				if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" {
					t.Fatalf("%s is not a scheduled event: %+v", r.file, ev)
				}
				if _, err := a.Rotator.Run(ctx); err != nil {
					t.Fatalf("rotator run: %v", err)
				}
				return
			}
			var ev events.APIGatewayProxyRequest
			decode(t, raw, &ev)
			var answers []answer
			switch r.target {
			case "completions":
				resp, err := streaming(ctx, ev)
				if err != nil {
					t.Fatalf("streaming: %v", err)
				}
				answers = append(answers, readStream(t, resp))
				bresp, err := buffered(ctx, ev)
				if err != nil {
					t.Fatalf("buffered: %v", err)
				}
				answers = append(answers, fromProxy(bresp))
			case "admin":
				resp, err := admin(ctx, ev)
				if err != nil {
					t.Fatalf("admin: %v", err)
				}
				answers = append(answers, fromProxy(resp))
			}
			for i, ans := range answers {
				if ans.status != r.status {
					t.Errorf("answer %d: status %d, want %d; body %s", i, ans.status, r.status, ans.body)
					continue
				}
				r.check(t, ans)
			}
		})
	}
}

func newApp(t *testing.T) *app.App {
	t.Helper()
	_, table := dynamotest.NewTable(t)
	cfg, _, err := config.Parse([]byte(testConfig), func(name string) (string, bool) {
		switch name {
		case "LLMGATE_TABLE":
			return table, true
		case "LLMGATE_DYNAMODB_ENDPOINT":
			return dynamotest.Endpoint(t), true
		}
		return "", false
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	return a
}

// readStream reads a streaming response as API Gateway does: JSON prelude, 8 NUL bytes, body.
func readStream(t *testing.T, resp *events.APIGatewayProxyStreamingResponse) answer {
	t.Helper()
	defer resp.Close()
	raw, err := io.ReadAll(bufio.NewReader(resp))
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	prelude, body, ok := bytes.Cut(raw, make([]byte, 8))
	if !ok {
		t.Fatalf("no NUL delimiter in %q", raw)
	}
	var p struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	}
	decode(t, prelude, &p)
	return answer{status: p.StatusCode, header: header(p.Headers, p.MultiValueHeaders), body: body}
}

func fromProxy(r events.APIGatewayProxyResponse) answer {
	return answer{status: r.StatusCode, header: header(r.Headers, r.MultiValueHeaders), body: []byte(r.Body)}
}

func header(single map[string]string, multi map[string][]string) http.Header {
	h := http.Header{}
	for k, v := range single {
		h.Set(k, v)
	}
	for k, vs := range multi {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return h
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}

// namedEvent is one event of a named SSE stream (Messages, Responses).
type namedEvent struct {
	name string
	data map[string]any
}

// namedEvents splits a named SSE stream into its events, failing on any frame that is not
// "event: <type>" then "data: <JSON whose type is that name>".
func namedEvents(t *testing.T, a answer) []namedEvent {
	t.Helper()
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	body := string(a.body)
	if !strings.HasSuffix(body, "\n\n") || strings.Contains(body, "[DONE]") {
		t.Errorf("stream does not end with a complete event, or has OpenAI's [DONE]: %q", body)
	}
	var out []namedEvent
	for frame := range strings.SplitSeq(strings.TrimSpace(body), "\n\n") {
		lines := strings.Split(frame, "\n")
		name, ok1 := strings.CutPrefix(lines[0], "event: ")
		if len(lines) != 2 || !ok1 || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("frame %q is not an event line and a data line", frame)
		}
		ev := namedEvent{name: name}
		decode(t, []byte(strings.TrimPrefix(lines[1], "data: ")), &ev.data)
		if ev.data["type"] != name {
			t.Errorf("event %q carries type %v", name, ev.data["type"])
		}
		out = append(out, ev)
	}
	return out
}

func eventNames(evs []namedEvent) []string {
	var names []string
	for _, e := range evs {
		names = append(names, e.name)
	}
	return names
}
