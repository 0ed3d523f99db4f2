package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
)

// generateRequest is /key/generate's body.
type generateRequest struct {
	keyFields
	Key Opt[string] `json:"key"` // a custom key value
}

// keyObject is a key record as LiteLLM returns it (LiteLLM_VerificationToken).
func keyObject(k *store.Key) map[string]any {
	m := object(k)
	m["expires"] = timeOrNil(k.Expires)
	m["litellm_budget_table"] = nil
	m["object_permission"] = nil
	m["organization_id"] = nil
	m["allowed_cache_controls"] = []string{}
	m["config"] = map[string]any{}
	m["permissions"] = map[string]any{}
	if k.Tags == nil {
		m["tags"] = nil
	}
	return m
}

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// generatedKey is GenerateKeyResponse: the record plus the raw key, shown only once.
func generatedKey(raw string, k *store.Key, duration Opt[string]) map[string]any {
	m := keyObject(k)
	m["key"] = raw
	m["token_id"] = k.Token
	m["token"] = k.Token
	m["duration"] = duration
	return m
}

// keyGenerate is POST /key/generate.
func (h *handler) keyGenerate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req generateRequest
	if err := decodeBytes(body, &req); err != nil {
		return err
	}
	raw, k, err := h.createKey(r, p, &req, body)
	if err != nil {
		return err
	}
	return writeJSON(w, generatedKey(raw, k, req.Duration))
}

// readBody reads the body under the size limit.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.bodyLimit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, openai.Errorf(http.StatusRequestEntityTooLarge, openai.TypeInvalidRequest,
				fmt.Sprintf("Request body is larger than the limit of %d bytes", h.bodyLimit))
		}
		return nil, badRequest("Could not read the request body: %v", err)
	}
	return body, nil
}

// createKey applies LiteLLM's /key/generate rules and stores the key (with its user, when
// the user does not exist yet, in the same transaction). body is the request as sent, for
// custom_key_generate.
func (h *handler) createKey(r *http.Request, p *auth.Principal, req *generateRequest, body []byte) (string, *store.Key, error) {
	ctx := r.Context()
	h.applyDefaults(&req.keyFields)
	if err := h.takeTier(ctx, &req.keyFields, req.BudgetID); err != nil {
		return "", nil, err
	}
	if err := h.checkKeyRequest(r, p, &req.keyFields, nil, body); err != nil {
		return "", nil, err
	}
	if h.KeyDecider != nil {
		d, err := h.KeyDecider.Decide(ctx, body)
		if err != nil {
			h.Logger.ErrorContext(ctx, "admin: custom_key_generate failed", "error", err)
			return "", nil, mgmtError(http.StatusServiceUnavailable, "custom_key_generate could not be reached, so the key was not generated: "+err.Error())
		}
		if !d.Decision {
			return "", nil, invalid(d.Message)
		}
	}
	raw := req.Key.V
	if req.Key.Has() {
		if err := checkKeyValue("key", raw, h.Config.GeneralSettings.MasterKey); err != nil {
			return "", nil, err
		}
	} else {
		var err error
		if raw, err = auth.NewKey(); err != nil {
			return "", nil, err
		}
	}
	now := h.Now().UTC()
	k := &store.Key{
		Token:    auth.Hash(raw),
		KeyName:  auth.KeyName(raw),
		Models:   []string{},
		Aliases:  map[string]string{},
		Metadata: map[string]any{},
	}
	k.CreatedAt, k.UpdatedAt = now, now
	k.CreatedBy, k.UpdatedBy = p.UserID, p.UserID
	req.apply(k, now, h.loc())
	if req.Spend.Has() {
		k.Spend = req.Spend.V
	}
	if err := h.limitNewKey(r, p, k); err != nil {
		return "", nil, err
	}
	err := store.Retry(ctx, func() error {
		tx := h.Store.Tx()
		if uid := aws.ToString(k.UserID); uid != "" {
			// LiteLLM creates the user of a key that names an unknown user.
			if _, err := h.Store.GetUser(ctx, uid); errors.Is(err, store.ErrNotFound) {
				if err := tx.PutUser(newUser(uid, now, p.UserID)); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		if err := tx.PutKey(k); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			if errors.Is(err, store.ErrUserExists) {
				return fmt.Errorf("user created concurrently: %w", store.ErrConflict)
			}
			return err
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrAliasTaken):
		return "", nil, aliasTaken(aws.ToString(k.KeyAlias))
	case errors.Is(err, store.ErrKeyExists):
		return "", nil, keyValueRefused()
	case err != nil:
		return "", nil, err
	}
	h.Auth.Invalidate()
	h.deliver(ctx, k, raw)
	return raw, k, nil
}

// deliver stores a new key's value in Secrets Manager under its alias when
// store_virtual_keys is on. A failure is logged, not returned: the key works and the
// response carries it; only its copy in Secrets Manager is missing.
func (h *handler) deliver(ctx context.Context, k *store.Key, raw string) {
	if err := h.Keys.Deliver(ctx, aws.ToString(k.KeyAlias), raw); err != nil {
		h.Logger.ErrorContext(ctx, "admin: storing the key in Secrets Manager failed", "key_alias", aws.ToString(k.KeyAlias), "error", err)
	}
}

// newUser is the record LiteLLM creates for a user it first sees on a key or team.
func newUser(id string, now time.Time, by string) *store.User {
	u := &store.User{UserID: id, UserRole: auth.RoleInternalUser, Models: []string{}, Teams: []string{}, Metadata: map[string]any{}}
	u.CreatedAt, u.UpdatedAt, u.CreatedBy, u.UpdatedBy = now, now, by, by
	return u
}

// rotationCheck refuses auto_rotate without a usable setup: a rotation_interval is needed;
// with store_virtual_keys off, the new secret could not reach the key's users; on, the
// secret is stored under key_alias, which is then required. For an existing key (old), what
// the request leaves out is the key's, and a request that touches none of the three leaves
// the setup as it was.
func (h *handler) rotationCheck(f *keyFields, old *store.Key) error {
	autoRotate, interval, alias := f.AutoRotate.Has() && f.AutoRotate.V, f.RotationInterval, f.KeyAlias
	if old != nil {
		if !f.AutoRotate.Set && !interval.Set && !alias.Set {
			return nil
		}
		if !f.AutoRotate.Set {
			autoRotate = old.AutoRotate
		}
		if !interval.Set && old.RotationInterval != nil {
			interval = Of(*old.RotationInterval)
		}
		if !alias.Set && old.KeyAlias != nil {
			alias = Of(*old.KeyAlias)
		}
	}
	if !autoRotate {
		return nil
	}
	if !interval.Has() {
		return invalid("rotation_interval is required when auto_rotate=True (e.g. \"30d\").")
	}
	if !h.Config.GeneralSettings.StoreVirtualKeys {
		return invalid("auto_rotate=True needs general_settings.store_virtual_keys: true, so rotated keys are stored where applications can read them.")
	}
	if !alias.Has() || alias.V == "" {
		return invalid("key_alias is required when auto_rotate=True and store_virtual_keys is enabled. The key_alias names the stored secret.")
	}
	return nil
}

// keyTeam reads the team a key request names (nil when it names none); LiteLLM's 400 when
// the team does not exist.
func (h *handler) keyTeam(r *http.Request, id Opt[string]) (*store.Team, error) {
	if !id.Has() || id.V == "" {
		return nil, nil
	}
	t, err := h.Store.GetTeam(r.Context(), id.V)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid(fmt.Sprintf("Team doesn't exist in db. Team=%s. Create team via `/team/new` call.", id.V))
	}
	return t, err
}

// maskKey shows a rejected key value as LiteLLM does: "abcd****wxyz".
func maskKey(s string) string {
	if len(s) <= 8 {
		return "****"
	}
	return s[:4] + "****" + s[len(s)-4:]
}

func (h *handler) loc() *time.Location {
	if tz := h.Config.LiteLLMSettings.Timezone; tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			return l
		}
	}
	return time.UTC
}

// keyTarget resolves a raw key or hash to its record. A rotated-out value still in its
// grace period names the key it was rotated into (so admins can see, block or delete it);
// ptr is then the old hash. ErrNotFound when there is none.
func (h *handler) keyTarget(r *http.Request, keyOrHash string) (k *store.Key, ptr string, err error) {
	if err := checkID("key", keyOrHash); err != nil {
		return nil, "", err
	}
	k, err = h.Store.GetKey(r.Context(), auth.TokenOf(keyOrHash))
	if err != nil || !k.IsPointer() {
		return k, "", err
	}
	if k.RevokeAt == nil || !h.Now().Before(*k.RevokeAt) {
		return nil, "", fmt.Errorf("key revoked: %w", store.ErrNotFound)
	}
	ptr = k.Token
	if k, err = h.Store.GetKey(r.Context(), k.ActiveToken); err == nil && k.IsPointer() {
		err = fmt.Errorf("key rotated twice: %w", store.ErrNotFound)
	}
	return k, ptr, err
}

// keyFor resolves the key a key route names and checks the caller may act on it; missing
// is the route's answer for a key that does not exist, which a caller unrelated to the key
// gets too.
func (h *handler) keyFor(r *http.Request, p *auth.Principal, keyOrHash string, missing error) (*store.Key, string, error) {
	k, ptr, err := h.keyTarget(r, keyOrHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", missing
	} else if err != nil {
		return nil, "", err
	}
	team, err := h.teamOf(r, aws.ToString(k.TeamID))
	if err != nil {
		return nil, "", err
	}
	if err := mayAct(r, p, target{user: aws.ToString(k.UserID), token: k.Token, team: team}, missing); err != nil {
		return nil, "", err
	}
	return k, ptr, nil
}

// teamOf reads a team by id; nil when the id is empty or the team is gone.
func (h *handler) teamOf(r *http.Request, id string) (*store.Team, error) {
	if id == "" {
		return nil, nil
	}
	t, err := h.Store.GetTeam(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return t, err
}

// keyInfo is GET /key/info?key=.
func (h *handler) keyInfo(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	key := r.URL.Query().Get("key")
	if key == "" {
		if p.Key == nil {
			return badRequest("No key passed in. Pass ?key=<key or hash>.").WithParam("key")
		}
		key = p.Key.Token
	}
	k, _, err := h.keyFor(r, p, key, openai.Errorf(http.StatusNotFound, openai.TypeNotFound, "Key not found in database").WithParam("key"))
	if err != nil {
		return err
	}
	info := keyObject(k)
	delete(info, "token")
	return writeJSON(w, map[string]any{"key": key, "info": info})
}

func isMember(t *store.Team, userID string) bool { return memberOf(t, userID) != nil }

// updateKeyRequest is /key/update's body.
type updateKeyRequest struct {
	keyFields
	Key                string       `json:"key"`
	TempBudgetIncrease Opt[float64] `json:"temp_budget_increase"`
	TempBudgetExpiry   Opt[string]  `json:"temp_budget_expiry"`
}

// keyUpdate is POST /key/update.
func (h *handler) keyUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req updateKeyRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if req.Key == "" {
		return badRequest("key is required").WithParam("key")
	}
	if req.TempBudgetIncrease.Set != req.TempBudgetExpiry.Set {
		return invalid("temp_budget_increase and temp_budget_expiry must be set together.")
	}
	if req.TempBudgetIncrease.Has() {
		if err := checkAmount("temp_budget_increase", req.TempBudgetIncrease.V); err != nil {
			return err
		}
	}
	if req.TempBudgetExpiry.Has() {
		if _, err := time.Parse(time.RFC3339, req.TempBudgetExpiry.V); err != nil {
			if _, err := time.Parse(time.DateOnly, req.TempBudgetExpiry.V); err != nil {
				return badRequest("temp_budget_expiry must be an ISO date or time (2026-01-31 or 2026-01-31T00:00:00Z), got %q", req.TempBudgetExpiry.V).WithParam("temp_budget_expiry")
			}
		}
	}
	missing := notFound(fmt.Sprintf("Key not found, passed key=%s", auth.KeyName(req.Key)))
	old, _, err := h.keyFor(r, p, req.Key, missing)
	if err != nil {
		return err
	}
	if req.TempBudgetIncrease.Set && !p.IsProxyAdmin() {
		return forbidden(fmt.Sprintf("Only a proxy admin can raise a budget: temp_budget_increase. Your role=%s", p.Role)).WithParam("temp_budget_increase")
	}
	if err := h.takeTier(r.Context(), &req.keyFields, req.BudgetID); err != nil {
		return err
	}
	if err := h.checkKeyRequest(r, p, &req.keyFields, old, nil); err != nil {
		return err
	}
	now := h.Now().UTC()
	k, err := h.Store.UpdateKey(r.Context(), old.Token, func(k *store.Key) error {
		before, err := store.Clone(k)
		if err != nil {
			return err
		}
		req.apply(k, now, h.loc())
		if err := h.narrowsKey(r, p, before, k); err != nil {
			return err
		}
		if req.TempBudgetIncrease.Set {
			k.Metadata["temp_budget_increase"] = req.TempBudgetIncrease.Ptr()
			k.Metadata["temp_budget_expiry"] = req.TempBudgetExpiry.Ptr()
		}
		k.UpdatedAt, k.UpdatedBy = now, p.UserID
		return nil
	})
	switch {
	case errors.Is(err, store.ErrAliasTaken):
		return aliasTaken(req.KeyAlias.V)
	case errors.Is(err, store.ErrNotFound):
		return missing
	case err != nil:
		return err
	}
	h.Auth.Invalidate()
	out := keyObject(k)
	out["key"] = req.Key
	return writeJSON(w, out)
}

// deleteKeysRequest is /key/delete's body.
type deleteKeysRequest struct {
	Keys       []string `json:"keys"`
	KeyAliases []string `json:"key_aliases"`
}

// keyDelete is POST /key/delete.
func (h *handler) keyDelete(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req deleteKeysRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if len(req.Keys) == 0 && len(req.KeyAliases) == 0 {
		return invalid("Either keys or key_aliases must be passed in.")
	}
	// A key the caller may not reach is skipped as a missing one is, so the answer is the
	// same whether it exists.
	missing := notFound("No keys found")
	var found []*store.Key
	var deleted []string
	add := func(passed, keyOrHash string) error {
		k, ptr, err := h.keyFor(r, p, keyOrHash, missing)
		if errors.Is(err, missing) {
			return nil
		} else if err != nil {
			return err
		}
		found, deleted = append(found, k), append(deleted, passed)
		if ptr != "" {
			found = append(found, &store.Key{Token: ptr}) // the rotated-out value goes with it
		}
		return nil
	}
	for _, key := range req.Keys {
		if err := add(key, key); err != nil {
			return err
		}
	}
	for _, alias := range req.KeyAliases {
		if err := checkID("key_aliases", alias); err != nil {
			return err
		}
		token, err := h.Store.KeyTokenByAlias(r.Context(), alias)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if err := add(alias, token); err != nil {
			return err
		}
	}
	if len(found) == 0 {
		return missing
	}
	if err := h.Store.DeleteKeys(r.Context(), found); err != nil {
		return err
	}
	h.Auth.Invalidate()
	return writeJSON(w, map[string]any{"deleted_keys": deleted})
}

// blockKeyRequest is /key/block's and /key/unblock's body.
type blockKeyRequest struct {
	Key string `json:"key"`
}

func (h *handler) keyBlock(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.setKeyBlocked(w, r, p, true)
}

func (h *handler) keyUnblock(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.setKeyBlocked(w, r, p, false)
}

// setKeyBlocked is POST /key/block and /key/unblock (see the permission table).
func (h *handler) setKeyBlocked(w http.ResponseWriter, r *http.Request, p *auth.Principal, blocked bool) error {
	var req blockKeyRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if req.Key == "" {
		return invalid("Invalid key format.")
	}
	old, _, err := h.keyFor(r, p, req.Key, notFound(fmt.Sprintf("Key %s not found", auth.KeyName(req.Key))))
	if err != nil {
		return err
	}
	now := h.Now().UTC()
	k, err := h.Store.UpdateKey(r.Context(), old.Token, func(k *store.Key) error {
		k.Blocked = blocked
		k.UpdatedAt, k.UpdatedBy = now, p.UserID
		return nil
	})
	if err != nil {
		return err
	}
	h.Auth.Invalidate()
	return writeJSON(w, keyObject(k))
}

// regenerateRequest is /key/regenerate's body (all optional).
type regenerateRequest struct {
	keyFields
	Key          string      `json:"key"`
	NewKey       Opt[string] `json:"new_key"`
	NewMasterKey Opt[string] `json:"new_master_key"`
	GracePeriod  Opt[string] `json:"grace_period"`
}

// keyRegenerate is POST /key/regenerate and /key/{key}/regenerate.
func (h *handler) keyRegenerate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req regenerateRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	key := req.Key
	if key == "" {
		key = r.PathValue("key")
	}
	if key == "" {
		return invalid("No key passed in.")
	}
	if req.NewKey.Has() {
		if err := checkKeyValue("new_key", req.NewKey.V, h.Config.GeneralSettings.MasterKey); err != nil {
			return err
		}
	}
	if h.isMasterKey(key) {
		// LiteLLM re-encrypts its database's secrets under new_master_key; llmgate keeps none,
		// and its master key is configuration, which the API does not write.
		if !req.NewMasterKey.Has() || req.NewMasterKey.V == "" {
			return invalid("New master key is required.")
		}
		return invalid("The master key cannot be regenerated through the API; change general_settings.master_key (or LITELLM_MASTER_KEY).")
	}
	grace, err := h.gracePeriod(req.GracePeriod)
	if err != nil {
		return err
	}
	missing := notFound(fmt.Sprintf("Key %s not found.", auth.KeyName(key)))
	old, _, err := h.keyFor(r, p, key, missing)
	if err != nil {
		return err
	}
	if err := h.takeTier(r.Context(), &req.keyFields, req.BudgetID); err != nil {
		return err
	}
	if err := h.checkKeyRequest(r, p, &req.keyFields, old, nil); err != nil {
		return err
	}
	now := h.Now().UTC()
	res, err := h.Keys.Rekey(r.Context(), keyvault.RekeyInput{
		Token: old.Token, NewKey: req.NewKey.V, Grace: grace, Now: now,
		Change: func(k *store.Key) error {
			before, err := store.Clone(k)
			if err != nil {
				return err
			}
			req.apply(k, now, h.loc())
			k.UpdatedBy = p.UserID
			return h.narrowsKey(r, p, before, k)
		},
	})
	if errors.Is(err, store.ErrNotFound) {
		return missing
	} else if errors.Is(err, store.ErrKeyExists) {
		return keyValueRefused()
	} else if err != nil {
		return err
	}
	if res.DeliveryErr != nil {
		// Re-keyed; the old value keeps working until the rotator finishes the delivery.
		h.Logger.ErrorContext(r.Context(), "admin: storing the regenerated key in Secrets Manager failed; the rotator retries", "key_alias", aws.ToString(res.Record.KeyAlias), "error", res.DeliveryErr)
	}
	h.Auth.Invalidate()
	return writeJSON(w, generatedKey(res.Key, res.Record, req.Duration))
}

// isMasterKey reports whether an admin request names the master key, raw or hashed.
func (h *handler) isMasterKey(keyOrHash string) bool {
	mk := h.Config.GeneralSettings.MasterKey
	if mk == "" {
		return false
	}
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	return eq(keyOrHash, mk) || eq(auth.TokenOf(keyOrHash), auth.Hash(mk))
}

// gracePeriod is how long /key/regenerate keeps the old value working: grace_period, else
// LITELLM_KEY_ROTATION_GRACE_PERIOD as the rotator reads it (none: revoked at once).
func (h *handler) gracePeriod(g Opt[string]) (time.Duration, error) {
	if g.Has() && g.V != "" {
		d, err := duration.Parse(g.V)
		if err != nil {
			return 0, badRequest("Invalid grace_period: %v", err).WithParam("grace_period")
		}
		return d.Approx(), nil
	}
	o, err := rotation.OptionsFromConfig(h.Config, os.LookupEnv)
	if err != nil {
		return 0, mgmtError(http.StatusInternalServerError, err.Error())
	}
	return o.Grace, nil
}

// keyList is GET /key/list.
func (h *handler) keyList(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q := r.URL.Query()
	page, err := intParam(q.Get("page"), 1, 1, math.MaxInt32, "page")
	if err != nil {
		return err
	}
	size, err := intParam(q.Get("size"), 10, 1, 100, "size")
	if err != nil {
		return err
	}
	f := store.KeyFilter{UserID: q.Get("user_id"), TeamID: q.Get("team_id")}
	for _, id := range []string{"user_id", "team_id", "key_hash", "key_alias"} {
		if err := checkID(id, q.Get(id)); err != nil {
			return err
		}
	}
	if err := h.mayList(r, p, &f); err != nil {
		return err
	}
	desc := q.Get("sort_order") != "asc"
	sortBy := q.Get("sort_by")
	if q.Has("cursor") {
		return h.keyListAfter(w, r, f, desc, size)
	}
	var keys []store.Key
	total := 0
	switch {
	case q.Get("key_hash") != "" || q.Get("key_alias") != "":
		token := q.Get("key_hash")
		if a := q.Get("key_alias"); a != "" {
			if token, err = h.Store.KeyTokenByAlias(r.Context(), a); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if token != "" {
			k, err := h.Store.GetKey(r.Context(), auth.TokenOf(token))
			if err == nil && !k.IsPointer() && matches(k, f) {
				keys, total = []store.Key{*k}, 1
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		keys = pageOf(keys, page, size)
	case sortBy == "" || sortBy == "created_at":
		keys, total, err = h.Store.ListKeys(r.Context(), f, store.Page{Number: page, Size: size, Desc: desc})
		if err != nil {
			return err
		}
	default:
		all, err := h.Store.AllKeys(r.Context(), f)
		if err != nil {
			return err
		}
		if err := sortKeys(all, sortBy, desc); err != nil {
			return err
		}
		keys, total = pageOf(all, page, size), len(all)
	}
	return writeJSON(w, map[string]any{
		"keys":         listedKeys(keys, q.Get("return_full_object") == "true"),
		"total_count":  total,
		"current_page": page,
		"total_pages":  (total + size - 1) / size,
	})
}

// listedKeys is /key/list's "keys": full objects, or the hashes.
func listedKeys(keys []store.Key, full bool) []any {
	out := make([]any, 0, len(keys))
	for i := range keys {
		if full {
			out = append(out, keyObject(&keys[i]))
		} else {
			out = append(out, keys[i].Token)
		}
	}
	return out
}

// keyCountLimit is how many keys /key/list?cursor=&count=true counts at most.
const keyCountLimit = 1000

// keyListAfter is /key/list?cursor= (llmgate's own; "" for the first page): one page of
// keys ordered by created_at and next_cursor (null after the last), without total_count,
// which costs a read of every key: a page takes the same time at 10 keys or 100,000. With
// count=true it adds total_count counted up to keyCountLimit, and total_count_capped: true
// when there are more (total_count is then a lower bound): the console's Keys card.
func (h *handler) keyListAfter(w http.ResponseWriter, r *http.Request, f store.KeyFilter, desc bool, size int) error {
	q := r.URL.Query()
	if sb := q.Get("sort_by"); sb != "" && sb != "created_at" {
		return badRequest("cursor pages are ordered by created_at; sort_by=%s needs page and size", sb).WithParam("sort_by")
	}
	if q.Get("key_hash") != "" || q.Get("key_alias") != "" {
		return badRequest("key_hash and key_alias find one key: ask without cursor").WithParam("cursor")
	}
	count := q.Get("count")
	if count != "" && count != "true" && count != "false" {
		return badRequest("count must be true or false; got %q", count).WithParam("count")
	}
	keys, next, err := h.Store.ListKeysAfter(r.Context(), f, desc, q.Get("cursor"), size)
	if errors.Is(err, store.ErrBadCursor) {
		return badCursor()
	}
	if err != nil {
		return err
	}
	out := map[string]any{"keys": listedKeys(keys, q.Get("return_full_object") == "true"), "next_cursor": nullable(next)}
	if count == "true" {
		n, more, err := h.Store.CountKeys(r.Context(), f, keyCountLimit)
		if err != nil {
			return err
		}
		out["total_count"], out["total_count_capped"] = n, more
	}
	return writeJSON(w, out)
}

func badCursor() error {
	return badRequest("cursor is not one this list handed out; start again without it").WithParam("cursor")
}

// nullable is s, or nil (JSON null) when empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// mayList scopes a non-admin's /key/list: a team's keys when it may reach the team's keys
// (its admin, or a member the team lets), else its own user's.
func (h *handler) mayList(r *http.Request, p *auth.Principal, f *store.KeyFilter) error {
	denied := forbidden("You are not authorized to check another user's keys")
	if mayAct(r, p, target{}, denied) == nil {
		return nil // a role that sees every key
	}
	if f.TeamID != "" {
		team, err := h.teamOf(r, f.TeamID)
		if err != nil {
			return err
		}
		return mayAct(r, p, target{team: team}, denied)
	}
	if f.UserID == "" {
		f.UserID = p.UserID
	}
	return mayAct(r, p, target{user: f.UserID}, denied)
}

func matches(k *store.Key, f store.KeyFilter) bool {
	return (f.UserID == "" || aws.ToString(k.UserID) == f.UserID) && (f.TeamID == "" || aws.ToString(k.TeamID) == f.TeamID)
}

func pageOf[T any](xs []T, page, size int) []T {
	start := (page - 1) * size
	if start >= len(xs) {
		return nil
	}
	return xs[start:min(start+size, len(xs))]
}

func sortKeys(keys []store.Key, by string, desc bool) error {
	var less func(a, b *store.Key) bool
	switch by {
	case "spend":
		less = func(a, b *store.Key) bool { return a.Spend < b.Spend }
	case "max_budget":
		less = func(a, b *store.Key) bool { return aws.ToFloat64(a.MaxBudget) < aws.ToFloat64(b.MaxBudget) }
	case "updated_at":
		less = func(a, b *store.Key) bool { return a.UpdatedAt.Before(b.UpdatedAt) }
	case "token":
		less = func(a, b *store.Key) bool { return a.Token < b.Token }
	case "key_alias":
		less = func(a, b *store.Key) bool { return aws.ToString(a.KeyAlias) < aws.ToString(b.KeyAlias) }
	default:
		return badRequest("Invalid sort_by %q: use spend, max_budget, created_at, updated_at, token or key_alias", by).WithParam("sort_by")
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if desc {
			return less(&keys[j], &keys[i])
		}
		return less(&keys[i], &keys[j])
	})
	return nil
}

func intParam(s string, def, lo, hi int, name string) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("Invalid %s %q: want an integer from %d to %d", name, s, lo, hi).WithParam(name)
	}
	return n, nil
}

// resetSpendRequest is /key/{key}/reset_spend's body.
type resetSpendRequest struct {
	ResetTo Opt[float64] `json:"reset_to"`
}

// keyResetSpend is POST /key/{key}/reset_spend (proxy admins: it gives a key budget back).
func (h *handler) keyResetSpend(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req resetSpendRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if !req.ResetTo.Has() {
		return badRequest("reset_to is required").WithParam("reset_to")
	}
	old, _, err := h.keyFor(r, p, r.PathValue("key"), notFound(fmt.Sprintf("Key %s not found.", auth.KeyName(r.PathValue("key")))))
	if err != nil {
		return err
	}
	to := req.ResetTo.V
	prev, k, err := h.Store.ResetKeySpend(r.Context(), old.Token, func(k *store.Key) error {
		switch {
		case to < 0:
			return invalid(fmt.Sprintf("reset_to must be >= 0. Received: %s", pyFloat(to)))
		case to > k.Spend:
			return invalid(fmt.Sprintf("reset_to (%s) must be <= current spend (%s)", pyFloat(to), pyFloat(k.Spend)))
		case k.MaxBudget != nil && to > *k.MaxBudget:
			return invalid(fmt.Sprintf("reset_to (%s) must be <= max_budget (%s)", pyFloat(to), pyFloat(*k.MaxBudget)))
		}
		return nil
	}, to)
	if err != nil {
		return err
	}
	h.Auth.Invalidate()
	return writeJSON(w, map[string]any{
		"key_hash":        k.Token,
		"spend":           k.Spend,
		"previous_spend":  prev,
		"max_budget":      k.MaxBudget,
		"budget_reset_at": timeOrNil(k.BudgetResetAt),
	})
}
