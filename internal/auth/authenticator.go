package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

// Error types of authentication failures (LiteLLM's ProxyErrorTypes).
const (
	TypeTokenNotFound = "token_not_found_in_db"
	TypeExpiredKey    = "expired_key"
)

// DefaultCacheSize bounds the number of keys an Authenticator caches.
const DefaultCacheSize = 10_000

// Options configure an Authenticator.
type Options struct {
	Store *store.Store
	// MasterKey may do everything; empty turns auth off (every call allowed, as LiteLLM).
	MasterKey string
	// KeyHeader is general_settings.litellm_key_header_name: read the key only from it.
	KeyHeader string
	// CacheTTL is how long resolved records are reused; 0 disables the cache. For one more
	// CacheTTL after that, a request is served from the cache while one background load
	// refreshes it, so no request waits for the refresh of a key in use.
	CacheTTL  time.Duration
	CacheSize int // 0 means DefaultCacheSize
	Models    *ModelIndex
	Logger    *slog.Logger
	Now       func() time.Time // for tests; time.Now by default
}

// OptionsFromConfig fills the options a Config decides.
func OptionsFromConfig(cfg *config.Config, st *store.Store, log *slog.Logger) Options {
	return Options{
		Store:     st,
		MasterKey: cfg.GeneralSettings.MasterKey,
		KeyHeader: cfg.GeneralSettings.LiteLLMKeyHeaderName,
		CacheTTL:  cfg.Settings.AuthCacheTTL.Std(),
		Models:    NewModelIndex(cfg.ModelList),
		Logger:    log,
	}
}

// Authenticator resolves a request's key to a Principal. It implements llmcall.Authenticator.
type Authenticator struct {
	o     Options
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	p          Principal
	exp        time.Time // fresh until
	stale      time.Time // served, while refreshing, until
	refreshing bool
}

// refreshTimeout bounds a background refresh, which no request waits for.
const refreshTimeout = 5 * time.Second

var _ llmcall.Authenticator = (*Authenticator)(nil)

// New builds an Authenticator.
func New(o Options) *Authenticator {
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Authenticator{o: o, cache: map[string]cached{}}
}

// Enabled reports whether a master key is configured (without one, auth is off).
func (a *Authenticator) Enabled() bool { return a.o.MasterKey != "" }

// Invalidate drops every cached record, so a change made on this instance (a key deleted
// or blocked, a team blocked) takes effect on its next request. Other instances see it
// when their cache entries expire (CacheTTL).
func (a *Authenticator) Invalidate() {
	a.mu.Lock()
	clear(a.cache)
	a.mu.Unlock()
}

// Authenticate resolves the caller of r: the master key, or a virtual key with its user,
// team and team membership. Errors are *openai.Error with LiteLLM's status, type and message.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (llmcall.Caller, error) {
	p, err := a.Principal(ctx, r)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Principal is Authenticate with the concrete type.
func (a *Authenticator) Principal(ctx context.Context, r *http.Request) (*Principal, error) {
	return a.principal(ctx, r, false)
}

// FreshPrincipal is Principal read from the store, never from the cache: the management API
// uses it, so a key blocked or deleted (or whose team was) a moment ago on another instance
// can no longer create or change keys there.
func (a *Authenticator) FreshPrincipal(ctx context.Context, r *http.Request) (*Principal, error) {
	return a.principal(ctx, r, true)
}

func (a *Authenticator) principal(ctx context.Context, r *http.Request, fresh bool) (*Principal, error) {
	if !a.Enabled() {
		return &Principal{IsMaster: true, Role: RoleProxyAdmin, UserID: ProxyAdminUserID, Models: a.o.Models}, nil
	}
	key, malformed := ExtractKey(r.Header, a.o.KeyHeader)
	switch {
	case malformed:
		return nil, authError("Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.")
	case key == "":
		return nil, authError("Authentication Error, No api key passed in.")
	case equalKeys(key, a.o.MasterKey):
		return &Principal{IsMaster: true, Role: RoleProxyAdmin, UserID: ProxyAdminUserID, Models: a.o.Models}, nil
	case !strings.HasPrefix(key, KeyPrefix):
		return nil, authError(fmt.Sprintf("Authentication Error, LiteLLM Virtual Key expected. Received=%s, expected to start with 'sk-'.", mask(key)))
	}
	return a.resolve(ctx, key, fresh)
}

// resolve finds the key's records (cache unless fresh, else one GetItem and one
// BatchGetItem, strongly consistent) and checks the key is usable now.
func (a *Authenticator) resolve(ctx context.Context, key string, fresh bool) (*Principal, error) {
	token := Hash(key)
	now := a.o.Now()
	var (
		p       *Principal
		refresh bool
		ok      bool
	)
	if !fresh {
		p, refresh, ok = a.cached(token, now)
	}
	if refresh {
		go a.refresh(context.WithoutCancel(ctx), token)
	}
	if !ok {
		var (
			err    error
			revoke *time.Time
		)
		if p, revoke, err = a.load(ctx, token, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, openai.Errorf(http.StatusUnauthorized, TypeTokenNotFound, fmt.Sprintf(
					"Authentication Error, Invalid proxy server token passed. Received API Key = %s, Key Hash (Token) =%s. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
					KeyName(key), token)).WithParam("key")
			}
			a.o.Logger.ErrorContext(ctx, "auth: key store unreachable", "error", err)
			return nil, openai.Errorf(http.StatusServiceUnavailable, openai.TypeUnavailable,
				"Authentication Error, the key store is unreachable; try again later")
		}
		a.remember(token, p, now, revoke)
	}
	if err := check(p, now); err != nil {
		return nil, err
	}
	return p, nil
}

// refresh reloads a stale cache entry in the background. A key that is gone is forgotten
// (its next request loads it and gets the 401); on other errors the entry stays until it
// is too stale to serve, and a later request tries again.
func (a *Authenticator) refresh(ctx context.Context, token string) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	now := a.o.Now()
	p, revoke, err := a.load(ctx, token, now)
	if err == nil {
		a.remember(token, p, now, revoke)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if errors.Is(err, store.ErrNotFound) {
		delete(a.cache, token)
		return
	}
	a.o.Logger.WarnContext(ctx, "auth: refreshing a cached key failed; it is served from the cache a while longer", "error", err)
	if c, ok := a.cache[token]; ok {
		c.refreshing = false
		a.cache[token] = c
	}
}

// load reads the key (following a rotated-out hash to its successor while its grace period
// lasts; revoke is then when it ends) and then the key's user, team and membership in one
// batch.
func (a *Authenticator) load(ctx context.Context, token string, now time.Time) (p *Principal, revoke *time.Time, err error) {
	k, err := a.o.Store.GetKey(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if k.IsPointer() {
		if k.RevokeAt == nil || !now.Before(*k.RevokeAt) {
			return nil, nil, fmt.Errorf("key revoked: %w", store.ErrNotFound)
		}
		revoke = k.RevokeAt
		if k, err = a.o.Store.GetKey(ctx, k.ActiveToken); err != nil {
			return nil, nil, err
		}
		if k.IsPointer() {
			return nil, nil, fmt.Errorf("key rotated twice: %w", store.ErrNotFound)
		}
	}
	u, t, m, err := a.o.Store.BatchRecords(ctx, aws.ToString(k.UserID), aws.ToString(k.TeamID))
	if err != nil {
		return nil, nil, err
	}
	p = &Principal{
		Role:   RoleInternalUser,
		UserID: aws.ToString(k.UserID),
		Token:  k.Token,
		Key:    k,
		User:   u,
		Team:   t,
		Models: a.o.Models,
	}
	if u != nil && u.UserRole != "" {
		p.Role = u.UserRole
	}
	if m != nil && m.MaxBudget != nil {
		p.Membership = m
	}
	return p, revoke, nil
}

// check applies the per-request checks in LiteLLM's order: blocked key, expired key,
// blocked team.
func check(p *Principal, now time.Time) error {
	k := p.Key
	if k.Blocked {
		return authError("Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.")
	}
	if k.Expires != nil && k.Expires.Before(now) {
		return openai.Errorf(http.StatusUnauthorized, TypeExpiredKey, fmt.Sprintf(
			"Authentication Error - Expired Key. Key Expiry time %s and current time %s",
			PyTime(*k.Expires), PyTime(now))).WithParam(KeyName(k.Token))
	}
	if p.Team != nil && p.Team.Blocked {
		return authError(fmt.Sprintf("Authentication Error, Team=%s is blocked. Update via `/team/unblock` if you're an admin.", p.Team.TeamID))
	}
	return nil
}

// cached returns the cached principal of token, if it may be served, and whether the caller
// is to refresh it (once per stale entry).
func (a *Authenticator) cached(token string, now time.Time) (p *Principal, refresh, ok bool) {
	if a.o.CacheTTL <= 0 {
		return nil, false, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.cache[token]
	if !ok || !now.Before(c.stale) {
		return nil, false, false
	}
	if !now.Before(c.exp) && !c.refreshing {
		c.refreshing, refresh = true, true
		a.cache[token] = c
	}
	cp := c.p
	return &cp, refresh, true
}

// remember caches p for CacheTTL, or until revoke when the key is a rotated-out one.
func (a *Authenticator) remember(token string, p *Principal, now time.Time, revoke *time.Time) {
	if a.o.CacheTTL <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.o.CacheSize {
		for t, c := range a.cache { // drop expired entries, else an arbitrary one
			if !now.Before(c.exp) {
				delete(a.cache, t)
			}
		}
		for t := range a.cache {
			if len(a.cache) < a.o.CacheSize {
				break
			}
			delete(a.cache, t)
		}
	}
	exp, stale := now.Add(a.o.CacheTTL), now.Add(2*a.o.CacheTTL)
	if revoke != nil && revoke.Before(stale) { // a rotated-out key is never served past its revocation
		stale = *revoke
		if revoke.Before(exp) {
			exp = *revoke
		}
	}
	a.cache[token] = cached{p: *p, exp: exp, stale: stale}
}

// authError is LiteLLM's 401 for an auth failure: type auth_error, param "None".
func authError(msg string) *openai.Error {
	return openai.Errorf(http.StatusUnauthorized, openai.TypeAuth, msg).WithParam("None")
}

// PyTime formats t as Python's str(datetime) in UTC: "2024-01-01 00:00:00+00:00", with
// microseconds when there are any.
func PyTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05+00:00")
	}
	return t.Format("2006-01-02 15:04:05.000000+00:00")
}
