package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/proctest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

const masterKey = "sk-e2e-master-key"

// e2eConfig serves mock models and models on a fake OpenAI upstream at %[1]s. "flaky" and
// "limited" fail as an upstream 500 and 429 would (LiteLLM's mock_response error values);
// "upstream-broken" and "upstream-limited" get a real 500 and 429 from the fake upstream.
const e2eConfig = `
model_list:
  - model_name: demo
    litellm_params:
      model: mock/demo
    model_info:
      id: demo-1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: demo-embed
    litellm_params:
      model: mock/demo-embed
    model_info:
      mode: embedding
  - model_name: flaky
    litellm_params:
      model: mock/flaky
      mock_response: litellm.InternalServerError
  - model_name: limited
    litellm_params:
      model: mock/limited
      mock_response: litellm.RateLimitError
  - model_name: upstream
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      id: upstream-1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: upstream-broken
    litellm_params:
      model: openai/up-500
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: upstream-limited
    litellm_params:
      model: openai/up-429
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
router_settings:
  num_retries: 1
  fallbacks: [{"flaky": ["demo"]}, {"upstream-broken": ["upstream"]}]
general_settings:
  master_key: ` + masterKey + `
llmgate_settings:
  max_request_body_bytes: 65536
`

const upstreamKey = "sk-upstream-test-key"

// upstream is a fake OpenAI API. It answers as the requested model says: "up-ok" answers
// (a tool call when the request has tools; SSE when it asks for a stream), "up-500" and
// "up-429" fail. It records each request's body and Authorization header.
type upstream struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	auths  []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last() (map[string]any, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bodies) == 0 {
		return nil, ""
	}
	return u.bodies[len(u.bodies)-1], u.auths[len(u.auths)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.bodies)
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`, 400)
		return
	}
	u.mu.Lock()
	u.bodies = append(u.bodies, body)
	u.auths = append(u.auths, r.Header.Get("Authorization"))
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch body["model"] {
	case "up-500":
		w.WriteHeader(500)
		_, _ = io.WriteString(w, `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`)
		return
	case "up-429":
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(429)
		_, _ = io.WriteString(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		return
	}
	usage := `{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}`
	if stream, _ := body["stream"].(bool); stream {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, piece := range []string{"Hello", " from", " upstream"} {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up-ok\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", piece)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up-ok\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
		if opts, _ := body["stream_options"].(map[string]any); opts["include_usage"] == true {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up-ok\",\"choices\":[],\"usage\":%s}\n\n", usage)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		return
	}
	message := `{"role":"assistant","content":"Hello from upstream"}`
	finish := "stop"
	if _, ok := body["tools"]; ok {
		message = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`
		finish = "tool_calls"
	}
	fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":"up-ok","choices":[{"index":0,"message":%s,"finish_reason":%q}],"usage":%s}`, message, finish, usage)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/llmgate once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "llmgate-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "llmgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is a running llmgate process.
type server struct {
	URL  string
	logs *proctest.LogBuffer
	cmd  *exec.Cmd
	// exited is closed when the process has ended; exitErr is then cmd.Wait's result.
	exited  chan struct{}
	exitErr error
}

// start runs llmgate with the config against the shared DynamoDB Local in a table of its
// own, and waits until it answers.
func start(t *testing.T, config string) *server {
	t.Helper()
	table := dynamotest.TableName(t)
	// Registered before launch's cleanup, so it runs after the server has stopped.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = dynamotest.Client(t).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return launch(t, config, dynamotest.Endpoint(t), table)
}

// launch runs llmgate with the config against the DynamoDB at endpoint, waits until it
// listens (it creates the table first), and stops it when the test ends.
func launch(t *testing.T, config, endpoint, table string) *server {
	t.Helper()
	bin := binary(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := proctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath, "--port", strconv.Itoa(port))
	// The environment must not override the config: not its master key, nor the grace period
	// of a /key/regenerate without grace_period (none).
	cmd.Env = append(os.Environ(), "LLMGATE_DYNAMODB_ENDPOINT="+endpoint, "LLMGATE_TABLE="+table,
		"LITELLM_MASTER_KEY=", "LITELLM_KEY_ROTATION_GRACE_PERIOD=")
	s := &server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &proctest.LogBuffer{}, cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := proctest.Run(cmd, s.URL+"/health/liveliness", 60*time.Second); err != nil {
		t.Fatalf("%v\nllmgate output:\n%s", err, s.logs)
	}
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		if _, ended := s.stop(syscall.SIGTERM, 10*time.Second); !ended {
			_ = cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("llmgate output:\n%s", s.logs.String())
		}
	})
	return s
}

// stop sends sig and waits up to timeout for the process to end. It returns cmd.Wait's
// error (nil: exit status 0) and whether the process ended in time.
func (s *server) stop(sig os.Signal, timeout time.Duration) (exitErr error, ended bool) {
	_ = s.cmd.Process.Signal(sig) // fails only when the process has already ended
	select {
	case <-s.exited:
		return s.exitErr, true
	case <-time.After(timeout):
		return nil, false
	}
}

// request sends an HTTP request, as key unless key is empty, and returns the answer and its
// body.
func (s *server) request(t *testing.T, key, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, b
}

// admin calls the management API as the master key and returns the JSON object it answers;
// anything but a 200 fails the test.
func (s *server) admin(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	resp, b := s.request(t, masterKey, method, path, body)
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return out
}

// client is an openai-go client of the server that calls as key, without retries.
func client(s *server, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.URL+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// checkLogs fails the test unless every line the server wrote is a slog JSON record (time,
// level, msg) and none holds any of secrets: keys and prompt text stay out of the logs.
func checkLogs(t *testing.T, s *server, secrets ...string) {
	t.Helper()
	logs := s.logs.String()
	for i, line := range strings.Split(strings.TrimSuffix(logs, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON (%v): %q", i+1, err, line)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %d has no %q: %s", i+1, k, line)
			}
		}
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log holds %q", secret)
		}
	}
}

func apiError(t *testing.T, err error) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an API error", err)
	}
	return e
}

func TestE2E(t *testing.T) {
	up := newUpstream(t)
	s := start(t, fmt.Sprintf(e2eConfig, up.URL))
	c := client(s, masterKey)
	ctx := context.Background()

	t.Run("chat", func(t *testing.T) {
		var raw *http.Response
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "demo",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("Hello there")},
		}, option.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != "Echo: Hello there" {
			t.Errorf("content %q", got)
		}
		if resp.Usage.PromptTokens == 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens+resp.Usage.CompletionTokens {
			t.Errorf("usage %+v", resp.Usage)
		}
		wantCost := float64(resp.Usage.PromptTokens)*1e-06 + float64(resp.Usage.CompletionTokens)*2e-06
		if cost, err := strconv.ParseFloat(raw.Header.Get("x-litellm-response-cost"), 64); err != nil || fmt.Sprintf("%.12f", cost) != fmt.Sprintf("%.12f", wantCost) {
			t.Errorf("x-litellm-response-cost = %q, want %g", raw.Header.Get("x-litellm-response-cost"), wantCost)
		}
		if raw.Header.Get("x-litellm-model-id") != "demo-1" || raw.Header.Get("x-litellm-call-id") == "" {
			t.Errorf("headers %v", raw.Header)
		}
	})

	for _, includeUsage := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream include_usage=%v", includeUsage), func(t *testing.T) {
			params := openai.ChatCompletionNewParams{
				Model:    "demo",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream me please")},
			}
			if includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := c.Chat.Completions.NewStreaming(ctx, params)
			var text strings.Builder
			var chunks, usageChunks int
			var usage openai.CompletionUsage
			for stream.Next() {
				ch := stream.Current()
				chunks++
				if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
					usageChunks++
					usage = ch.Usage
				}
				for _, choice := range ch.Choices {
					text.WriteString(choice.Delta.Content)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if text.String() != "Echo: stream me please" || chunks < 4 {
				t.Errorf("streamed %q in %d chunks", text.String(), chunks)
			}
			want := 0
			if includeUsage {
				want = 1
			}
			if usageChunks != want || (includeUsage && usage.CompletionTokens == 0) {
				t.Errorf("%d usage chunks (%+v), want %d", usageChunks, usage, want)
			}
		})
	}

	t.Run("upstream chat with tools passed through", func(t *testing.T) {
		var raw *http.Response
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "upstream",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather?")},
			Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
				Name: "get_weather", Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
			})},
			ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")},
			Seed:       openai.Int(7),
		}, option.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		calls := resp.Choices[0].Message.ToolCalls
		if len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != `{"city":"Paris"}` || resp.Choices[0].FinishReason != "tool_calls" {
			t.Errorf("answer %+v, want the upstream's tool call", resp.Choices[0])
		}
		body, auth := up.last()
		tools, _ := body["tools"].([]any)
		if body["model"] != "up-ok" || len(tools) != 1 || body["tool_choice"] != "auto" || body["seed"] != 7.0 || auth != "Bearer "+upstreamKey {
			t.Errorf("upstream got %v with %q, want the request with model up-ok, tools, tool_choice and seed, and the deployment's key", body, auth)
		}
		if raw.Header.Get("x-litellm-model-id") != "upstream-1" || !strings.HasPrefix(raw.Header.Get("x-litellm-model-api-base"), up.URL) {
			t.Errorf("headers %v", raw.Header)
		}
	})

	for _, includeUsage := range []bool{false, true} {
		t.Run(fmt.Sprintf("upstream stream include_usage=%v", includeUsage), func(t *testing.T) {
			params := openai.ChatCompletionNewParams{
				Model: "upstream", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			}
			if includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := c.Chat.Completions.NewStreaming(ctx, params)
			var text strings.Builder
			usageChunks := 0
			for stream.Next() {
				ch := stream.Current()
				if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
					usageChunks++
				}
				for _, choice := range ch.Choices {
					text.WriteString(choice.Delta.Content)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			want := map[bool]int{false: 0, true: 1}[includeUsage]
			if text.String() != "Hello from upstream" || usageChunks != want {
				t.Errorf("streamed %q with %d usage chunks, want %d", text.String(), usageChunks, want)
			}
		})
	}

	t.Run("embeddings", func(t *testing.T) {
		resp, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "demo-embed",
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one", "two"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 2 || len(resp.Data[0].Embedding) != 16 || resp.Usage.PromptTokens == 0 {
			t.Errorf("embeddings: %d vectors of %d, usage %+v", len(resp.Data), len(resp.Data[0].Embedding), resp.Usage)
		}
	})

	t.Run("completions", func(t *testing.T) {
		resp, err := c.Completions.New(ctx, openai.CompletionNewParams{
			Model:  "demo",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say hi")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Text != "Echo: Say hi" || resp.Usage.TotalTokens == 0 {
			t.Errorf("completion %+v", resp)
		}
	})

	t.Run("model list", func(t *testing.T) {
		page, err := c.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if strings.Join(ids, ",") != "demo,demo-embed,flaky,limited,upstream,upstream-broken,upstream-limited" {
			t.Errorf("models %v", ids)
		}
	})

	t.Run("mock 500 falls back", func(t *testing.T) {
		var raw *http.Response
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "flaky", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		}, option.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Message.Content != "Echo: hi" || raw.Header.Get("x-litellm-model-id") != "demo-1" {
			t.Errorf("answered %q by %q, want demo's answer", resp.Choices[0].Message.Content, raw.Header.Get("x-litellm-model-id"))
		}
	})

	t.Run("mock 429", func(t *testing.T) {
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "limited", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		if e := apiError(t, err); e.StatusCode != 429 || e.Type != "rate_limit_error" {
			t.Errorf("got %d %s, want 429 rate_limit_error", e.StatusCode, e.Type)
		}
	})

	t.Run("upstream 500 falls back", func(t *testing.T) {
		before := up.count()
		var raw *http.Response
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "upstream-broken", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		}, option.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Message.Content != "Hello from upstream" || raw.Header.Get("x-litellm-model-id") != "upstream-1" {
			t.Errorf("answered %q by %q, want the fallback's answer", resp.Choices[0].Message.Content, raw.Header.Get("x-litellm-model-id"))
		}
		if n := up.count() - before; n != 3 { // the broken deployment, its retry, the fallback
			t.Errorf("%d upstream calls, want 3", n)
		}
	})

	t.Run("upstream 429", func(t *testing.T) {
		before := up.count()
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "upstream-limited", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		if e := apiError(t, err); e.StatusCode != 429 || e.Type != "rate_limit_error" || !strings.Contains(e.Message, "Rate limit reached") {
			t.Errorf("got %d %s %q, want the upstream's 429 as rate_limit_error", e.StatusCode, e.Type, e.Message)
		}
		if n := up.count() - before; n != 2 {
			t.Errorf("%d upstream calls, want 2 (num_retries: 1)", n)
		}
	})

	t.Run("unknown model", func(t *testing.T) {
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "gpt-17", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		if e := apiError(t, err); e.StatusCode != 400 || !strings.Contains(e.Message, "Invalid model name passed in model=gpt-17") {
			t.Errorf("got %d %q", e.StatusCode, e.Message)
		}
	})

	for _, tt := range []struct {
		name       string
		body       string
		wantStatus int
	}{
		{"bad JSON", `{"model": "demo", "messages": [`, 400},
		{"oversized body", `{"model":"demo","messages":[{"role":"user","content":"` + strings.Repeat("a", 70000) + `"}]}`, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Raw HTTP: the SDK cannot send a malformed body.
			_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{}, option.WithRequestBody("application/json", []byte(tt.body)))
			if e := apiError(t, err); e.StatusCode != tt.wantStatus || e.Type != "invalid_request_error" {
				t.Errorf("got %d %s, want %d invalid_request_error", e.StatusCode, e.Type, tt.wantStatus)
			}
		})
	}

	checkLogs(t, s, "Hello there", masterKey, upstreamKey)
}
