package faulttest

import (
	"context"
	"net/http"
	"testing"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// The completions function's IAM policy (infra) grants it the table and no index: a call
// reads records by key and queries only partitions of the table (a split team's or key's
// shards), so a Query of an index on the call path would be denied in AWS. Calls of every
// shape (a split key with a user and a split team, a key with rate limits, an end user, a
// stream, an unknown key) make none.
func TestCalls_QueryNoIndex(t *testing.T) {
	t.Parallel()
	up := fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(up.Close)
	cfg := configYAML([]deployment{{"chat", "chat-1", up.BaseURL}}, "") + "llmgate_settings:\n  escrow_shards: 8\n"
	g, proxy := startFaultyGateway(t, cfg)
	ctx := context.Background()
	if status, _, b, err := g.do(ctx, http.MethodPost, "/user/new", masterKey, `{"user_id":"u-ix","max_budget":100}`); err != nil || status != http.StatusOK {
		t.Fatalf("POST /user/new: %d %v %s", status, err, b)
	}
	team := g.newTeam(t, `{"max_budget":50,"members_with_roles":[{"role":"user","user_id":"u-ix"}]}`)
	split, _ := g.generateKey(t, `{"user_id":"u-ix","team_id":"`+team+`","max_budget":20}`)
	limited, _ := g.generateKey(t, `{"rpm_limit":100,"tpm_limit":100000,"max_parallel_requests":5,"max_budget":1}`)
	proxy.Reset()

	for _, c := range []struct {
		key, body string
		want      int
	}{
		{split, chatBody("chat", false), http.StatusOK},
		{split, chatBody("chat", true), http.StatusOK},
		{limited, chatBody("chat", false), http.StatusOK},
		{limited, `{"model":"chat","messages":[{"role":"user","content":"Hi"}],"user":"end-user-ix"}`, http.StatusOK},
		{masterKey, chatBody("chat", false), http.StatusOK},
		{"sk-not-a-key", chatBody("chat", false), http.StatusUnauthorized},
	} {
		if status, _, b, err := g.do(ctx, http.MethodPost, "/v1/chat/completions", c.key, c.body); err != nil || status != c.want {
			t.Fatalf("call %s: %d %v %s, want %d", c.body, status, err, b, c.want)
		}
	}
	u := proxy.Usage()
	if u.Calls["UpdateItem"]+u.Calls["TransactWriteItems"] == 0 {
		t.Fatalf("the calls wrote nothing through the proxy (%v): it did not see them", u.Calls)
	}
	if u.Queries[""] == 0 {
		t.Errorf("no Query of the table recorded (%v), though a split key's shards are read by one: the proxy did not record queries", u.Queries)
	}
	for ix, n := range u.Queries {
		if ix != "" {
			t.Errorf("calls queried index %s %d times; the completions function may query none (%v)", ix, n, u.Queries)
		}
	}
}
