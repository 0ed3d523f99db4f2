package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// fuzzKey is the fixture key the seeds name (a strong custom value).
const fuzzKey = "sk-FuzzFixtureKey9Xq2Lm7Rt4Vw"

// FuzzManagementRequests sends arbitrary bodies to the management write routes with the
// master key. Whatever the body, the answer is a 200 or an OpenAI-format 4xx (never a 5xx:
// a bad number or size is the caller's error, not an outage), and a refused request writes
// nothing: no record appears and the fixture key, user and team are unchanged.
func FuzzManagementRequests(f *testing.F) {
	e := newEnv(f)
	e.ok("POST", "/user/new", master, map[string]any{"user_id": "fz-user", "auto_create_key": false})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "fz-team"})
	e.ok("POST", "/key/generate", master, map[string]any{"key": fuzzKey, "user_id": "fz-user", "team_id": "fz-team"})
	routes := []string{"/key/generate", "/key/update", "/key/regenerate", "/user/new", "/user/update", "/team/new", "/team/update", "/team/member_add"}

	long := strings.Repeat("ü", 2000)
	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, `{"max_budget": "NaN"}`},
		{0, `{"max_budget": "-Inf", "soft_budget": "+Inf"}`},
		{0, `{"max_budget": 1e308, "spend": 1e125}`},
		{0, `{"max_budget": 1e999}`},
		{0, `{"max_budget": 5e-324}`},
		{0, `{"tpm_limit": 9223372036854775807, "rpm_limit": 1e19}`},
		{0, `{"budget_limits": [{"budget_duration": "1d", "max_budget": "NaN"}]}`},
		{0, `{"budget_limits": [{"budget_duration": "1000000mo", "max_budget": 1}]}`},
		{0, `{"model_max_budget": {"gpt-4o": {"budget_limit": "Infinity", "time_period": "1d"}}}`},
		{0, `{"models": ["` + long + `"]}`},
		{0, `{"key_alias": "` + long + `"}`},
		{0, `{"key_alias": "a\u0000b"}`},
		{0, `{"user_id": "\ud800"}`},
		{0, `{"metadata": {"x": "` + strings.Repeat("y", 20000) + `"}}`},
		{0, `{"aliases": {"gpt-4o": "` + long + `"}}`},
		{0, `{"key": "sk-\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e\u202e"}`},
		{0, `{"duration": "99999999999999999999s"}`},
		{1, `{"key": "` + fuzzKey + `", "max_budget": "NaN"}`},
		{1, `{"key": "` + fuzzKey + `", "budget_limits": [` + strings.Repeat(`{"budget_duration": "1s", "max_budget": 1},`, 60) + `{"budget_duration": "2s", "max_budget": 1}]}`},
		{1, `{"key": "` + fuzzKey + `", "temp_budget_increase": "NaN", "temp_budget_expiry": "x"}`},
		{1, `{"key": "` + strings.Repeat("k", 5000) + `"}`},
		{2, `{"key": "` + fuzzKey + `", "new_key": "sk-a"}`},
		{2, `{"key": "` + fuzzKey + `", "grace_period": "1e9d"}`},
		{3, `{"user_id": "` + long + `"}`},
		{3, `{"max_budget": "NaN", "user_role": "proxy_admin"}`},
		{3, `{"teams": [{"team_id": "fz-team", "max_budget_in_team": "NaN"}]}`},
		{4, `{"user_id": "fz-user", "max_budget": "Inf"}`},
		{4, `{"user_email": "` + long + `"}`},
		{5, `{"team_id": "` + long + `"}`},
		{5, `{"team_member_permissions": ["/user/new"]}`},
		{5, `{"team_member_budget": "NaN", "members_with_roles": [{"user_id": "\u0007", "role": "user"}]}`},
		{6, `{"team_id": "fz-team", "model_aliases": {"` + long + `": "x"}}`},
		{6, `{"team_id": "fz-team", "tags": [` + strings.Repeat(`"t",`, 200) + `"t"]}`},
		{7, `{"team_id": "fz-team", "member": {"user_id": "` + long + `", "role": "user"}, "max_budget_in_team": "NaN"}`},
		{7, `[]`},
		{7, `{"team_id": "fz-team", "member": {"user_id": "x", "role": "owner"}}`},
	} {
		f.Add(seed.route, seed.body)
	}

	f.Fuzz(func(t *testing.T, route uint8, body string) {
		path := routes[int(route)%len(routes)]
		before := fuzzSnapshot(t, e)
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+master)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %.300q: %d %s", path, body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code == 200 {
			return
		}
		var m struct {
			Error struct {
				Message string `json:"message"`
				Code    string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m.Error.Message == "" || m.Error.Code != fmt.Sprint(rec.Code) {
			t.Errorf("POST %s: %d answer is not an OpenAI-format error: %s", path, rec.Code, rec.Body.Bytes())
		}
		if after := fuzzSnapshot(t, e); after != before {
			t.Errorf("POST %s %.300q was refused (%d) but wrote:\nbefore %s\nafter  %s", path, body, rec.Code, before, after)
		}
	})
}

// fuzzSnapshot is what a refused request must leave as it was: the number of keys, users
// and teams, and the fixture key, user and team as stored (without timestamps of reads).
func fuzzSnapshot(t *testing.T, e *env) string {
	t.Helper()
	ctx := t.Context()
	_, keys, err1 := e.st.ListKeys(ctx, store.KeyFilter{}, store.Page{Number: 1, Size: 1})
	_, users, err2 := e.st.ListUsers(ctx, store.Page{Number: 1, Size: 1})
	_, teams, err3 := e.st.ListTeams(ctx, store.Page{Number: 1, Size: 1})
	k, _ := e.st.GetKey(ctx, auth.Hash(fuzzKey))
	u, _ := e.st.GetUser(ctx, "fz-user")
	tm, _ := e.st.GetTeam(ctx, "fz-team")
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal([]any{keys, users, teams, k, u, tm})
	return string(b)
}
