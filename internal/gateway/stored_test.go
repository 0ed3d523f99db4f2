package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/fakeopenai"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider/registry"
	"github.com/llmgate/llmgate/internal/router"
)

// ownerAuth lets in keys that own responses: sk-a1 and sk-a2 of team A, sk-b of team B,
// sk-solo without a team, and sk-admin, a proxy admin.
type ownerAuth struct{}

type ownerCaller struct {
	key, team string
	admin     bool
}

func (ownerAuth) Authenticate(_ context.Context, r *http.Request) (llmcall.Caller, error) {
	switch key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); key {
	case "sk-a1", "sk-a2":
		return ownerCaller{key: "hash-" + key, team: "team-a"}, nil
	case "sk-b":
		return ownerCaller{key: "hash-b", team: "team-b"}, nil
	case "sk-solo":
		return ownerCaller{key: "hash-solo"}, nil
	case "sk-admin":
		return ownerCaller{admin: true}, nil
	}
	return nil, openai.Errorf(401, openai.TypeAuth, "Authentication Error, invalid key")
}

func (c ownerCaller) ResolveModel(m string) (string, error) { return m, nil }
func (c ownerCaller) Allowed(string) bool                   { return true }
func (c ownerCaller) MayRoute(string) bool                  { return true }
func (c ownerCaller) IsProxyAdmin() bool                    { return c.admin }
func (c ownerCaller) Owner() (key, team string)             { return c.key, c.team }

// storedHarness serves "gpt-resp" from two OpenAI deployments (two fake upstreams, each
// keeping its own responses) and "gpt-chat" by translation to chat.
type storedHarness struct {
	srv  *httptest.Server
	a, b *fakeopenai.Server
}

func newStoredHarness(t *testing.T) *storedHarness {
	t.Helper()
	h := &storedHarness{a: fakeopenai.Start(fakeopenai.Options{Chunks: 3}), b: fakeopenai.Start(fakeopenai.Options{Chunks: 3})}
	t.Cleanup(h.a.Close)
	t.Cleanup(h.b.Close)
	price := config.ModelInfo{InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(2e-06)}
	dep := func(group, model, base, id string) config.Deployment {
		mi := price
		mi.ID = id
		return config.Deployment{ModelName: group, LiteLLMParams: config.LiteLLMParams{Model: model, APIBase: base, APIKey: "sk-upstream"}, ModelInfo: mi}
	}
	cfg := &config.Config{ModelList: []config.Deployment{
		dep("gpt-resp", "openai/gpt-5", h.a.BaseURL, "resp-a"),
		dep("gpt-resp", "openai/gpt-5", h.b.BaseURL, "resp-b"),
		dep("gpt-chat", "groq/llama", h.a.BaseURL, "chat-1"),
	}, RouterSettings: config.RouterSettings{NumRetries: ptr(0)}}
	cfg.GeneralSettings.MasterKey = "sk-master"
	rtr, err := router.New(router.Options{Config: cfg, Providers: registry.New(nil)})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(Options{Config: cfg, Router: rtr, Authenticator: ownerAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(gw)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *storedHarness) do(t *testing.T, method, path, key, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	return resp, got
}

// create makes a stored response with key and returns its id.
func (h *storedHarness) create(t *testing.T, key, body string) string {
	t.Helper()
	resp, got := h.do(t, "POST", "/v1/responses", key, body)
	id, _ := got["id"].(string)
	if resp.StatusCode != 200 || !strings.HasPrefix(id, "resp_") {
		t.Fatalf("create: %d %v", resp.StatusCode, got)
	}
	return id
}

func errMessage(got map[string]any) string {
	e, _ := got["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestStoredResponses_GetInputItemsDeleteOnTheDeploymentThatMadeIt(t *testing.T) {
	h := newStoredHarness(t)
	id := h.create(t, "sk-a1", `{"model":"gpt-resp","input":[{"role":"user","content":"one"},{"role":"user","content":"two"}]}`)
	maker, other := h.a, h.b
	if h.b.Requests() > 0 {
		maker, other = h.b, h.a
	}
	upstreamID := "" // what the maker knows it by: never shown to the client
	for range 6 {
		resp, got := h.do(t, "GET", "/v1/responses/"+id, "sk-a1", "")
		if resp.StatusCode != 200 || got["id"] != id || outputText(got) != fakeopenai.ResponsesAnswer {
			t.Fatalf("GET: %d %v", resp.StatusCode, got)
		}
		last := maker.Last()
		if last.Method != "GET" || !strings.HasPrefix(last.URL, "/v1/responses/resp_") || strings.Contains(last.URL, id) {
			t.Fatalf("the maker saw %s %s, want a GET of its own id", last.Method, last.URL)
		}
		upstreamID = strings.TrimPrefix(last.URL, "/v1/responses/")
	}
	if other.Requests() != 0 {
		t.Errorf("the other deployment got %d requests, want none", other.Requests())
	}
	if strings.Contains(id, upstreamID) {
		t.Errorf("the sealed id %q shows the upstream's %q", id, upstreamID)
	}

	resp, got := h.do(t, "GET", "/v1/responses/"+id+"/input_items?limit=1&order=asc", "sk-a1", "")
	data, _ := got["data"].([]any)
	if resp.StatusCode != 200 || got["object"] != "list" || len(data) != 1 || got["has_more"] != true {
		t.Fatalf("input_items: %d %v", resp.StatusCode, got)
	}
	if u := maker.Last().URL; u != "/v1/responses/"+upstreamID+"/input_items?limit=1&order=asc" {
		t.Errorf("input_items reached the upstream as %s", u)
	}

	resp, got = h.do(t, "DELETE", "/v1/responses/"+id, "sk-a1", "")
	if resp.StatusCode != 200 || got["id"] != id || got["deleted"] != true {
		t.Fatalf("DELETE: %d %v", resp.StatusCode, got)
	}
	resp, got = h.do(t, "GET", "/responses/"+id, "sk-a1", "")
	if resp.StatusCode != 404 || errMessage(got) != "Response with id '"+id+"' not found." || strings.Contains(errMessage(got), upstreamID) {
		t.Errorf("GET after DELETE: %d %v", resp.StatusCode, got)
	}
}

func TestStoredResponses_OnlyTheKeyOrItsTeamMayUseAResponse(t *testing.T) {
	h := newStoredHarness(t)
	id := h.create(t, "sk-a1", `{"model":"gpt-resp","input":"hi"}`)
	solo := h.create(t, "sk-solo", `{"model":"gpt-resp","input":"hi"}`)
	for _, tc := range []struct {
		key, id string
		want    int
	}{
		{"sk-a1", id, 200},
		{"sk-a2", id, 200}, // same team
		{"sk-admin", id, 200},
		{"sk-b", id, 404}, // another team
		{"sk-solo", id, 404},
		{"sk-solo", solo, 200},
		{"sk-a1", solo, 404}, // a teamless key's responses are its own
		{"sk-nobody", id, 401},
	} {
		for _, path := range []string{"/v1/responses/" + tc.id, "/v1/responses/" + tc.id + "/input_items"} {
			if resp, got := h.do(t, "GET", path, tc.key, ""); resp.StatusCode != tc.want {
				t.Errorf("%s GET %s: %d %v, want %d", tc.key, path, resp.StatusCode, got, tc.want)
			}
		}
		if tc.want != 200 {
			if resp, _ := h.do(t, "DELETE", "/v1/responses/"+tc.id, tc.key, ""); resp.StatusCode != tc.want {
				t.Errorf("%s DELETE: %d, want %d", tc.key, resp.StatusCode, tc.want)
			}
			if resp, _ := h.do(t, "POST", "/v1/responses/"+tc.id+"/cancel", tc.key, ""); resp.StatusCode != tc.want {
				t.Errorf("%s cancel: %d, want %d", tc.key, resp.StatusCode, tc.want)
			}
		}
	}
	// Nothing another tenant tried deleted it.
	if resp, _ := h.do(t, "GET", "/v1/responses/"+id, "sk-a1", ""); resp.StatusCode != 200 {
		t.Errorf("GET by its owner after others' DELETEs: %d", resp.StatusCode)
	}
	tampered := []byte(id)
	tampered[len(tampered)-3] ^= 1
	for _, bad := range []string{string(tampered), "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "nope"} {
		if resp, got := h.do(t, "GET", "/v1/responses/"+bad, "sk-admin", ""); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d %v, want 404", bad, resp.StatusCode, got)
		}
	}
}

func TestStoredResponses_CancelABackgroundResponseOnTheDeploymentThatMadeIt(t *testing.T) {
	h := newStoredHarness(t)
	id := h.create(t, "sk-a1", `{"model":"gpt-resp","input":"a long task","background":true}`)
	maker, other := h.a, h.b
	if h.b.Requests() > 0 {
		maker, other = h.b, h.a
	}
	// Another team's key cannot cancel it, and its attempt reaches no upstream.
	if resp, got := h.do(t, "POST", "/v1/responses/"+id+"/cancel", "sk-b", ""); resp.StatusCode != 404 {
		t.Errorf("cancel by another team: %d %v", resp.StatusCode, got)
	}
	before := maker.Requests()
	resp, got := h.do(t, "POST", "/v1/responses/"+id+"/cancel", "sk-a2", "") // same team
	if resp.StatusCode != 200 || got["id"] != id || got["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", resp.StatusCode, got)
	}
	if last := maker.Last(); maker.Requests() != before+1 || last.Method != "POST" ||
		!strings.HasPrefix(last.URL, "/v1/responses/resp_") || !strings.HasSuffix(last.URL, "/cancel") || strings.Contains(last.URL, id) {
		t.Errorf("the maker saw %s %s, want a POST of its own id's /cancel", last.Method, last.URL)
	}
	if other.Requests() != 0 {
		t.Errorf("the other deployment got %d requests, want none", other.Requests())
	}
	if resp, got := h.do(t, "GET", "/v1/responses/"+id, "sk-a1", ""); resp.StatusCode != 200 || got["status"] != "cancelled" {
		t.Errorf("GET after cancel: %d %v", resp.StatusCode, got)
	}
	// Only background responses can be cancelled: the upstream's 400 reaches the client.
	fg := h.create(t, "sk-a1", `{"model":"gpt-resp","input":"hi"}`)
	if resp, got := h.do(t, "POST", "/v1/responses/"+fg+"/cancel", "sk-a1", ""); resp.StatusCode != 400 || !strings.Contains(errMessage(got), "background=true") {
		t.Errorf("cancel of a foreground response: %d %v", resp.StatusCode, got)
	}
}

func TestStoredResponses_PreviousResponseIDGoesToTheDeploymentThatMadeIt(t *testing.T) {
	h := newStoredHarness(t)
	id := h.create(t, "sk-a1", `{"model":"gpt-resp","input":"hi"}`)
	// Either deployment of the group would be picked; only the maker knows the response
	// (the other answers 400 "Previous response ... not found").
	for i := range 8 {
		key := []string{"sk-a1", "sk-a2"}[i%2]
		resp, got := h.do(t, "POST", "/v1/responses", key, `{"model":"gpt-resp","input":"more","previous_response_id":"`+id+`"}`)
		if resp.StatusCode != 200 || got["previous_response_id"] != id {
			t.Fatalf("continuation %d: %d %v", i, resp.StatusCode, got)
		}
	}
	if h.a.Requests() > 0 && h.b.Requests() > 0 {
		t.Errorf("continuations reached both deployments (a %d, b %d)", h.a.Requests(), h.b.Requests())
	}
	for _, tc := range []struct{ key, prev, want string }{
		{"sk-b", id, "not found"},
		{"sk-a1", "resp_upstream_own_id", "not found"},
	} {
		resp, got := h.do(t, "POST", "/v1/responses", tc.key, `{"model":"gpt-resp","input":"more","previous_response_id":"`+tc.prev+`"}`)
		e, _ := got["error"].(map[string]any)
		if resp.StatusCode != 400 || e["param"] != "previous_response_id" || !strings.Contains(errMessage(got), tc.want) {
			t.Errorf("%s continuing %s: %d %v", tc.key, tc.prev, resp.StatusCode, got)
		}
	}
	resp, got := h.do(t, "POST", "/v1/responses", "sk-a1", `{"model":"gpt-chat","input":"more","previous_response_id":"`+id+`"}`)
	if resp.StatusCode != 400 || !strings.Contains(errMessage(got), "another model") {
		t.Errorf("continuing on another model: %d %v", resp.StatusCode, got)
	}
}

func TestStoredResponses_StreamedIDsAreSealedAlike(t *testing.T) {
	h := newStoredHarness(t)
	req, _ := http.NewRequest("POST", h.srv.URL+"/v1/responses", strings.NewReader(`{"model":"gpt-resp","input":"hi","stream":true}`))
	req.Header.Set("Authorization", "Bearer sk-a1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := namedEvents(t, resp.Body)
	var ids []string
	for _, e := range evs {
		if r, ok := e.data["response"].(map[string]any); ok {
			ids = append(ids, r["id"].(string))
		}
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[0] != ids[2] {
		t.Fatalf("response ids across events %v, want the same sealed id thrice", ids)
	}
	if r, got := h.do(t, "GET", "/v1/responses/"+ids[0], "sk-a1", ""); r.StatusCode != 200 || got["id"] != ids[0] || got["status"] != "completed" {
		t.Errorf("GET of the streamed response: %d %v", r.StatusCode, got)
	}
}

func TestStoredResponses_TranslatedDeploymentsKeepNoneAndSaySo(t *testing.T) {
	h := newStoredHarness(t)
	id := h.create(t, "sk-a1", `{"model":"gpt-chat","input":"hi"}`)
	for _, m := range []string{"GET /v1/responses/" + id, "DELETE /v1/responses/" + id, "POST /v1/responses/" + id + "/cancel"} {
		method, path, _ := strings.Cut(m, " ")
		resp, got := h.do(t, method, path, "sk-a1", "")
		if resp.StatusCode != 400 || !strings.Contains(errMessage(got), "translates the Responses API to chat") {
			t.Errorf("%s of a translated response: %d %v", m, resp.StatusCode, got)
		}
	}
	resp, got := h.do(t, "POST", "/v1/responses", "sk-a1", `{"model":"gpt-chat","input":"more","previous_response_id":"`+id+`"}`)
	if resp.StatusCode != 400 || !strings.Contains(errMessage(got), "previous_response_id is not supported for this model") {
		t.Errorf("continuing a translated response: %d %v", resp.StatusCode, got)
	}
}
