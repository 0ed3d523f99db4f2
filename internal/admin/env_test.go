package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/mototest"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mototest.Stop()
	dynamotest.Stop()
	os.Exit(code)
}

const master = "sk-master-1234"

// env is an admin handler over a fresh DynamoDB Local table, with a clock tests can move.
type env struct {
	t     testing.TB
	h     http.Handler
	st    *store.Store
	authn *auth.Authenticator
	o     admin.Options
	mu    sync.Mutex
	now   time.Time
}

type envOption func(*config.Config, *admin.Options)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	cfg, _, err := config.Parse(nil, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.GeneralSettings.MasterKey = master
	cfg.GeneralSettings.StoreVirtualKeys = true
	cfg.GeneralSettings.StoreModelInDB = true
	cfg.ModelList = []config.Deployment{{ModelName: "gpt-4o", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o"}}}
	e := &env{t: t, st: store.NewWithClient(dynamotest.NewTable(t)), now: time.Now().UTC()}
	o := admin.Options{Config: cfg, Store: e.st, Now: e.clock}
	for _, opt := range opts {
		opt(cfg, &o)
	}
	e.o = o
	e.h, e.authn = e.instance()
	return e
}

// instance builds an admin handler on the env's table with its own auth cache, as one warm
// Lambda instance.
func (e *env) instance() (http.Handler, *auth.Authenticator) {
	ao := auth.OptionsFromConfig(e.o.Config, e.st, nil)
	ao.Now = e.clock
	authn := auth.New(ao)
	o := e.o
	o.Auth = authn
	return admin.New(o), authn
}

// another is a second instance of the handler on the same table (its own auth cache).
func (e *env) another() *env {
	o := &env{t: e.t, st: e.st, o: e.o, now: e.clock()}
	o.h, o.authn = o.instance()
	return o
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// call sends a request with the key as a Bearer token and returns status and decoded body.
func (e *env) call(method, path, key string, body any) (int, map[string]any) {
	e.t.Helper()
	code, raw := e.raw(method, path, key, body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
	}
	return code, m
}

func (e *env) raw(method, path, key string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// ok calls and fails the test unless the answer is 200.
func (e *env) ok(method, path, key string, body any) map[string]any {
	e.t.Helper()
	code, m := e.call(method, path, key, body)
	if code != http.StatusOK {
		e.t.Fatalf("%s %s = %d %v, want 200", method, path, code, m)
	}
	return m
}

// generate makes a key with the master key and returns the raw key.
func (e *env) generate(body map[string]any) string {
	e.t.Helper()
	m := e.ok("POST", "/key/generate", master, body)
	return m["key"].(string)
}

// authStatus authenticates key (GET /key/info for itself).
func (e *env) authStatus(key string) (int, map[string]any) {
	e.t.Helper()
	return e.call("GET", "/key/info", key, nil)
}

// errOf returns the error object of an OpenAI-format error body.
func errOf(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("body has no error object: %v", m)
	}
	return e
}

// wantError checks status, type and message of an error answer.
func wantError(t *testing.T, code int, m map[string]any, wantCode int, wantType, wantMsg string) {
	t.Helper()
	e := errOf(t, m)
	if code != wantCode || e["type"] != wantType || (wantMsg != "" && e["message"] != wantMsg) {
		t.Errorf("got %d %v %q\nwant %d %s %q", code, e["type"], e["message"], wantCode, wantType, wantMsg)
	}
	if e["code"] != strconv.Itoa(wantCode) {
		t.Errorf("code field = %v, want %q", e["code"], strconv.Itoa(wantCode))
	}
}

// hasFields fails unless m has every field (with any value, null included).
func hasFields(t *testing.T, what string, m map[string]any, fields ...string) {
	t.Helper()
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			t.Errorf("%s: missing field %q", what, f)
		}
	}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func decodeBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON: %s", b)
	}
	return m
}

type httpRequest = http.Request

func newRequest(method, path string) *http.Request { return httptest.NewRequest(method, path, nil) }

func jsonArrayLen(t *testing.T, b []byte, n int) bool {
	t.Helper()
	var xs []any
	if err := json.Unmarshal(b, &xs); err != nil {
		t.Fatalf("not a JSON array: %s", b)
	}
	return len(xs) == n
}
