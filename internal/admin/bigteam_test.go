package admin_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// Changes whose writes exceed one DynamoDB transaction (100 writes): deletes complete in
// batches, creates and additions are refused whole.

// members returns n member objects u<prefix>0… with role user.
func memberList(prefix string, from, to int) []any {
	var ms []any
	for i := from; i < to; i++ {
		ms = append(ms, map[string]any{"user_id": fmt.Sprintf("%s%d", prefix, i), "role": "user"})
	}
	return ms
}

// wantTooLarge checks the 400 of a request over the transaction limit.
func wantTooLarge(t *testing.T, code int, body map[string]any) {
	t.Helper()
	wantError(t, code, body, 400, "invalid_request_error", "")
	if msg, _ := errOf(t, body)["message"].(string); !strings.Contains(msg, "limit of 100") || !strings.Contains(msg, "nothing was written") {
		t.Errorf("message does not name the limit: %q", msg)
	}
}

func TestTeamDelete_BigTeam(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const members, keys = 120, 150
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "big", "team_member_budget": 1})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "other"})
	for from := 0; from < members; from += 40 {
		e.ok("POST", "/team/member_add", master, map[string]any{"team_id": "big", "member": memberList("m", from, from+40)})
	}
	// m0 is also in another team, which must survive.
	e.ok("POST", "/team/member_add", master, map[string]any{"team_id": "other", "member": map[string]any{"user_id": "m0", "role": "user"}})
	var raws []string
	for i := range keys {
		body := map[string]any{"team_id": "big", "user_id": fmt.Sprintf("m%d", i%members)}
		if i%3 == 0 {
			body["key_alias"] = fmt.Sprintf("big-%d", i)
		}
		raws = append(raws, e.generate(body))
	}
	if code, _ := e.authStatus(raws[0]); code != 200 {
		t.Fatalf("team key before the delete: %d", code)
	}

	if m := e.ok("POST", "/team/delete", master, map[string]any{"team_ids": []string{"big"}}); m["deleted_teams"] != 1.0 {
		t.Errorf("/team/delete = %v", m)
	}
	ctx := t.Context()
	if _, err := e.st.GetTeam(ctx, "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("team left behind: %v", err)
	}
	if ms, err := e.st.Memberships(ctx, "big"); err != nil || len(ms) != 0 {
		t.Errorf("memberships left behind: %d, %v", len(ms), err)
	}
	for i := range members {
		u, err := e.st.GetUser(ctx, fmt.Sprintf("m%d", i))
		if err != nil || slices.Contains(u.Teams, "big") {
			t.Fatalf("user m%d still lists the team: %v, %v", i, u, err)
		}
	}
	if u, _ := e.st.GetUser(ctx, "m0"); !slices.Equal(u.Teams, []string{"other"}) {
		t.Errorf("m0's other team: %v", u.Teams)
	}
	for i, k := range raws {
		if _, err := e.st.GetKey(ctx, auth.Hash(k)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("key %d left behind: %v", i, err)
		}
	}
	if code, _ := e.authStatus(raws[1]); code != 401 {
		t.Errorf("key of the deleted team authenticates: %d, want 401", code)
	}
	// The aliases of the deleted keys are free again.
	e.generate(map[string]any{"key_alias": "big-0"})
	code, body := e.call("GET", "/team/info?team_id=other", master, nil)
	if code != 200 || len(body["team_memberships"].([]any)) != 2 { // m0 and the creator
		t.Errorf("other team: %d %v", code, body)
	}
}

// A team delete that failed part way leaves the team blocked; deleting it again finishes.
func TestTeamDelete_FinishesAHalfDoneDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "members_with_roles": memberList("h", 0, 45)})
	e.ok("POST", "/team/member_add", master, map[string]any{"team_id": "t", "member": memberList("h", 45, 60)})
	var raws []string
	for range 20 {
		raws = append(raws, e.generate(map[string]any{"team_id": "t"}))
	}
	// The state a failure after the first batches leaves: team blocked, some keys and member
	// links gone.
	e.ok("POST", "/team/block", master, map[string]any{"team_id": "t"})
	ctx := t.Context()
	var gone []*store.Key
	for _, k := range raws[:10] {
		rec, err := e.st.GetKey(ctx, auth.Hash(k))
		if err != nil {
			t.Fatal(err)
		}
		gone = append(gone, rec)
	}
	if err := e.st.DeleteKeys(ctx, gone); err != nil {
		t.Fatal(err)
	}
	e.ok("POST", "/team/member_delete", master, map[string]any{"team_id": "t", "user_id": "h0"})

	e.ok("POST", "/team/delete", master, map[string]any{"team_ids": []string{"t"}})
	if _, err := e.st.GetTeam(ctx, "t"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("team left behind: %v", err)
	}
	if ms, _ := e.st.Memberships(ctx, "t"); len(ms) != 0 {
		t.Errorf("%d memberships left behind", len(ms))
	}
	for _, k := range raws {
		if _, err := e.st.GetKey(ctx, auth.Hash(k)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("key left behind: %v", err)
		}
	}
}

func TestTeamNew_TooManyMembersWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/user/new", master, map[string]any{"user_id": "n0", "auto_create_key": false})
	code, body := e.call("POST", "/team/new", master, map[string]any{"team_id": "huge", "members_with_roles": memberList("n", 0, 60)})
	wantTooLarge(t, code, body)
	ctx := t.Context()
	if _, err := e.st.GetTeam(ctx, "huge"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused /team/new wrote the team: %v", err)
	}
	if _, err := e.st.GetUser(ctx, "n1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused /team/new created a member: %v", err)
	}
	if u, _ := e.st.GetUser(ctx, "n0"); len(u.Teams) != 0 {
		t.Errorf("refused /team/new changed an existing user: %v", u.Teams)
	}
}

func TestTeamMemberAdd_TooManyMembersWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t"})
	code, body := e.call("POST", "/team/member_add", master, map[string]any{"team_id": "t", "member": memberList("a", 0, 50)})
	wantTooLarge(t, code, body)
	ctx := t.Context()
	if team, _ := e.st.GetTeam(ctx, "t"); len(team.MembersWithRoles) != 1 { // its creator
		t.Errorf("refused member_add changed the team: %v", team.MembersWithRoles)
	}
	if _, err := e.st.GetUser(ctx, "a0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused member_add created a user: %v", err)
	}
}

func TestUserNew_TooManyTeamsWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var teams []string
	for i := range 50 {
		id := fmt.Sprintf("t%d", i)
		e.ok("POST", "/team/new", master, map[string]any{"team_id": id})
		teams = append(teams, id)
	}
	code, body := e.call("POST", "/user/new", master, map[string]any{"user_id": "joiner", "teams": teams, "key_alias": "joiner-key"})
	wantTooLarge(t, code, body)
	ctx := t.Context()
	if _, err := e.st.GetUser(ctx, "joiner"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused /user/new wrote the user: %v", err)
	}
	if team, _ := e.st.GetTeam(ctx, "t0"); len(team.MembersWithRoles) != 1 { // its creator
		t.Errorf("refused /user/new joined a team: %v", team.MembersWithRoles)
	}
	// Its key alias was not taken.
	e.generate(map[string]any{"key_alias": "joiner-key"})
}

func TestUserDelete_UserInManyTeams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const teams = 60
	for i := range teams {
		e.ok("POST", "/team/new", master, map[string]any{"team_id": fmt.Sprintf("t%d", i), "team_member_budget": 1,
			"members_with_roles": []any{map[string]any{"user_id": "stay", "role": "admin"}}})
	}
	key := e.ok("POST", "/user/new", master, map[string]any{"user_id": "many", "user_email": "many@example.com", "key_alias": "many-key"})["key"].(string)
	for i := range teams {
		e.ok("POST", "/team/member_add", master, map[string]any{"team_id": fmt.Sprintf("t%d", i), "member": map[string]any{"user_id": "many", "role": "user"}})
	}
	teamKey := e.generate(map[string]any{"user_id": "many", "team_id": "t0"})

	if code, raw := e.raw("POST", "/user/delete", master, map[string]any{"user_ids": []string{"many"}}); code != 200 || string(raw) != "1\n" {
		t.Fatalf("/user/delete = %d %s", code, raw)
	}
	ctx := t.Context()
	if _, err := e.st.GetUser(ctx, "many"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user left behind: %v", err)
	}
	if _, err := e.st.UserIDByEmail(ctx, "many@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("email item left behind: %v", err)
	}
	for _, k := range []string{key, teamKey} {
		if code, _ := e.authStatus(k); code != 401 {
			t.Errorf("deleted user's key authenticates: %d", code)
		}
	}
	for i := range teams {
		id := fmt.Sprintf("t%d", i)
		team, err := e.st.GetTeam(ctx, id)
		// Left: stay and the team's creator, default_user_id.
		if err != nil || len(team.MembersWithRoles) != 2 || *team.MembersWithRoles[0].UserID != "stay" {
			t.Fatalf("team %s members: %v, %v", id, team, err)
		}
		ms, _ := e.st.Memberships(ctx, id)
		if len(ms) != 2 || ms[1].UserID != "stay" {
			t.Fatalf("team %s memberships: %v", id, ms)
		}
	}
	e.generate(map[string]any{"key_alias": "many-key"})
}
