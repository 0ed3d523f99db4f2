package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// litellmConfig is the part of LiteLLM's proxy_server_config.yaml its end-to-end tests
// (BerriAI/litellm tests/test_*.py) rely on, with the fake OpenAI upstream at %[1]s in place
// of its fake endpoint server.
const litellmConfig = `
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: openai/gpt-3.5-turbo
      api_base: %[1]s
      api_key: ` + upstreamKey + `
    model_info:
      id: gpt35-1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_base: %[1]s
      api_key: ` + upstreamKey + `
    model_info:
      id: fake-1
  - model_name: gpt-instruct
    litellm_params:
      model: openai/gpt-instruct
      api_base: %[1]s
      api_key: ` + upstreamKey + `
    model_info:
      id: instruct-1
      access_groups: ["beta-models"]
  - model_name: badly-configured-openai-endpoint
    litellm_params:
      model: openai/broken
      api_base: %[2]s
      api_key: ` + upstreamKey + `
  - model_name: mock-primary
    litellm_params:
      model: mock/primary
      timeout: 1
    model_info:
      id: mock-primary-1
  - model_name: mock-fallback
    litellm_params:
      model: mock/fallback
    model_info:
      id: mock-fallback-1
router_settings:
  num_retries: 3
general_settings:
  master_key: ` + masterKey + `
`

// TestLiteLLM runs scenarios of LiteLLM Proxy's own end-to-end tests against one llmgate.
func TestLiteLLM(t *testing.T) {
	t.Parallel()
	up := fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(up.Close)
	broken := fakeopenai.Start(fakeopenai.Options{Fault: func(int64) fakeopenai.Fault { return fakeopenai.ServerError }})
	t.Cleanup(broken.Close)
	s := start(t, fmt.Sprintf(litellmConfig, up.BaseURL, broken.BaseURL))
	key := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{}})["key"].(string)

	// test_fallbacks.py: per-request retries, timeouts and fallbacks, and the headers that
	// report them. The mock_testing_* flags work for any key on mock deployments, and on real
	// ones only for a proxy admin.
	t.Run("routing", func(t *testing.T) {
		withFallback := s.admin(t, "POST", "/key/generate", map[string]any{
			"models": []string{"gpt-3.5-turbo", "gpt-instruct", "mock-primary", "mock-fallback"}})["key"].(string)
		without := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{"gpt-3.5-turbo", "mock-primary"}})["key"].(string)

		// test_chat_completion_client_fallbacks (has_access True and False), in both forms.
		for _, fb := range []any{[]any{"mock-fallback"}, []any{map[string]any{"model": "mock-fallback", "messages": []any{}}}} {
			code, h, b := chatAs(t, s, withFallback, map[string]any{"model": "mock-primary", "mock_testing_fallbacks": true, "fallbacks": fb})
			if code != http.StatusOK {
				t.Fatalf("fallbacks %v: %d %s", fb, code, b)
			}
			wantHeaders(t, "client fallback", h, "X-Litellm-Attempted-Fallbacks", "1", "X-Litellm-Model-Id", "mock-fallback-1")
		}
		code, _, b := chatAs(t, s, without, map[string]any{"model": "mock-primary", "mock_testing_fallbacks": true, "fallbacks": []any{"mock-fallback"}})
		if code != http.StatusUnauthorized {
			t.Errorf("fallback the key may not use: %d %s, want 401", code, b)
		}
		// On a real deployment the flag is a proxy admin's.
		code, _, _ = chatAs(t, s, withFallback, map[string]any{"model": "gpt-3.5-turbo", "mock_testing_fallbacks": true, "fallbacks": []any{"gpt-instruct"}})
		if code != http.StatusForbidden {
			t.Errorf("a key's mock_testing_fallbacks on a real deployment: %d, want 403", code)
		}
		code, h, b := chatAs(t, s, masterKey, map[string]any{"model": "gpt-3.5-turbo", "mock_testing_fallbacks": true, "fallbacks": []any{"gpt-instruct"}})
		if code != http.StatusOK {
			t.Fatalf("master key's mock_testing_fallbacks: %d %s", code, b)
		}
		wantHeaders(t, "master fallback", h, "X-Litellm-Attempted-Fallbacks", "1", "X-Litellm-Model-Id", "instruct-1")

		// test_chat_completion_with_fallbacks: a failing upstream falls back to the request's fallback.
		code, h, b = chatAs(t, s, masterKey, map[string]any{"model": "badly-configured-openai-endpoint", "num_retries": 0, "fallbacks": []any{"gpt-3.5-turbo"}})
		if code != http.StatusOK {
			t.Fatalf("fallback from a failing upstream: %d %s", code, b)
		}
		wantHeaders(t, "upstream fallback", h, "X-Litellm-Attempted-Fallbacks", "1", "X-Litellm-Model-Id", "gpt35-1")

		// num_retries: 0 makes one attempt only.
		before := broken.Requests()
		code, h, _ = chatAs(t, s, masterKey, map[string]any{"model": "badly-configured-openai-endpoint", "num_retries": 0})
		if n := broken.Requests() - before; code != http.StatusInternalServerError || n != 1 {
			t.Errorf("num_retries 0: %d after %d upstream attempts, want 500 after 1", code, n)
		}
		wantHeaders(t, "num_retries 0", h, "X-Litellm-Attempted-Retries", "0", "X-Litellm-Max-Retries", "0")

		// test_chat_completion_with_retries: the first attempt is rate limited, the retry answers.
		code, h, b = chatAs(t, s, withFallback, map[string]any{"model": "mock-primary", "mock_testing_rate_limit_error": true})
		if code != http.StatusOK {
			t.Fatalf("mock_testing_rate_limit_error: %d %s", code, b)
		}
		wantHeaders(t, "retries", h, "X-Litellm-Attempted-Retries", "1", "X-Litellm-Max-Retries", "3")

		// test_chat_completion_with_timeout(_from_request): the deployment's timeout, or the
		// request header's, is the one used and reported.
		code, h, _ = chatAs(t, s, withFallback, map[string]any{"model": "mock-primary", "num_retries": 0, "mock_timeout": true})
		if code != http.StatusRequestTimeout {
			t.Errorf("mock_timeout: %d, want 408", code)
		}
		wantHeaders(t, "deployment timeout", h, "X-Litellm-Timeout", "1.0")
		code, h, _ = chatAs(t, s, withFallback, map[string]any{"model": "mock-primary", "num_retries": 0, "mock_timeout": true},
			"x-litellm-timeout", "0.001")
		if code != http.StatusRequestTimeout {
			t.Errorf("mock_timeout with x-litellm-timeout: %d, want 408", code)
		}
		wantHeaders(t, "request timeout", h, "X-Litellm-Timeout", "0.001")
	})

	// test_models.py: /model/info and /v1/models show what the key may use, one deployment by
	// ?litellm_model_id=, and only model access groups by ?only_model_access_groups=True.
	t.Run("models", func(t *testing.T) {
		instruct := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{"gpt-instruct"}})["key"].(string)
		get := func(key, path string) map[string]any {
			t.Helper()
			resp, b := s.request(t, key, "GET", path, nil)
			var m map[string]any
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &m) != nil {
				t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
			}
			return m
		}
		all := get(instruct, "/model/info")["data"].([]any)
		if len(all) != 1 || all[0].(map[string]any)["model_name"] != "gpt-instruct" {
			t.Fatalf("/model/info for a gpt-instruct key: %v", all)
		}
		one := get(masterKey, "/model/info?litellm_model_id=instruct-1")["data"].([]any)
		if len(one) != 1 || !reflect.DeepEqual(one[0], all[0]) {
			t.Errorf("/model/info?litellm_model_id=instruct-1 = %v, want %v", one, all[0])
		}
		for _, c := range []struct {
			key, path string
			want      []string
		}{
			{key, "/v1/models?only_model_access_groups=True", []string{"beta-models"}},
			{masterKey, "/v1/models?litellm_model_id=gpt35-1", []string{"gpt-3.5-turbo"}},
			{instruct, "/v1/models", []string{"gpt-instruct"}},
			{instruct, "/v1/models?litellm_model_id=gpt35-1", []string{}},
		} {
			got := []string{}
			for _, m := range get(c.key, c.path)["data"].([]any) {
				got = append(got, m.(map[string]any)["id"].(string))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s = %v, want %v", c.path, got, c.want)
			}
		}
		// test_get_personal_models_for_user: /model_group/info lists the groups the key may use.
		groups := get(instruct, "/model_group/info")["data"].([]any)
		if len(groups) != 1 || groups[0].(map[string]any)["model_group"] != "gpt-instruct" {
			t.Errorf("/model_group/info for a gpt-instruct key: %v", groups)
		}
		if v2 := get(instruct, "/v2/model/info")["data"].([]any); !reflect.DeepEqual(v2, all) {
			t.Errorf("/v2/model/info = %v, want /model/info's %v", v2, all)
		}
		withoutGroups := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{"gpt-3.5-turbo"}})["key"].(string)
		if d := get(withoutGroups, "/v1/models?only_model_access_groups=True")["data"].([]any); len(d) != 0 {
			t.Errorf("access groups of a key without any: %v", d)
		}
	})

	// test_openai_endpoints.py test_batch_chat_completions: model "a,b" answers a list, one
	// chat completion per model, each charged to the key; a model the key may not use answers
	// its error in its place.
	t.Run("batch completion", func(t *testing.T) {
		code, _, b := chatAs(t, s, masterKey, map[string]any{"model": "gpt-3.5-turbo,fake-openai-endpoint"})
		var list []map[string]any
		if code != http.StatusOK || json.Unmarshal(b, &list) != nil || len(list) != 2 {
			t.Fatalf("batch: %d %s, want a list of 2", code, b)
		}
		for i, want := range []string{"gpt-3.5-turbo", "fake"} {
			if list[i]["object"] != "chat.completion" || list[i]["model"] != want {
				t.Errorf("batch answer %d: %v, want a chat completion of %s", i, list[i], want)
			}
		}
		one := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{"gpt-3.5-turbo"}})["key"].(string)
		code, _, b = chatAs(t, s, one, map[string]any{"model": "gpt-3.5-turbo, gpt-instruct"})
		if code != http.StatusOK || json.Unmarshal(b, &list) != nil || len(list) != 2 || list[0]["object"] != "chat.completion" || list[1]["error"] == nil {
			t.Fatalf("batch with a model the key may not use: %d %s", code, b)
		}
		info := s.admin(t, "GET", "/key/info?key="+one, nil)["info"].(map[string]any)
		if info["spend"].(float64) <= 0 {
			t.Errorf("key spend after a batch call: %v", info["spend"])
		}
	})

	// test_openai_endpoints.py test_chat_completion_azure_route (and test_e2e_model_access.py
	// on it): the Azure SDK's deployment routes, with the key's model access.
	t.Run("azure routes", func(t *testing.T) {
		one := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{"gpt-3.5-turbo"}})["key"].(string)
		for _, c := range []struct {
			path, key string
			body      map[string]any
			want      int
		}{
			{"/openai/deployments/gpt-3.5-turbo/chat/completions?api-version=2024-02-01", one,
				map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi"}}}, 200},
			{"/openai/deployments/gpt-3.5-turbo/completions", one, map[string]any{"prompt": "hi"}, 200},
			{"/openai/deployments/gpt-3.5-turbo/embeddings", one, map[string]any{"input": "hi"}, 200},
			{"/openai/deployments/gpt-instruct/chat/completions", one,
				map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi"}}}, 401},
		} {
			req, _ := http.NewRequest("POST", s.URL+c.path, bytes.NewReader(must(json.Marshal(c.body))))
			req.Header.Set("api-key", c.key) // as the Azure SDKs send it
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s: %d %s, want %d", c.path, resp.StatusCode, b, c.want)
			}
			if c.want == 401 && !bytes.Contains(b, []byte("key not allowed to access model")) {
				t.Errorf("%s: %s, want LiteLLM's model access error", c.path, b)
			}
		}
	})

	// /spend/tags (LiteLLM's UI and its tag-spend tests): spend and calls per request tag.
	t.Run("spend tags", func(t *testing.T) {
		for range 2 {
			if code, _, b := chatAs(t, s, key, map[string]any{"model": "gpt-3.5-turbo", "metadata": map[string]any{"tags": []string{"e2e-tag"}}}); code != 200 {
				t.Fatalf("tagged call: %d %s", code, b)
			}
		}
		resp, b := s.request(t, masterKey, "GET", "/spend/tags", nil)
		var rows []map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &rows) != nil {
			t.Fatalf("/spend/tags: %d %s", resp.StatusCode, b)
		}
		i := slices.IndexFunc(rows, func(r map[string]any) bool { return r["individual_request_tag"] == "e2e-tag" })
		if i < 0 || rows[i]["log_count"] != 2.0 || rows[i]["total_spend"].(float64) <= 0 {
			t.Errorf("/spend/tags = %s, want e2e-tag with 2 calls and their spend", b)
		}
		if resp, _ := s.request(t, key, "GET", "/spend/tags", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("/spend/tags as a plain key: %d, want 403", resp.StatusCode)
		}
	})

	// test_end_users.py and customer budgets: the request's "user" names a customer; its
	// tier's tpm_limit, its block and its budget bind calls of any key, the master key's too.
	t.Run("customers", func(t *testing.T) {
		s.admin(t, "POST", "/budget/new", map[string]any{"budget_id": "free-tier", "tpm_limit": 2})
		// test_enduser_tpm_limits_non_master_key and _with_master_key.
		for i, caller := range []string{key, masterKey} {
			endUser := fmt.Sprintf("tpm-user-%d", i)
			s.admin(t, "POST", "/end_user/new", map[string]any{"user_id": endUser, "budget_id": "free-tier"})
			passed := 0
			for range 10 {
				if code, _, _ := chatAs(t, s, caller, map[string]any{"model": "fake-openai-endpoint", "user": endUser}); code == http.StatusOK {
					passed++
				}
			}
			if passed >= 5 {
				t.Errorf("caller %d: %d of 10 calls passed an end user's tpm_limit of 2, want fewer than 5", i, passed)
			}
		}

		s.admin(t, "POST", "/customer/block", map[string]any{"user_ids": []string{"blocked-user"}})
		if code, _, b := chatAs(t, s, key, map[string]any{"model": "gpt-3.5-turbo", "user": "blocked-user"}); code != http.StatusUnauthorized {
			t.Errorf("blocked customer: %d %s, want 401", code, b)
		}
		if code, _, b := chatAs(t, s, key, map[string]any{"model": "gpt-3.5-turbo", "user": "nobody-we-know"}); code != http.StatusOK {
			t.Errorf("unknown customer: %d %s, want 200", code, b)
		}

		// Concurrent calls of two keys never spend past the customer's budget: it is
		// reserved, not checked after the fact.
		const budget = 0.001
		s.admin(t, "POST", "/customer/new", map[string]any{"user_id": "capped", "max_budget": budget})
		other := s.admin(t, "POST", "/key/generate", map[string]any{})["key"].(string)
		var wg sync.WaitGroup
		codes := make([]int, 16)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _, _ = chatAs(t, s, []string{key, other}[i%2], map[string]any{"model": "gpt-3.5-turbo", "user": "capped", "max_tokens": 100})
			}()
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, c := range codes {
			switch c {
			case http.StatusOK:
				ok++
			case http.StatusBadRequest:
				refused++
			default:
				t.Errorf("concurrent call answered %d", c)
			}
		}
		info := s.admin(t, "GET", "/customer/info?end_user_id=capped", nil)
		spend := info["spend"].(float64)
		if ok == 0 || refused == 0 || spend <= 0 || spend > budget {
			t.Errorf("%d admitted, %d refused, customer spend %v; want both, 0 < spend <= %v", ok, refused, spend, budget)
		}
		code, _, b := chatAs(t, s, masterKey, map[string]any{"model": "gpt-3.5-turbo", "user": "capped", "max_tokens": 1000})
		if e := errorOf(t, b); code != http.StatusBadRequest || e.Type != "budget_exceeded" || !strings.Contains(e.Message, "End User=capped") {
			t.Errorf("over the customer's budget (master key): %d %s, want 400 budget_exceeded naming the end user", code, b)
		}
	})

	// /global/spend/*: LiteLLM's spend summaries, from the daily rollups (the hours not
	// rolled yet are read from the logs, so calls made now count).
	t.Run("global spend", func(t *testing.T) {
		s.admin(t, "POST", "/team/new", map[string]any{"team_id": "spenders"})
		gen := s.admin(t, "POST", "/key/generate", map[string]any{"team_id": "spenders"})
		teamKey, hash := gen["key"].(string), gen["token"].(string)
		for range 2 {
			if code, _, b := chatAs(t, s, teamKey, map[string]any{"model": "gpt-3.5-turbo"}); code != http.StatusOK {
				t.Fatalf("call: %d %s", code, b)
			}
		}
		get := func(path string, out any) int {
			resp, b := s.request(t, masterKey, "GET", path, nil)
			if resp.StatusCode == http.StatusOK {
				if err := json.Unmarshal(b, out); err != nil {
					t.Fatalf("%s: %s", path, b)
				}
			}
			return resp.StatusCode
		}
		// A call settles after its answer is sent: wait until both calls' logs are written
		// and the key's spend, from its record, agrees with the spend from its logs.
		var keySpend float64
		eventually(t, 10*time.Second, func() string {
			keySpend = s.admin(t, "GET", "/key/info?key="+teamKey, nil)["info"].(map[string]any)["spend"].(float64)
			var logs, keys []map[string]any
			get("/spend/logs?summarize=false&api_key="+hash, &logs)
			get("/global/spend/keys?limit=200", &keys)
			if i := slices.IndexFunc(keys, func(k map[string]any) bool { return k["api_key"] == hash }); len(logs) != 2 || i < 0 || keys[i]["total_spend"] != keySpend || keySpend <= 0 {
				return fmt.Sprintf("%d logs; /global/spend/keys = %v, want %s at %v", len(logs), keys, hash, keySpend)
			}
			return ""
		})
		var report []map[string]any
		get("/global/spend/report?group_by=team", &report)
		found := false
		for _, day := range report {
			for _, row := range day["teams"].([]any) {
				found = found || row.(map[string]any)["team_name"] == "spenders" && row.(map[string]any)["total_spend"] == keySpend
			}
		}
		if !found {
			t.Errorf("/global/spend/report?group_by=team = %v, want team spenders at %v", report, keySpend)
		}
		var teams map[string]any
		get("/global/spend/teams", &teams)
		if !slices.Contains(teams["teams"].([]any), any("spenders")) {
			t.Errorf("/global/spend/teams = %v, want spenders", teams)
		}
		var models []map[string]any
		get("/global/spend/models?limit=200", &models)
		if !slices.ContainsFunc(models, func(m map[string]any) bool {
			return m["model"] == "gpt-3.5-turbo" && m["total_spend"].(float64) >= keySpend
		}) {
			t.Errorf("/global/spend/models = %v, want gpt-3.5-turbo", models)
		}
		for path, want := range map[string]int{
			"/global/spend/report?group_by=customer":                        http.StatusOK,
			"/global/spend/report?group_by=planet":                          http.StatusBadRequest,
			"/global/spend/keys?limit=0":                                    http.StatusBadRequest,
			"/global/spend/teams?start_date=2026-01-01&end_date=2026-06-01": http.StatusBadRequest,
		} {
			if code := get(path, new(any)); code != want {
				t.Errorf("%s: %d, want %d", path, code, want)
			}
		}
		if resp, _ := s.request(t, key, "GET", "/global/spend/keys", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("/global/spend/keys as a plain key: %d, want 403", resp.StatusCode)
		}
	})

	// test_spend_logs.py: the spend log of a call is found by the response's id.
	t.Run("spend log by response id", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			resp, b := s.request(t, key, "POST", "/chat/completions", map[string]any{
				"model": "gpt-3.5-turbo", "stream": stream, "messages": []any{map[string]any{"role": "user", "content": "hi"}},
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("stream=%v: %d %s", stream, resp.StatusCode, b)
			}
			id, callID := responseIDOf(t, b, stream), resp.Header.Get("X-Litellm-Call-Id")
			resp, b = s.request(t, masterKey, "GET", "/spend/logs?request_id="+id, nil)
			var logs []map[string]any
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &logs) != nil || len(logs) != 1 {
				t.Fatalf("stream=%v: /spend/logs?request_id=%s = %d %s, want one log", stream, id, resp.StatusCode, b)
			}
			if logs[0]["request_id"] != callID || logs[0]["model"] != "gpt-3.5-turbo" || logs[0]["spend"].(float64) <= 0 {
				t.Errorf("stream=%v: log %v", stream, logs[0])
			}
		}
	})
}

// chatAs calls /chat/completions as key with the body fields and extra headers, and returns
// the answer's status, headers and body.
func chatAs(t *testing.T, s *server, key string, fields map[string]any, header ...string) (int, http.Header, []byte) {
	t.Helper()
	body := map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Who was Alexander?"}}}
	maps.Copy(body, fields)
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.URL+"/chat/completions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// wantHeaders fails the test unless h has each name: value pair.
func wantHeaders(t *testing.T, what string, h http.Header, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if got := h.Get(pairs[i]); got != pairs[i+1] {
			t.Errorf("%s: %s = %q, want %q", what, pairs[i], got, pairs[i+1])
		}
	}
}

// responseIDOf is the "id" of a chat completion, or of a stream's first chunk.
func responseIDOf(t *testing.T, body []byte, stream bool) string {
	t.Helper()
	if stream {
		const prefix = "data: "
		end := len(body)
		for i := range body {
			if body[i] == '\n' {
				end = i
				break
			}
		}
		body = body[len(prefix):end]
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		t.Fatalf("no response id in %s", body)
	}
	return v.ID
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
