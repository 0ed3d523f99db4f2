package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// seedConfig serves two model groups on a fake OpenAI upstream at %[1]s; the seeded key may
// call only gpt-up, which is priced so that calls show up as spend.
const seedConfig = `
model_list:
  - model_name: gpt-up
    litellm_params:
      model: openai/up-model
      api_base: %[1]s
      api_key: ` + upstreamKey + `
    model_info:
      id: gpt-up-1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: other
    litellm_params:
      model: openai/other-model
      api_base: %[1]s
      api_key: ` + upstreamKey + `
general_settings:
  master_key: ` + masterKey + `
`

const (
	seedPrompt = "seed flow prompt 7f3a"
	// seedCallCost is one fake upstream answer on gpt-up: fakeopenai.PromptTokens prompt
	// tokens and 8 completion tokens (its default chunk count).
	seedCallCost = fakeopenai.PromptTokens*0.000001 + 8*0.000002
)

// liteErr is an error LiteLLM answers with; message is a regular expression.
type liteErr struct {
	status         int
	typ, param     string
	messagePattern string
}

// check fails the test unless err is the SDK's error for w, with LiteLLM's code: the status
// as a string.
func (w liteErr) check(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %d %s", what, w.status, w.typ)
		return
	}
	e := apiError(t, err)
	if e.StatusCode != w.status || e.Type != w.typ || e.Param != w.param || e.Code != strconv.Itoa(w.status) ||
		!regexp.MustCompile("^"+w.messagePattern+"$").MatchString(e.Message) {
		t.Errorf("%s: got %d type=%q param=%q code=%q %q\nwant %d type=%q param=%q code=%q %q",
			what, e.StatusCode, e.Type, e.Param, e.Code, e.Message, w.status, w.typ, w.param, strconv.Itoa(w.status), w.messagePattern)
	}
}

// errText describes err with the API error's type and message, which its Error() leaves out.
func errText(err error) string {
	var e *openai.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%d %s: %s", e.StatusCode, e.Type, e.Message)
	}
	return err.Error()
}

// keyName is LiteLLM's abbreviation of a key or hash in messages: "sk-..." and its last 4.
func keyName(key string) string { return "sk-..." + key[len(key)-4:] }

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// invalidKey is LiteLLM's 401 for a key value that is not (or no longer) valid.
func invalidKey(key string) liteErr {
	return liteErr{http.StatusUnauthorized, "token_not_found_in_db", "key", regexp.QuoteMeta(fmt.Sprintf(
		"Authentication Error, Invalid proxy server token passed. Received API Key = %s, Key Hash (Token) =%s. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
		keyName(key), hashKey(key)))}
}

// eventually calls cond every 100ms until it reports "" or timeout passes, and then fails the
// test with its last report.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s: %s", timeout, msg)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSeedFlow seeds a user, a team and keys through the admin API and calls as the virtual
// keys with the openai-go SDK: aliases and model restrictions, streaming, spend on the key,
// user and team, block and unblock, regenerate with and without a grace period, and expiry.
func TestSeedFlow(t *testing.T) {
	t.Parallel()
	up := fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(up.Close)
	s := start(t, fmt.Sprintf(seedConfig, up.BaseURL))
	ctx := context.Background()
	const userID, teamID = "seed-user", "seed-team"

	s.admin(t, "POST", "/user/new", map[string]any{"user_id": userID, "user_email": "seed@example.com"})
	team := s.admin(t, "POST", "/team/new", map[string]any{
		"team_id": teamID, "team_alias": "Seed team",
		"members_with_roles": []map[string]any{{"user_id": userID, "role": "user"}},
	})
	// The master key's user, default_user_id, becomes the team's admin, as in LiteLLM.
	if members, _ := team["members_with_roles"].([]any); len(members) != 2 || members[0].(map[string]any)["user_id"] != userID ||
		members[1].(map[string]any)["user_id"] != "default_user_id" {
		t.Errorf("/team/new members_with_roles = %v, want %s and default_user_id", team["members_with_roles"], userID)
	}
	gen := s.admin(t, "POST", "/key/generate", map[string]any{
		"user_id": userID, "team_id": teamID, "key_alias": "seed-key",
		"models": []string{"gpt-up"}, "aliases": map[string]string{"my-alias": "gpt-up"},
	})
	key, _ := gen["key"].(string)
	if !strings.HasPrefix(key, "sk-") || gen["token_id"] != hashKey(key) {
		t.Fatalf("/key/generate answered key %q token_id %v, want an sk- key and its SHA-256", key, gen["token_id"])
	}
	secrets := []string{seedPrompt, masterKey, upstreamKey, key} // what the log must not hold

	// chat calls gpt-up through the alias as key; it reports what the call answered.
	chat := func(key string) (*openai.ChatCompletion, *http.Response, error) {
		var raw *http.Response
		c := client(s, key)
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "my-alias", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(seedPrompt)},
		}, option.WithResponseInto(&raw))
		return resp, raw, err
	}
	works := func(t *testing.T, what, key string) {
		t.Helper()
		if _, _, err := chat(key); err != nil {
			t.Errorf("%s: %s", what, errText(err))
		}
	}

	t.Run("alias", func(t *testing.T) {
		before := up.Requests()
		resp, raw, err := chat(key)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != strings.Repeat("tok ", 8) || raw.Header.Get("x-litellm-model-id") != "gpt-up-1" {
			t.Errorf("answered %q by %q, want the upstream's answer by gpt-up-1", got, raw.Header.Get("x-litellm-model-id"))
		}
		if n := up.Requests() - before; n != 1 {
			t.Errorf("%d upstream calls, want 1", n)
		}
	})

	t.Run("model not allowed", func(t *testing.T) {
		before := up.Requests()
		c := client(s, key)
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "other", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(seedPrompt)},
		})
		liteErr{http.StatusUnauthorized, "key_model_access_denied", "model", regexp.QuoteMeta(
			"key not allowed to access model. This key can only access models=['gpt-up']. Tried to access other")}.check(t, "other", err)
		if n := up.Requests() - before; n != 0 {
			t.Errorf("%d upstream calls, want none", n)
		}
	})

	t.Run("stream", func(t *testing.T) {
		c := client(s, key)
		stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: "my-alias", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(seedPrompt)},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		var text strings.Builder
		var usage openai.CompletionUsage
		for stream.Next() {
			ch := stream.Current()
			if ch.JSON.Usage.Valid() {
				usage = ch.Usage
			}
			for _, c := range ch.Choices {
				text.WriteString(c.Delta.Content)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != strings.Repeat("tok ", 8) || usage.TotalTokens != fakeopenai.PromptTokens+8 {
			t.Errorf("streamed %q with usage %+v, want the upstream's 8 tokens and its usage", text.String(), usage)
		}
	})

	// Two calls were answered (the refused one costs nothing); each is charged to the key,
	// its user and its team once the settle, which follows the answer, is written.
	t.Run("spend", func(t *testing.T) {
		want := 2 * seedCallCost
		for _, tt := range []struct{ path, field string }{
			{"/key/info?key=" + url.QueryEscape(key), "info"},
			{"/user/info?user_id=" + userID, "user_info"},
			{"/team/info?team_id=" + teamID, "team_info"},
		} {
			eventually(t, 10*time.Second, func() string {
				info, _ := s.admin(t, "GET", tt.path, nil)[tt.field].(map[string]any)
				if spend, _ := info["spend"].(float64); math.Abs(spend-want) > 1e-12 {
					return fmt.Sprintf("%s %s.spend = %v, want %g", tt.path, tt.field, info["spend"], want)
				}
				return ""
			})
		}
	})

	t.Run("block and unblock", func(t *testing.T) {
		if got := s.admin(t, "POST", "/key/block", map[string]any{"key": key}); got["blocked"] != true {
			t.Errorf("/key/block answered blocked=%v", got["blocked"])
		}
		_, _, err := chat(key)
		liteErr{http.StatusUnauthorized, "auth_error", "None", regexp.QuoteMeta(
			"Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.")}.check(t, "blocked key", err)
		s.admin(t, "POST", "/key/unblock", map[string]any{"key": key})
		works(t, "unblocked key", key)
	})

	t.Run("regenerate", func(t *testing.T) {
		graced, _ := s.admin(t, "POST", "/key/"+key+"/regenerate", map[string]any{"grace_period": "1h"})["key"].(string)
		if !strings.HasPrefix(graced, "sk-") || graced == key {
			t.Fatalf("regenerate answered key %q", graced)
		}
		secrets = append(secrets, graced)
		works(t, "old key within its grace period", key)
		works(t, "regenerated key", graced)

		fresh, _ := s.admin(t, "POST", "/key/"+graced+"/regenerate", map[string]any{})["key"].(string)
		if !strings.HasPrefix(fresh, "sk-") || fresh == graced {
			t.Fatalf("regenerate answered key %q", fresh)
		}
		secrets = append(secrets, fresh)
		works(t, "key regenerated without grace", fresh)
		for _, old := range []string{graced, key} { // key's grace led to graced, revoked now
			_, _, err := chat(old)
			invalidKey(old).check(t, "key rotated out without grace", err)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		gen := s.admin(t, "POST", "/key/generate", map[string]any{
			"duration": "2s", "user_id": userID, "aliases": map[string]string{"my-alias": "gpt-up"},
		})
		short, _ := gen["key"].(string)
		secrets = append(secrets, short)
		expires, err := time.Parse(time.RFC3339Nano, fmt.Sprint(gen["expires"]))
		if err != nil || time.Until(expires) < time.Second || time.Until(expires) > 2*time.Second {
			t.Fatalf("expires = %v (%v), want 2s from now", gen["expires"], err)
		}
		works(t, "key before expiry", short)
		// Until it fails, no call that started after the expiry may succeed; the failure must
		// come after it.
		for {
			sent := time.Now()
			_, _, err := chat(short)
			if err != nil {
				if time.Now().Before(expires) {
					t.Fatalf("failed before the key expired at %s: %s", expires, errText(err))
				}
				liteErr{http.StatusUnauthorized, "expired_key", keyName(hashKey(short)),
					`Authentication Error - Expired Key\. Key Expiry time ` + regexp.QuoteMeta(expires.UTC().Format("2006-01-02 15:04:05")) +
						`(\.\d{6})?\+00:00 and current time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00`}.check(t, "expired key", err)
				break
			}
			if sent.After(expires) {
				t.Fatalf("a call sent at %s succeeded; the key expired at %s", sent, expires)
			}
			time.Sleep(50 * time.Millisecond) // often enough to call in the expiry's last second
		}
	})

	checkLogs(t, s, secrets...)
}
