package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/mototest"
	"github.com/llmgate/llmgate/internal/store"
)

func TestKeyGenerate_ResponseHasLiteLLMFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.ok("POST", "/key/generate", master, map[string]any{
		"key_alias": "svc", "models": []string{"gpt-4o"}, "max_budget": 10, "budget_duration": "30d",
		"duration": "1h", "metadata": map[string]any{"app": "x"}, "tpm_limit": 1000, "rpm_limit": 10,
		"aliases": map[string]string{"gpt-3.5-turbo": "gpt-4o"}, "tags": []string{"a"},
	})
	hasFields(t, "/key/generate", m, "key", "key_name", "token", "token_id", "expires", "user_id", "team_id",
		"key_alias", "models", "max_budget", "spend", "budget_duration", "budget_reset_at", "metadata",
		"tpm_limit", "rpm_limit", "max_parallel_requests", "aliases", "blocked", "soft_budget",
		"created_at", "updated_at", "created_by", "updated_by", "auto_rotate", "rotation_interval",
		"rotation_count", "litellm_budget_table", "duration", "tags", "model_max_budget", "budget_limits")
	raw, _ := m["key"].(string)
	if !strings.HasPrefix(raw, "sk-") || len(raw) < 25 {
		t.Errorf("key = %q, want sk- and 22+ characters", raw)
	}
	if m["token"] != auth.Hash(raw) || m["token_id"] != auth.Hash(raw) {
		t.Errorf("token %v / token_id %v, want the SHA-256 of the key", m["token"], m["token_id"])
	}
	if m["key_name"] != auth.KeyName(raw) {
		t.Errorf("key_name = %v, want %s", m["key_name"], auth.KeyName(raw))
	}
	if m["max_budget"] != 10.0 || m["spend"] != 0.0 || m["key_alias"] != "svc" || m["duration"] != "1h" {
		t.Errorf("max_budget %v spend %v key_alias %v duration %v", m["max_budget"], m["spend"], m["key_alias"], m["duration"])
	}
	exp, err := time.Parse(time.RFC3339Nano, m["expires"].(string))
	if err != nil || exp.Sub(e.clock()) != time.Hour {
		t.Errorf("expires = %v (%v), want now + 1h", m["expires"], err)
	}
	if m["budget_reset_at"] == nil {
		t.Error("budget_reset_at is null with budget_duration set")
	}
}

// TestNewKeys_AreStoredInSecretsManager checks that with store_virtual_keys on, every route
// that creates a key stores its value under its alias (Secrets Manager is moto's).
func TestNewKeys_AreStoredInSecretsManager(t *testing.T) {
	sm := mototest.SecretsManager(t)
	vault := keyvault.New(sm, mototest.Prefix(t))
	e := newEnv(t, func(_ *config.Config, o *admin.Options) { o.Keys = keyvault.NewRekeyer(o.Store, vault) })
	for _, tt := range []struct{ path, alias string }{
		{"/key/generate", "generated"},
		{"/user/new", "new-user"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			m := e.ok("POST", tt.path, master, map[string]any{"key_alias": tt.alias})
			out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
				SecretId: aws.String(vault.Name(tt.alias)), VersionStage: aws.String(keyvault.StageCurrent),
			})
			if err != nil {
				t.Fatalf("secret of %s: %v", tt.alias, err)
			}
			if got := aws.ToString(out.SecretString); got == "" || got != m["key"] {
				t.Errorf("secret = %q, want the key the response carries (%v)", got, m["key"])
			}
		})
	}
}

func TestKeyGenerate_RejectsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name     string
		body     any
		code     int
		typ, msg string
	}{
		{"malformed JSON", `{"max_budget": `, 400, "invalid_request_error", ""},
		{"not an object", `[1,2]`, 400, "invalid_request_error", "Request body must be a JSON object"},
		{"wrong type", `{"models": "gpt-4o"}`, 400, "invalid_request_error", "Invalid value for 'models': expected a list of strings"},
		{"non-numeric budget", `{"max_budget": "ten"}`, 400, "invalid_request_error", `Invalid value for 'max_budget': expected a number, got "ten"`},
		{"negative budget", map[string]any{"max_budget": -1}, 400, "auth_error", "max_budget cannot be negative. Received: -1.0"},
		{"negative soft budget", map[string]any{"soft_budget": -0.5}, 400, "auth_error", "soft_budget cannot be negative. Received: -0.5"},
		{"negative rpm", map[string]any{"rpm_limit": -3}, 400, "auth_error", "rpm_limit cannot be negative. Received: -3"},
		{"bad duration", map[string]any{"duration": "30x"}, 400, "invalid_request_error", ""},
		{"bad budget_duration", map[string]any{"budget_duration": "soon"}, 400, "invalid_request_error", ""},
		{"custom key without sk-", map[string]any{"key": "abcd1234wxyz9876"}, 400, "auth_error",
			"Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: abcd****9876"},
		{"unknown team", map[string]any{"team_id": "nope"}, 400, "auth_error",
			"Team doesn't exist in db. Team=nope. Create team via `/team/new` call."},
		{"auto_rotate without interval", map[string]any{"auto_rotate": true, "key_alias": "a"}, 400, "auth_error", ""},
		{"auto_rotate without alias", map[string]any{"auto_rotate": true, "rotation_interval": "30d"}, 400, "auth_error", ""},
		{"bad model_max_budget", map[string]any{"model_max_budget": map[string]any{"gpt-4o": map[string]any{"budget_limit": -1}}}, 400, "invalid_request_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := e.call("POST", "/key/generate", master, tt.body)
			wantError(t, code, m, tt.code, tt.typ, tt.msg)
		})
	}
	if _, m := e.call("GET", "/key/list", master, nil); m["total_count"] != 0.0 {
		t.Errorf("rejected requests left %v keys", m["total_count"])
	}
}

func TestKeyGenerate_OversizedBodyIs413(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config, _ *admin.Options) { c.Settings.MaxRequestBodyBytes = 100 })
	code, m := e.call("POST", "/key/generate", master, map[string]any{"metadata": map[string]string{"x": strings.Repeat("a", 200)}})
	wantError(t, code, m, http.StatusRequestEntityTooLarge, "invalid_request_error", "")
}

func TestKeyGenerate_AutoRotateRefusedWithoutStoredKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config, _ *admin.Options) { c.GeneralSettings.StoreVirtualKeys = false })
	code, m := e.call("POST", "/key/generate", master, map[string]any{"auto_rotate": true, "rotation_interval": "30d", "key_alias": "a"})
	wantError(t, code, m, 400, "auth_error", "")
	if msg := errOf(t, m)["message"].(string); !strings.Contains(msg, "store_virtual_keys") {
		t.Errorf("message %q does not name store_virtual_keys", msg)
	}
}

func TestKeyGenerate_AutoRotateSchedulesRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.ok("POST", "/key/generate", master, map[string]any{"auto_rotate": true, "rotation_interval": "7d", "key_alias": "rot"})
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["key_rotation_at"]))
	if err != nil || at.Sub(e.clock()) != 7*24*time.Hour {
		t.Errorf("key_rotation_at = %v, want now + 7d", m["key_rotation_at"])
	}
}

func TestKeyGenerate_ConcurrentSameAliasExactlyOneSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 20
	codes := make([]int, n)
	bodies := make([]map[string]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = e.call("POST", "/key/generate", master, map[string]any{"key_alias": "same"})
		}()
	}
	wg.Wait()
	ok := 0
	for i, c := range codes {
		switch c {
		case 200:
			ok++
		case 400:
			wantError(t, c, bodies[i], 400, "bad_request_error",
				"Key with alias 'same' already exists. Unique key aliases across all keys are required.")
		default:
			t.Errorf("request %d: %d %v", i, c, bodies[i])
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d succeeded, want exactly 1", ok, n)
	}
}

func TestAuth_KeyLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.generate(map[string]any{"key_alias": "life"})
	if code, m := e.authStatus(key); code != 200 || m["key"] != auth.Hash(key) {
		t.Fatalf("fresh key: %d %v", code, m)
	}
	e.ok("POST", "/key/block", master, map[string]any{"key": key})
	code, m := e.authStatus(key)
	wantError(t, code, m, 401, "auth_error", "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.")
	e.ok("POST", "/key/unblock", master, map[string]any{"key": auth.Hash(key)})
	if code, _ := e.authStatus(key); code != 200 {
		t.Fatalf("unblocked key: %d", code)
	}
	if m := e.ok("POST", "/key/delete", master, map[string]any{"keys": []string{key}}); fmt.Sprint(m["deleted_keys"]) != fmt.Sprint([]any{key}) {
		t.Errorf("deleted_keys = %v", m["deleted_keys"])
	}
	code, m = e.authStatus(key)
	wantError(t, code, m, 401, "token_not_found_in_db", fmt.Sprintf(
		"Authentication Error, Invalid proxy server token passed. Received API Key = %s, Key Hash (Token) =%s. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
		auth.KeyName(key), auth.Hash(key)))
	if p := errOf(t, m)["param"]; p != "key" {
		t.Errorf("param = %v, want key", p)
	}
	code, m = e.call("POST", "/key/delete", master, map[string]any{"keys": []string{key}})
	wantError(t, code, m, 404, "auth_error", "No keys found")
}

func TestAuth_ErrorsBeforeTheStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name   string
		header map[string]string
		typ    string
		msg    string
	}{
		{"no key", nil, "auth_error", "Authentication Error, No api key passed in."},
		{"non sk- key", map[string]string{"Authorization": "Bearer abcd1234wxyz5678"}, "auth_error",
			"Authentication Error, LiteLLM Virtual Key expected. Received=abcd****5678, expected to start with 'sk-'."},
		{"malformed authorization", map[string]string{"Authorization": "Token sk-abc"}, "auth_error",
			"Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "/key/list", nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := newRecorder()
			e.h.ServeHTTP(rec, req)
			wantError(t, rec.Code, decodeBody(t, rec.Body.Bytes()), 401, tt.typ, tt.msg)
		})
	}
}

func TestAuth_ExpiredKeyFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.generate(map[string]any{"duration": "1h"})
	if code, _ := e.authStatus(key); code != 200 {
		t.Fatalf("key before expiry: %d", code)
	}
	e.advance(2 * time.Hour)
	code, m := e.authStatus(key)
	wantError(t, code, m, 401, "expired_key", "")
	if msg := errOf(t, m)["message"].(string); !strings.HasPrefix(msg, "Authentication Error - Expired Key. Key Expiry time ") {
		t.Errorf("message = %q", msg)
	}
}

func TestKeyRegenerate_GracePeriodKeepsOldKeyUntilItEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old := e.generate(map[string]any{"key_alias": "svc", "max_budget": 5})
	m := e.ok("POST", "/key/"+old+"/regenerate", master, map[string]any{"grace_period": "1h"})
	hasFields(t, "/key/regenerate", m, "key", "token_id", "key_name", "key_alias", "max_budget", "rotation_count", "last_rotation_at")
	nk := m["key"].(string)
	if nk == old || m["token_id"] != auth.Hash(nk) || m["key_name"] != auth.KeyName(nk) || m["rotation_count"] != 1.0 {
		t.Fatalf("regenerate answer: %v", m)
	}
	for name, k := range map[string]string{"old": old, "new": nk} {
		if code, info := e.authStatus(k); code != 200 || info["key"] != auth.Hash(nk) {
			t.Errorf("%s key during the grace period: %d %v", name, code, info)
		}
	}
	e.advance(time.Hour + time.Second)
	if code, _ := e.authStatus(old); code != 401 {
		t.Errorf("old key after the grace period: %d, want 401", code)
	}
	if code, _ := e.authStatus(nk); code != 200 {
		t.Errorf("new key after the grace period: %d, want 200", code)
	}
	// Without a grace period the old key stops at once.
	m = e.ok("POST", "/key/regenerate", master, map[string]any{"key": nk, "new_key": "sk-custom-new-value-123456"})
	if m["key"] != "sk-custom-new-value-123456" {
		t.Errorf("custom new_key not used: %v", m["key"])
	}
	if code, _ := e.authStatus(nk); code != 401 {
		t.Errorf("key regenerated without grace: %d, want 401", code)
	}
	code, body := e.call("POST", "/key/regenerate", master, map[string]any{})
	wantError(t, code, body, 400, "auth_error", "No key passed in.")
	code, body = e.call("POST", "/key/sk-nothing/regenerate", master, nil)
	wantError(t, code, body, 404, "auth_error", "Key sk-...hing not found.")
}

// TestKeyRegenerate_GracePeriodFromEnvironment: without grace_period the old key keeps
// working for LITELLM_KEY_ROTATION_GRACE_PERIOD, as after an auto-rotation. Not parallel:
// it sets the environment.
func TestKeyRegenerate_GracePeriodFromEnvironment(t *testing.T) {
	t.Setenv("LITELLM_KEY_ROTATION_GRACE_PERIOD", "1h")
	e := newEnv(t)
	old := e.generate(map[string]any{})
	nk := e.ok("POST", "/key/"+old+"/regenerate", master, nil)["key"].(string)
	if code, info := e.authStatus(old); code != 200 || info["key"] != auth.Hash(nk) {
		t.Errorf("old key within the environment's grace period: %d %v", code, info)
	}
	e.advance(time.Hour + time.Second)
	if code, _ := e.authStatus(old); code != 401 {
		t.Errorf("old key after the environment's grace period: %d, want 401", code)
	}
}

func TestKeyRegenerate_MasterKeyNeedsNewMasterKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, key := range []string{master, auth.Hash(master)} {
		code, body := e.call("POST", "/key/regenerate", master, map[string]any{"key": key})
		wantError(t, code, body, 400, "auth_error", "New master key is required.")
	}
	code, body := e.call("POST", "/key/"+master+"/regenerate", master, map[string]any{"new_master_key": "sk-new-master"})
	wantError(t, code, body, 400, "auth_error", "")
	if msg := errOf(t, body)["message"].(string); !strings.Contains(msg, "LITELLM_MASTER_KEY") {
		t.Errorf("message %q does not say where the master key is changed", msg)
	}
}

func TestKeyUpdate_ChangesFieldsAndKeepsHeadroom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.generate(map[string]any{"max_budget": 10, "duration": "1h", "key_alias": "a"})
	e.generate(map[string]any{"key_alias": "taken"})
	m := e.ok("POST", "/key/update", master, map[string]any{"key": key, "max_budget": 3, "duration": nil, "models": []string{"gpt-4o"}, "metadata": map[string]any{"k": "v"}})
	if m["key"] != key || m["max_budget"] != 3.0 || m["expires"] != nil || fmt.Sprint(m["models"]) != "[gpt-4o]" {
		t.Errorf("update answer: key %v max_budget %v expires %v models %v", m["key"], m["max_budget"], m["expires"], m["models"])
	}
	k, err := e.st.GetKey(t.Context(), auth.Hash(key))
	if err != nil {
		t.Fatal(err)
	}
	if k.Remaining == nil || *k.Remaining != 3 {
		t.Errorf("remaining = %v, want 3", k.Remaining)
	}
	if k.Metadata["k"] != "v" || aliasOf(k.KeyAlias) != "a" {
		t.Errorf("metadata %v alias %v", k.Metadata, aliasOf(k.KeyAlias))
	}
	code, body := e.call("POST", "/key/update", master, map[string]any{"key": key, "key_alias": "taken"})
	wantError(t, code, body, 400, "bad_request_error", "Key with alias 'taken' already exists. Unique key aliases across all keys are required.")
	code, body = e.call("POST", "/key/update", master, map[string]any{"key": "sk-missing"})
	wantError(t, code, body, 404, "auth_error", "")
	code, body = e.call("POST", "/key/update", master, map[string]any{"max_budget": 1})
	wantError(t, code, body, 400, "invalid_request_error", "key is required")
}

func aliasOf(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func TestKeyInfo_Shape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.generate(map[string]any{"key_alias": "info"})
	m := e.ok("GET", "/key/info?key="+key, master, nil)
	if m["key"] != key {
		t.Errorf("key = %v, want as passed", m["key"])
	}
	info := m["info"].(map[string]any)
	hasFields(t, "info", info, "key_name", "key_alias", "spend", "max_budget", "expires", "models", "aliases", "metadata", "user_id", "team_id", "blocked", "litellm_budget_table", "object_permission", "created_at")
	if _, ok := info["token"]; ok {
		t.Error("info includes token")
	}
	code, body := e.call("GET", "/key/info?key=sk-unknown", master, nil)
	wantError(t, code, body, 404, "not_found_error", "Key not found in database")
}

// keysOfTwoUsers generates n keys a second apart, alternately of users u0 and u1, and
// returns their hashes, oldest first.
func (e *env) keysOfTwoUsers(n int) []string {
	e.t.Helper()
	var hashes []string
	for i := range n {
		e.advance(time.Second)
		hashes = append(hashes, auth.Hash(e.generate(map[string]any{"user_id": fmt.Sprintf("u%d", i%2)})))
	}
	return hashes
}

func TestKeyList_PagesAndFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hashes := e.keysOfTwoUsers(5)
	m := e.ok("GET", "/key/list?page=1&size=2", master, nil)
	if m["total_count"] != 5.0 || m["total_pages"] != 3.0 || m["current_page"] != 1.0 || fmt.Sprint(m["keys"]) != fmt.Sprint([]any{hashes[4], hashes[3]}) {
		t.Errorf("page 1: %v", m)
	}
	m = e.ok("GET", "/key/list?user_id=u0&sort_order=asc&return_full_object=true", master, nil)
	keys := m["keys"].([]any)
	if m["total_count"] != 3.0 || len(keys) != 3 || keys[0].(map[string]any)["token"] != hashes[0] {
		t.Errorf("u0 keys: %v", m)
	}
	code, body := e.call("GET", "/key/list?size=500", master, nil)
	wantError(t, code, body, 400, "invalid_request_error", "")
}

func TestKeyList_CursorPagesWithoutTotal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hashes := e.keysOfTwoUsers(5)
	var got []any
	path, pages := "/key/list?cursor=&size=2", 0
	for ; pages < 5; pages++ {
		m := e.ok("GET", path, master, nil)
		if _, ok := m["total_count"]; ok {
			t.Errorf("cursor page %d has total_count: %v", pages+1, m)
		}
		got = append(got, m["keys"].([]any)...)
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/key/list?size=2&cursor=" + url.QueryEscape(next)
	}
	if want := []any{hashes[4], hashes[3], hashes[2], hashes[1], hashes[0]}; fmt.Sprint(got) != fmt.Sprint(want) || pages != 2 {
		t.Errorf("cursor pages: %d pages %v, want 3 pages %v", pages+1, got, want)
	}
	// A user's cursor pages stay on the user's keys, whatever cursor it passes.
	u0 := e.generate(map[string]any{"user_id": "u0"})
	first := e.ok("GET", "/key/list?cursor=&size=1", master, nil)["next_cursor"].(string)
	code, m := e.call("GET", "/key/list?size=10&cursor="+url.QueryEscape(first), u0, nil)
	if code == http.StatusOK {
		for _, k := range m["keys"].([]any) {
			if k == hashes[1] || k == hashes[3] {
				t.Errorf("u0 listed u1's key %v with an admin's cursor", k)
			}
		}
	} else if code != http.StatusBadRequest {
		t.Errorf("u0 with an admin's cursor: %d %v, want 200 (own keys) or 400", code, m)
	}
	code, body := e.call("GET", "/key/list?cursor=not-a-cursor", master, nil)
	wantError(t, code, body, 400, "invalid_request_error", "cursor is not one this list handed out; start again without it")
	code, body = e.call("GET", "/key/list?cursor=&sort_by=spend", master, nil)
	wantError(t, code, body, 400, "invalid_request_error", "")
}

// A cursor page with count=true counts the keys it lists from up to 1,000 without reading
// them, and says when there are more (the console's Keys card; the numbered pages' total_count
// reads every key, 0.9 s at 10,000). The old code had no count on cursor pages.
func TestKeyList_CursorPageCountsUpToALimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.keysOfTwoUsers(5)
	u0 := e.generate(map[string]any{"user_id": "u0"})
	for _, c := range []struct {
		name, key string
		want      float64
	}{{"an admin, every key", master, 6}, {"a user, its own keys", u0, 4}} {
		m := e.ok("GET", "/key/list?cursor=&size=2&count=true", c.key, nil)
		if m["total_count"] != c.want || m["total_count_capped"] != false || len(m["keys"].([]any)) != 2 {
			t.Errorf("%s: %v, want total_count %v, not capped, a page of 2", c.name, m, c.want)
		}
	}
	batch := e.st.Batch()
	now := e.clock()
	for i := range 1000 {
		tx := e.st.Tx()
		if err := tx.PutKey(&store.Key{Token: fmt.Sprintf("%064x", i), KeyName: "sk-...many", Audit: store.Audit{CreatedAt: now, UpdatedAt: now}}); err != nil {
			t.Fatal(err)
		}
		batch.Add(tx)
	}
	if err := batch.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m := e.ok("GET", "/key/list?cursor=&size=1&count=true", master, nil); m["total_count"] != 1000.0 || m["total_count_capped"] != true {
		t.Errorf("1,006 keys: %v, want total_count 1000, capped", m)
	}
	code, body := e.call("GET", "/key/list?cursor=&count=yes", master, nil)
	wantError(t, code, body, 400, "invalid_request_error", `count must be true or false; got "yes"`)
}

func TestKeyResetSpend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.generate(map[string]any{"max_budget": 10, "spend": 4})
	m := e.ok("POST", "/key/"+key+"/reset_spend", master, map[string]any{"reset_to": 1})
	if m["key_hash"] != auth.Hash(key) || m["spend"] != 1.0 || m["previous_spend"] != 4.0 || m["max_budget"] != 10.0 {
		t.Errorf("reset_spend answer: %v", m)
	}
	k, _ := e.st.GetKey(t.Context(), auth.Hash(key))
	if k.Spend != 1 || *k.Remaining != 9 {
		t.Errorf("stored spend %v remaining %v, want 1 and 9", k.Spend, *k.Remaining)
	}
	code, body := e.call("POST", "/key/"+key+"/reset_spend", master, map[string]any{"reset_to": 5})
	wantError(t, code, body, 400, "auth_error", "reset_to (5.0) must be <= current spend (1.0)")
}
