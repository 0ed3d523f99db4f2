// Package admin is the http.Handler for llmgate's management API, compatible with LiteLLM
// Proxy's: keys, users, teams, spend, and the health routes.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/console"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/responseid"
	"github.com/llmgate/llmgate/internal/store"
)

// Options are the admin handler's dependencies.
type Options struct {
	Config *config.Config
	Store  *store.Store
	Auth   *auth.Authenticator
	// KeyDecider is general_settings.custom_key_generate (nil when not configured).
	KeyDecider KeyDecider
	// Keys re-keys keys and stores key values in Secrets Manager (store_virtual_keys); nil
	// re-keys without storing.
	Keys   *keyvault.Rekeyer
	Logger *slog.Logger
	Now    func() time.Time // for tests; time.Now by default
	// ModelsChanged is called after /model/new, /model/update or /model/delete changed the
	// stored models, so this process's router reads them at once (nil: nothing to tell).
	ModelsChanged func()
}

// handler serves the management routes.
type handler struct {
	Options
	bodyLimit int64
	// ids reads the response ids the gateway answers with (same master key): the call a
	// /spend/logs?request_id= names.
	ids *responseid.Codec
}

// route is one management route: who may call it (its row of the permission model) and
// what serves it.
type route struct {
	pattern string
	permission
	serve func(h *handler, w http.ResponseWriter, r *http.Request, p *auth.Principal) error
}

// routes is the route table and the permission model in one: a new management route is a
// line here, with the roles that may call it and the relations to its object that let a
// non-admin act (the endpoint calls mayAct with the object it resolved). Its fields a
// non-admin may change are in fieldRules.
var routes = []route{
	{"POST /key/generate", keyWrite(permKeyGenerate, "You are not authorized to create keys for this team"), (*handler).keyGenerate},
	{"GET /key/info", readKey, (*handler).keyInfo},
	{"POST /key/update", keyWrite(permKeyUpdate, "You are not authorized to update this key"), (*handler).keyUpdate},
	{"POST /key/delete", keyWrite(permKeyDelete, "You are not authorized to delete this key"), (*handler).keyDelete},
	{"POST /key/block", teamAdminWrite("Only proxy admins and team admins can block or unblock keys."), (*handler).keyBlock},
	// Unblocking lifts what an admin may have imposed: proxy admins only.
	{"POST /key/unblock", permission{roles: adminOnly}, (*handler).keyUnblock},
	{"POST /key/regenerate", keyWrite(permKeyRegenerate, "You are not authorized to regenerate this key"), (*handler).keyRegenerate},
	{"POST /key/{key}/regenerate", keyWrite(permKeyRegenerate, "You are not authorized to regenerate this key"), (*handler).keyRegenerate},
	{"GET /key/list", permission{roles: []string{auth.RoleProxyAdmin, auth.RoleProxyAdminViewer, auth.RoleInternalUser}, all: adminViewers,
		grants: grantKeyUser | grantTeamAdmin | grantTeamMember, member: permKeyList,
		denied: "You are not authorized to check another user's keys"}, (*handler).keyList},
	// Resetting spend gives a key back budget: proxy admins only.
	{"POST /key/{key}/reset_spend", permission{roles: adminOnly}, (*handler).keyResetSpend},
	{"POST /user/new", permission{roles: adminOnly}, (*handler).userNew},
	{"GET /user/info", readUser, (*handler).userInfo},
	{"POST /user/update", permission{roles: selfUpdaters, grants: grantOwner,
		denied: "User does not have permission to update this user. Only PROXY_ADMIN can update other users."}, (*handler).userUpdate},
	{"POST /user/delete", permission{roles: adminOnly}, (*handler).userDelete},
	{"GET /user/list", permission{roles: adminViewers, all: adminViewers}, (*handler).userList},
	// Organization admins create teams in their organization (teamNew checks which).
	{"POST /team/new", permission{roles: writers, grants: grantOrgAdmin}, (*handler).teamNew},
	{"GET /team/info", readTeam, (*handler).teamInfo},
	{"POST /team/update", teamManagers, (*handler).teamUpdate},
	// Deleting a team drops its keys and its spend history's name: its organization's admins
	// may, its own admins may not.
	{"POST /team/delete", permission{roles: writers, grants: grantOrgAdmin,
		denied: "Only proxy admins and the admins of the team's organization can delete a team."}, (*handler).teamDelete},
	{"POST /team/member_add", teamManagers, (*handler).teamMemberAdd},
	{"POST /team/member_delete", teamManagers, (*handler).teamMemberDelete},
	{"POST /team/member_update", teamManagers, (*handler).teamMemberUpdate},
	{"POST /team/block", permission{roles: adminOnly}, (*handler).teamBlock},
	{"POST /team/unblock", permission{roles: adminOnly}, (*handler).teamUnblock},
	{"GET /team/list", permission{all: adminViewers, grants: grantOwner}, (*handler).teamList},
	{"GET /spend/logs", permission{all: adminViewers, grants: grantKeyUser}, (*handler).spendLogs},
	{"GET /spend/tags", permission{roles: adminViewers, all: adminViewers}, (*handler).spendTags},
	{"POST /budget/new", permission{roles: adminOnly}, (*handler).budgetNew},
	{"POST /budget/update", permission{roles: adminOnly}, (*handler).budgetUpdate},
	{"POST /budget/delete", permission{roles: adminOnly}, (*handler).budgetDelete},
	{"POST /budget/info", permission{roles: adminViewers, all: adminViewers}, (*handler).budgetInfo},
	{"GET /budget/list", permission{roles: adminViewers, all: adminViewers}, (*handler).budgetList},
	{"GET /budget/settings", permission{roles: adminViewers, all: adminViewers}, (*handler).budgetSettings},
	// Who may read a key's info may read its daily spend (?api_key=); ?team_id= and ?user_id=
	// follow /team/info's and /user/info's rows; the group_by form is for admins and viewers.
	{"GET /spend/daily", readKey, (*handler).spendDaily},
	// Models stored in DynamoDB (store_model_in_db): a deployment names an upstream and the
	// secrets sent to it, so proxy admins only.
	{"POST /model/new", permission{roles: adminOnly}, (*handler).modelNew},
	{"POST /model/update", permission{roles: adminOnly}, (*handler).modelUpdate},
	{"PATCH /model/{id}/update", permission{roles: adminOnly}, (*handler).modelUpdate},
	{"POST /model/delete", permission{roles: adminOnly}, (*handler).modelDelete},
	{"GET /global/spend", permission{roles: adminViewers, all: adminViewers}, (*handler).globalSpend},
	{"GET /global/spend/report", permission{roles: adminViewers, all: adminViewers}, (*handler).globalSpendReport},
	{"GET /global/spend/keys", permission{roles: adminViewers, all: adminViewers}, (*handler).globalSpendKeys},
	{"GET /global/spend/teams", permission{roles: adminViewers, all: adminViewers}, (*handler).globalSpendTeams},
	{"GET /global/spend/models", permission{roles: adminViewers, all: adminViewers}, (*handler).globalSpendModels},
	{"GET /global/spend/tags", permission{roles: adminViewers, all: adminViewers}, (*handler).spendTags},
	{"POST /organization/new", permission{roles: adminOnly}, (*handler).orgNew},
	{"POST /organization/update", permission{roles: adminOnly}, (*handler).orgUpdate},
	{"PATCH /organization/update", permission{roles: adminOnly}, (*handler).orgUpdate},
	{"POST /organization/delete", permission{roles: adminOnly}, (*handler).orgDelete},
	{"GET /organization/info", permission{all: adminViewers, grants: grantOrgAdmin}, (*handler).orgInfo},
	{"GET /organization/list", permission{roles: adminViewers, all: adminViewers}, (*handler).orgList},
	{"POST /organization/member_add", permission{roles: adminOnly}, (*handler).orgMemberAdd},
	{"POST /organization/member_update", permission{roles: adminOnly}, (*handler).orgMemberUpdate},
	{"POST /organization/member_delete", permission{roles: adminOnly}, (*handler).orgMemberDelete},
	// Customers (end users); /end_user/* are LiteLLM's older names of the same routes.
	{"POST /customer/new", permission{roles: adminOnly}, (*handler).customerNew},
	{"GET /customer/info", permission{roles: adminViewers, all: adminViewers}, (*handler).customerInfo},
	{"POST /customer/update", permission{roles: adminOnly}, (*handler).customerUpdate},
	{"POST /customer/delete", permission{roles: adminOnly}, (*handler).customerDelete},
	{"GET /customer/list", permission{roles: adminViewers, all: adminViewers}, (*handler).customerList},
	{"POST /customer/block", permission{roles: adminOnly}, (*handler).customerBlock},
	{"POST /customer/unblock", permission{roles: adminOnly}, (*handler).customerUnblock},
	{"GET /customer/daily/activity", permission{roles: adminViewers, all: adminViewers}, (*handler).customerDailyActivity},
	{"POST /end_user/new", permission{roles: adminOnly}, (*handler).customerNew},
	{"GET /end_user/info", permission{roles: adminViewers, all: adminViewers}, (*handler).customerInfo},
	{"POST /end_user/update", permission{roles: adminOnly}, (*handler).customerUpdate},
	{"POST /end_user/delete", permission{roles: adminOnly}, (*handler).customerDelete},
	{"GET /end_user/list", permission{roles: adminViewers, all: adminViewers}, (*handler).customerList},
	{"POST /end_user/block", permission{roles: adminOnly}, (*handler).customerBlock},
	{"POST /end_user/unblock", permission{roles: adminOnly}, (*handler).customerUnblock},
	{"GET /end_user/daily/activity", permission{roles: adminViewers, all: adminViewers}, (*handler).customerDailyActivity},
}

// New returns the admin handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Keys == nil {
		o.Keys = keyvault.NewRekeyer(o.Store, nil)
	}
	h := &handler{Options: o, bodyLimit: o.Config.Settings.MaxRequestBodyBytes, ids: responseid.New(o.Config.GeneralSettings.MasterKey)}
	if h.bodyLimit <= 0 {
		h.bodyLimit = config.DefaultMaxRequestBodyBytes
	}
	mux := http.NewServeMux()
	// The console is static: it calls the routes below with the signed-in key.
	ui := console.Handler()
	mux.Handle("GET /ui", ui)
	mux.Handle("GET /ui/", ui)
	mux.HandleFunc("GET /health/liveliness", liveliness)
	mux.HandleFunc("GET /health/liveness", liveliness)
	mux.HandleFunc("GET /health/readiness", readiness(o.Store, o.Logger))
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.wrap(rt))
	}
	// Any other path or method gets a 404 in OpenAI's format, as on the gateway, not
	// ServeMux's plain-text 404 or 405.
	mux.HandleFunc("/", openai.InvalidURL)
	return mux
}

// wrap authenticates the caller, applies the route's role rule and writes the
// endpoint's error, if any, in OpenAI format.
func (h *handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read from the store, not the auth cache: a key revoked a moment ago on another
		// instance gets nothing here.
		p, err := h.Auth.FreshPrincipal(r.Context(), r)
		if err == nil {
			err = mayCall(rt, p, r.URL.Path)
		}
		if err != nil {
			openai.WriteError(w, err)
			return
		}
		if err := rt.serve(h, w, withPermission(r, rt.permission), p); err != nil {
			var oe *openai.Error
			if !errors.As(err, &oe) {
				h.Logger.ErrorContext(r.Context(), "admin: request failed", "route", rt.pattern, "error", err)
				err = storeError(err)
			}
			openai.WriteError(w, err)
		}
	})
}

// storeError turns a store failure that no endpoint handled into a client error.
func storeError(err error) error {
	var large *store.TooLargeError
	switch {
	case errors.As(err, &large):
		// Refused before any write: the request is too big, the store is fine.
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf(
			"This request needs %d writes in one transaction, over DynamoDB's limit of %d; nothing was written. "+
				"Split it into smaller requests (each member added or team joined takes 2 or 3 writes).",
			large.Writes, store.MaxTxItems))
	case errors.Is(err, store.ErrConflict):
		return openai.Errorf(http.StatusConflict, openai.TypeInvalidRequest, "The record was changed by another request; retry.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return openai.Errorf(http.StatusServiceUnavailable, openai.TypeUnavailable, "The request was cancelled before the store answered.")
	}
	return openai.Errorf(http.StatusServiceUnavailable, openai.TypeUnavailable, "The key store is unreachable; try again later.")
}

// mgmtError is the error of a management endpoint as LiteLLM's handle_exception_on_proxy
// writes it: type auth_error, param "None", the given status.
func mgmtError(status int, msg string) *openai.Error {
	return openai.Errorf(status, openai.TypeAuth, msg).WithParam("None")
}

func forbidden(msg string) *openai.Error { return mgmtError(http.StatusForbidden, msg) }

func notFound(msg string) *openai.Error { return mgmtError(http.StatusNotFound, msg) }

func invalid(msg string) *openai.Error { return mgmtError(http.StatusBadRequest, msg) }

// writeJSON writes a 200 JSON answer.
func writeJSON(w http.ResponseWriter, v any) error {
	openai.WriteJSON(w, http.StatusOK, v)
	return nil
}

// object turns a record into a JSON object, so responses can add or drop fields.
func object(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func liveliness(w http.ResponseWriter, _ *http.Request) {
	openai.WriteJSON(w, http.StatusOK, "I'm alive!")
}

// Pinger reports whether the state table is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

func readiness(s Pinger, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ping(r.Context()); err != nil {
			log.WarnContext(r.Context(), "readiness: table unreachable", "error", err)
			openai.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "db": "Not connected"})
			return
		}
		openai.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy", "db": "connected"})
	}
}
