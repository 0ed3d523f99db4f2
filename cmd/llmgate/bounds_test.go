package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// boundsConfig has a group of two real deployments on the fake upstream at %[1]s ("pair",
// which can be cooled down), a mock group, and "slow" on the slow streaming upstream at
// %[2]s. The server gives bodies and idle connections one second.
const boundsConfig = `
model_list:
  - model_name: demo
    litellm_params:
      model: mock/demo
  - model_name: pair
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      id: pair-1
  - model_name: pair
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      id: pair-2
  - model_name: slow
    litellm_params:
      model: openai/slow
      api_base: %[2]s/v1
      api_key: ` + upstreamKey + `
router_settings:
  num_retries: 0
  cooldown_time: 600
general_settings:
  master_key: ` + masterKey + `
llmgate_settings:
  body_read_timeout: 1s
  idle_timeout: 1s
  allow_unpriced_models: true
`

// chatError is the error object of an OpenAI-format error answer.
type chatError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
}

func errorOf(t *testing.T, body []byte) chatError {
	t.Helper()
	var e struct {
		Error chatError `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an OpenAI error: %s", body)
	}
	return e.Error
}

func chat(model string, extra map[string]any) map[string]any {
	body := map[string]any{"model": model, "messages": []map[string]any{{"role": "user", "content": "hi"}}}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// mock_response takes effect for a key only on mock deployments; a proxy admin may use it
// anywhere, and the failures it asks for never cool a deployment down for others. On the
// old code a key's mock_response "litellm.RateLimitError" on "pair" was answered by the mock
// on the real deployments and cooled both down: the next plain call got 429 "No deployments
// available".
func TestBounds_MockResponseIsGatedAndNeverCoolsDown(t *testing.T) {
	up := newUpstream(t)
	s := start(t, fmt.Sprintf(boundsConfig, up.URL, slowUpstream(t)))
	key := s.admin(t, "POST", "/key/generate", map[string]any{"max_budget": 0.001})["key"].(string)

	for range 2 {
		resp, b := s.request(t, key, "POST", "/v1/chat/completions", chat("pair", map[string]any{"mock_response": "litellm.RateLimitError"}))
		if e := errorOf(t, b); resp.StatusCode != http.StatusForbidden || e.Param == nil || *e.Param != "mock_response" {
			t.Fatalf("key's mock_response on a real deployment: %d %s, want 403 naming mock_response", resp.StatusCode, b)
		}
	}
	resp, b := s.request(t, key, "POST", "/v1/chat/completions", chat("demo", map[string]any{"mock_response": "canned answer"}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "canned answer") {
		t.Errorf("key's mock_response on a mock deployment: %d %s, want the canned answer", resp.StatusCode, b)
	}
	for range 3 {
		resp, b := s.request(t, masterKey, "POST", "/v1/chat/completions", chat("pair", map[string]any{"mock_response": "litellm.RateLimitError"}))
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("admin's mocked rate limit: %d %s, want 429", resp.StatusCode, b)
		}
	}
	calls := up.count()
	resp, b = s.request(t, key, "POST", "/v1/chat/completions", chat("pair", nil))
	if resp.StatusCode != http.StatusOK || up.count() != calls+1 {
		t.Errorf("plain call after mocked failures: %d %s (%d upstream calls), want 200 from the upstream", resp.StatusCode, b, up.count()-calls)
	}
}

// slowUpstream streams chat chunks for about two seconds, longer than the test server's
// body and idle timeouts, and returns its URL.
func slowUpstream(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for range 8 {
			fmt.Fprint(w, "data: {\"id\":\"s\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"slow\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tick \"},\"finish_reason\":null}]}\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(250 * time.Millisecond)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The local server bounds the time a client may take to send its body and to leave a
// keep-alive connection idle, but not the time a stream takes. The old server held both
// connections forever (only headers had a timeout).
func TestBounds_ServerTimeouts(t *testing.T) {
	s := start(t, fmt.Sprintf(boundsConfig, newUpstream(t).URL, slowUpstream(t)))
	addr := strings.TrimPrefix(s.URL, "http://")
	// closedWithin reads from conn until the server closes it, failing after wait.
	closedWithin := func(t *testing.T, conn net.Conn, wait time.Duration) []byte {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		b, err := io.ReadAll(conn)
		if err != nil {
			t.Fatalf("server still holds the connection after %s (read %q): %v", wait, b, err)
		}
		return b
	}

	t.Run("slow body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":", masterKey)
		if b := closedWithin(t, conn, 20*time.Second); !strings.HasPrefix(string(b), "HTTP/1.1 400") {
			t.Errorf("answer to a body that stopped coming: %q, want a 400", b)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
		if b := closedWithin(t, conn, 20*time.Second); !strings.HasPrefix(string(b), "HTTP/1.1 200") {
			t.Errorf("answer %q, want a 200 and then the connection closed", b)
		}
	})
	t.Run("a stream outlives the timeouts", func(t *testing.T) {
		resp, b := s.request(t, masterKey, "POST", "/v1/chat/completions", chat("slow", map[string]any{"stream": true}))
		if resp.StatusCode != http.StatusOK || strings.Count(string(b), "tick") != 8 || !strings.Contains(string(b), "[DONE]") {
			t.Errorf("slow stream: %d %q, want all 8 chunks and [DONE]", resp.StatusCode, b)
		}
	})
}

// The local server holds at most max_connections client connections: one more waits (in
// the listen backlog, unanswered) until one closes. The old server accepted every
// connection, so a flood of idle ones could take all file descriptors.
func TestBounds_ConnectionCap(t *testing.T) {
	s := start(t, `
model_list:
  - model_name: demo
    litellm_params:
      model: mock/demo
general_settings:
  master_key: `+masterKey+`
llmgate_settings:
  idle_timeout: 1s
  max_connections: 4
`)
	addr := strings.TrimPrefix(s.URL, "http://")
	time.Sleep(1500 * time.Millisecond) // the readiness check's keep-alive connection is closed
	var held []net.Conn
	for range 4 { // silent connections: the server holds each until read_header_timeout (10 s)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	live := func(timeout time.Duration) error {
		hc.Timeout = timeout
		resp, err := hc.Get(s.URL + "/health/liveliness")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := live(time.Second); err == nil {
		t.Fatal("a fifth connection was served while four were open; want it held until one closes")
	}
	held[0].Close()
	if err := live(5 * time.Second); err != nil {
		t.Errorf("after a connection closed, a new one was not served: %v", err)
	}
}

// crashConfig has a real deployment on the fake upstream at %[1]s, deployments whose
// upstream at %[2]s answers 60 MB ("big") or a 401 echoing the key and a URL ("leaky"), and
// a wildcard group that prices any model name.
const crashConfig = `
model_list:
  - model_name: demo
    litellm_params:
      model: mock/demo
  - model_name: real
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
  - model_name: big
    litellm_params:
      model: openai/big
      api_base: %[2]s/v1
      api_key: ` + upstreamKey + `
  - model_name: leaky
    litellm_params:
      model: openai/leaky
      api_base: %[2]s/v1
      api_key: ` + upstreamKey + `
  - model_name: "wild/*"
    litellm_params:
      model: "openai/*"
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
router_settings:
  num_retries: 0
general_settings:
  master_key: ` + masterKey + `
llmgate_settings:
  allow_unpriced_models: true
`

// rssCeiling is the peak resident memory (VmHWM) the process may reach while it is fed
// every crash input of issue 14.
const rssCeiling = 128 << 20

// Every input that crashed or bloated the old process (out of memory on dimensions
// 300000000, n 5000000 and the spend-log range to 9999; a makeslice panic on dimensions
// 2^62; a 2 MB mock_response streamed as 218 MB; distinct 2 MB model names kept forever; a
// 60 MB upstream answer buffered whole) now gets a 4xx, and the process stays alive with its
// peak RSS under rssCeiling.
func TestBounds_CrashInputsLeaveTheProcessAliveAndSmall(t *testing.T) {
	up := newUpstream(t)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if b, _ := io.ReadAll(r.Body); strings.Contains(string(b), `"leaky"`) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s****%s. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error"}}`,
				upstreamKey[:7], upstreamKey[len(upstreamKey)-4:])
			return
		}
		w.(http.Flusher).Flush() // chunked: no Content-Length to refuse it by
		chunk := strings.Repeat("x", 1<<20)
		_, _ = io.WriteString(w, `{"id":"big","object":"chat.completion","pad":"`)
		for range 60 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}`)
	}))
	t.Cleanup(big.Close)
	s := start(t, fmt.Sprintf(crashConfig, up.URL, big.URL))
	key := s.admin(t, "POST", "/key/generate", map[string]any{"user_id": "crash-user", "max_budget": 10})["key"].(string)
	if resp, b := s.request(t, key, "POST", "/v1/chat/completions", chat("demo", nil)); resp.StatusCode != http.StatusOK {
		t.Fatalf("a call to give the key a spend log: %d %s", resp.StatusCode, b)
	}

	inputs := []struct {
		name, key, path string
		body            any
		wantStatus      int
	}{
		{"dimensions 300000000 on a real model", masterKey, "/v1/embeddings", map[string]any{"model": "real", "input": "x", "mock_response": "x", "dimensions": 300000000}, 400},
		{"dimensions 2^62", masterKey, "/v1/embeddings", map[string]any{"model": "demo", "input": "x", "dimensions": int64(1) << 62}, 400},
		{"n 5000000", masterKey, "/v1/chat/completions", chat("demo", map[string]any{"n": 5000000}), 400},
		{"n 5000000 as a key", key, "/v1/chat/completions", chat("demo", map[string]any{"n": 5000000, "mock_response": "x"}), 400},
		{"2 MB mock_response streamed", masterKey, "/v1/chat/completions", chat("demo", map[string]any{"stream": true, "mock_response": strings.Repeat("a ", 1<<20)}), 400},
		{"spend logs to 9999", key, "/spend/logs?start_date=2026-01-01&end_date=9999-12-31", nil, 400},
		{"60 MB upstream answer", key, "/v1/chat/completions", chat("big", nil), 400},
	}
	for i := range 10 {
		inputs = append(inputs, struct {
			name, key, path string
			body            any
			wantStatus      int
		}{fmt.Sprintf("2 MB model name %d", i), key, "/v1/chat/completions", chat(fmt.Sprintf("wild/%d-%s", i, strings.Repeat("m", 2<<20)), nil), 400})
	}
	for _, in := range inputs {
		method := "POST"
		if in.body == nil {
			method = "GET"
		}
		resp, b := s.request(t, in.key, method, in.path, in.body)
		if resp.StatusCode != in.wantStatus {
			t.Errorf("%s: %d %.300s, want %d", in.name, resp.StatusCode, b, in.wantStatus)
		}
	}
	// Upstream error texts reach the client without any part of the upstream key or URLs.
	if resp, b := s.request(t, key, "POST", "/v1/chat/completions", chat("leaky", nil)); resp.StatusCode != http.StatusUnauthorized ||
		strings.Contains(string(b), upstreamKey[:7]) || strings.Contains(string(b), upstreamKey[len(upstreamKey)-4:]) || strings.Contains(string(b), "://") {
		t.Errorf("upstream 401: %d %s, want a 401 without key fragments or URLs", resp.StatusCode, b)
	}
	if resp, b := s.request(t, "", "GET", "/health/liveliness", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the crash inputs: liveliness %d %s", resp.StatusCode, b)
	}
	select {
	case <-s.exited:
		t.Fatalf("the process exited: %v", s.exitErr)
	default:
	}
	hwm, rss := procMemory(t, s.cmd.Process.Pid)
	t.Logf("llmgate memory after the crash inputs: VmHWM %d MiB, VmRSS %d MiB (ceiling %d MiB)", hwm>>20, rss>>20, rssCeiling>>20)
	if hwm > rssCeiling {
		t.Errorf("peak RSS %d MiB, want under %d MiB", hwm>>20, rssCeiling>>20)
	}
}

// procMemory reads the peak and current resident set size of process pid, in bytes.
func procMemory(t *testing.T, pid int) (hwm, rss int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, _ := strings.Cut(line, ":")
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(value), "%d kB", &kb); err != nil {
			continue
		}
		switch name {
		case "VmHWM":
			hwm = kb << 10
		case "VmRSS":
			rss = kb << 10
		}
	}
	if hwm == 0 || rss == 0 {
		t.Fatalf("no VmHWM/VmRSS in /proc/%d/status", pid)
	}
	return hwm, rss
}
