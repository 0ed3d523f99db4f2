package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func request(header, value string) *http.Request {
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	if header != "" {
		r.Header.Set(header, value)
	}
	return r
}

func newKey(t *testing.T, st *store.Store, mods ...func(*store.Key)) string {
	t.Helper()
	raw, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	k := &store.Key{Token: auth.Hash(raw), KeyName: auth.KeyName(raw), Models: []string{}, Aliases: map[string]string{}, Metadata: map[string]any{}}
	k.CreatedAt, k.UpdatedAt = now, now
	for _, m := range mods {
		m(k)
	}
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return raw
}

func statusOf(err error) int {
	var oe *openai.Error
	if errors.As(err, &oe) {
		return oe.Status
	}
	return 0
}

func TestAuthenticate_AuthOffWithoutMasterKey(t *testing.T) {
	a := auth.New(auth.Options{})
	c, err := a.Authenticate(context.Background(), request("", ""))
	if err != nil {
		t.Fatal(err)
	}
	p := c.(*auth.Principal)
	if !p.IsMaster || p.Role != auth.RoleProxyAdmin {
		t.Errorf("principal = %+v, want an admin", p)
	}
}

func TestAuthenticate_MasterKeyAndCustomHeader(t *testing.T) {
	a := auth.New(auth.Options{MasterKey: "sk-master", KeyHeader: "X-Gateway-Key"})
	c, err := a.Authenticate(context.Background(), request("X-Gateway-Key", "Bearer sk-master"))
	if err != nil || !c.(*auth.Principal).IsMaster {
		t.Fatalf("master key in the custom header: %v, %v", c, err)
	}
	if _, err := a.Authenticate(context.Background(), request("Authorization", "Bearer sk-master")); statusOf(err) != 401 {
		t.Errorf("Authorization is ignored when litellm_key_header_name is set: err = %v, want 401", err)
	}
}

func TestAuthenticate_StoreUnreachableIs503(t *testing.T) {
	st := store.NewWithClient(dynamotest.Client(t), "no-such-table")
	a := auth.New(auth.Options{Store: st, MasterKey: "sk-master"})
	_, err := a.Authenticate(context.Background(), request("Authorization", "Bearer sk-some-virtual-key"))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want a 503 openai.Error", err)
	}
}

func TestAuthenticate_CacheTTLAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.NewWithClient(dynamotest.NewTable(t))
	clk := &clock{now: time.Now()}
	raw := newKey(t, st)
	// Three instances: "here" made the change and invalidates; "there" and "idle" only have
	// their TTL ("idle" gets no request until its entry is too stale to serve).
	newAuth := func() *auth.Authenticator {
		return auth.New(auth.Options{Store: st, MasterKey: "sk-master", CacheTTL: 5 * time.Second, Now: clk.Now})
	}
	here, there, idle := newAuth(), newAuth(), newAuth()
	call := func(a *auth.Authenticator) error {
		_, err := a.Authenticate(ctx, request("Authorization", "Bearer "+raw))
		return err
	}
	for _, a := range []*auth.Authenticator{here, there, idle} {
		if err := call(a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.UpdateKey(ctx, auth.Hash(raw), func(k *store.Key) error { k.Blocked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	here.Invalidate()
	if err := call(here); statusOf(err) != 401 {
		t.Errorf("instance that blocked the key: err = %v, want 401 at once", err)
	}
	if err := call(there); err != nil {
		t.Errorf("other instance within its TTL: err = %v, want the cached key", err)
	}
	clk.Add(6 * time.Second)
	// Just past the TTL, the request that finds the entry stale is served from it and
	// refreshes it in the background; the requests after the refresh see the block.
	if err := call(there); err != nil {
		t.Errorf("other instance just past its TTL: err = %v, want the cached key while it refreshes", err)
	}
	refreshed := false
	for deadline := time.Now().Add(5 * time.Second); !refreshed && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		refreshed = statusOf(call(there)) == 401
	}
	if !refreshed {
		t.Errorf("other instance after its background refresh: err = %v, want 401", call(there))
	}
	clk.Add(5 * time.Second)
	if err := call(idle); statusOf(err) != 401 {
		t.Errorf("instance whose entry is more than twice its TTL old: err = %v, want 401 from a fresh load", err)
	}
}

func TestAuthenticate_LoadsUserTeamAndMembership(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.NewWithClient(dynamotest.NewTable(t))
	now := time.Now().UTC()
	tx := st.Tx()
	u := &store.User{UserID: "u", UserRole: auth.RoleProxyAdminViewer, Models: []string{}, Teams: []string{"t"}, Metadata: map[string]any{}}
	team := &store.Team{TeamID: "t", Models: []string{}, Metadata: map[string]any{}}
	u.CreatedAt, team.CreatedAt = now, now
	budget := 2.0
	for _, err := range []error{tx.PutUser(u), tx.PutTeam(team), tx.PutMembership(&store.Membership{TeamID: "t", UserID: "u", Budget: store.Budget{MaxBudget: &budget}})} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	raw := newKey(t, st, func(k *store.Key) { k.UserID, k.TeamID = &u.UserID, &team.TeamID })
	a := auth.New(auth.Options{Store: st, MasterKey: "sk-master"})
	p, err := a.Principal(ctx, request("x-litellm-api-key", raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.User == nil || p.Team == nil || p.Membership == nil || *p.Membership.MaxBudget != 2 || p.Role != auth.RoleProxyAdminViewer || p.UserID != "u" || p.Token != auth.Hash(raw) {
		t.Errorf("principal = %+v", p)
	}
}

func TestAuthenticate_RotatedKeyCachedOnlyUntilRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.NewWithClient(dynamotest.NewTable(t))
	clk := &clock{now: time.Now()}
	old := newKey(t, st)
	a := auth.New(auth.Options{Store: st, MasterKey: "sk-master", CacheTTL: time.Hour, Now: clk.Now})
	nk, _, err := auth.Regenerate(ctx, st, auth.Hash(old), auth.RegenerateOptions{Grace: time.Minute, Now: clk.Now()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Principal(ctx, request("Authorization", "Bearer "+old))
	if err != nil || p.Token != auth.Hash(nk) {
		t.Fatalf("old key in its grace period: %+v, %v; want the new key's record", p, err)
	}
	clk.Add(time.Minute + time.Second)
	if _, err := a.Principal(ctx, request("Authorization", "Bearer "+old)); statusOf(err) != 401 {
		t.Errorf("old key after revoke_at, cache TTL still running: err = %v, want 401", err)
	}
}
