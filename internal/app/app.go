// Package app wires llmgate's parts from a Config, so the local server and the Lambda
// functions build the same handlers the same way.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/gateway"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/limits"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/metrics"
	"github.com/llmgate/llmgate/internal/modeldb"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider/registry"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/router"
	"github.com/llmgate/llmgate/internal/store"
)

// App holds the built handlers and what they share.
type App struct {
	Config  *config.Config
	Store   *store.Store
	Gateway http.Handler // LLM routes
	Admin   http.Handler // management and health routes
	// Keys re-keys virtual keys and stores their values in Secrets Manager when
	// general_settings.store_virtual_keys is on (/key/generate, /key/regenerate).
	Keys *keyvault.Rekeyer
	// Rotator is the scheduled maintenance: budget resets, key rotation, cleanup.
	Rotator *rotation.Rotator
	Logger  *slog.Logger

	auth    *auth.Authenticator
	metrics http.Handler // GET /metrics; nil: not served
}

// Option changes how New builds the app.
type Option func(*options)

type options struct {
	recorder metrics.Recorder
	page     http.Handler
}

// WithMetrics tells rec of every LLM call and upstream attempt. page, if not nil, serves
// the figures at GET /metrics from Handler (the local server; on Lambda rec writes EMF).
func WithMetrics(rec metrics.Recorder, page http.Handler) Option {
	return func(o *options) { o.recorder, o.page = rec, page }
}

// New builds the store and the handlers.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	st, err := store.New(ctx, store.Options{
		Table:    cfg.Settings.TableName,
		Region:   cfg.Settings.Region,
		Endpoint: cfg.Settings.DynamoDBEndpoint,

		EscrowShards: cfg.Settings.EscrowShards,
	})
	if err != nil {
		return nil, fmt.Errorf("build store: %w", err)
	}
	authn := auth.New(auth.OptionsFromConfig(cfg, st, log))
	decider, err := admin.NewKeyDecider(ctx, cfg.GeneralSettings.CustomKeyGenerate, cfg.Settings.Region)
	if err != nil {
		return nil, err
	}
	gw, rtr, err := newGateway(cfg, log, authn, newLimiter(cfg, st, log), o.recorder)
	if err != nil {
		return nil, err
	}
	var llm http.Handler = gw
	var modelsChanged func()
	if cfg.GeneralSettings.StoreModelInDB {
		sync := modeldb.NewSync(modeldb.Options{Config: cfg, Source: st, Router: rtr, Logger: log})
		llm, modelsChanged = sync.Handler(gw), sync.Invalidate
	}
	keys, rot, err := newRotator(ctx, cfg, st, log)
	if err != nil {
		return nil, err
	}
	adm := admin.New(admin.Options{Config: cfg, Store: st, Auth: authn, KeyDecider: decider, Keys: keys, Logger: log, ModelsChanged: modelsChanged})
	return &App{
		Config:  cfg,
		Store:   st,
		Gateway: withModelRoutes(llm, adm),
		Admin:   adm,
		Keys:    keys,
		Rotator: rot,
		Logger:  log,
		auth:    authn,
		metrics: o.page,
	}, nil
}

// newRotator builds the key delivery (Secrets Manager when store_virtual_keys is on) and the
// rotator, which settles stale reservations through the store.
func newRotator(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*keyvault.Rekeyer, *rotation.Rotator, error) {
	var vault *keyvault.Vault
	if cfg.GeneralSettings.StoreVirtualKeys {
		v, err := keyvault.Connect(ctx, cfg.Settings.Region, cfg.Settings.SecretsPrefix)
		if err != nil {
			return nil, nil, err
		}
		vault = v
	}
	keys := keyvault.NewRekeyer(st, vault)
	o, err := rotation.OptionsFromConfig(cfg, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	o.Store, o.Rekeyer, o.Reconciler, o.Logger = st, keys, st, log
	return keys, rotation.New(o), nil
}

// newLimiter builds the budgets and rate limits, or returns nil when there is nothing to
// enforce or account: with auth off (no master key) and no proxy-wide
// litellm_settings.max_budget, every call is the anonymous admin's, which no budget or limit
// binds, and, as LiteLLM without a database, llmgate records no spend, so a call makes no
// DynamoDB request.
func newLimiter(cfg *config.Config, st *store.Store, log *slog.Logger) llmcall.Limiter {
	if cfg.GeneralSettings.MasterKey == "" && cfg.LiteLLMSettings.MaxBudget == nil {
		return nil
	}
	return limits.New(st, cfg, limits.WithLogger(log))
}

// newGateway builds the LLM routes: prices, the router over the providers, the handler.
func newGateway(cfg *config.Config, log *slog.Logger, authn llmcall.Authenticator, lim llmcall.Limiter, rec metrics.Recorder) (*gateway.Gateway, *router.Router, error) {
	pricer, err := pricing.New(cfg.Settings, log)
	if err != nil {
		return nil, nil, err
	}
	rtr, err := router.New(router.Options{Config: cfg, Providers: registry.New(registry.LimitAnswers(registry.NewHTTPClient(), cfg.Settings.MaxResponseBodyBytes)), Pricer: pricer, Logger: log, Metrics: rec})
	if err != nil {
		return nil, nil, err
	}
	gw, err := gateway.New(gateway.Options{Config: cfg, Logger: log, Router: rtr, Authenticator: authn, Limiter: lim, Metrics: rec})
	return gw, rtr, err
}

// IsModelRoute reports whether path is one of the admin handler's model routes
// (store_model_in_db: /model/new, /model/update, /model/delete, /model/{id}/update). They
// share /model/ with the gateway's /model/info, and API Gateway sends /model/* to the
// completions function, so the LLM routes' handler serves them too.
func IsModelRoute(path string) bool {
	rest, ok := strings.CutPrefix(path, "/model/")
	if !ok {
		return false
	}
	switch rest {
	case "new", "update", "delete":
		return true
	}
	id, ok := strings.CutSuffix(rest, "/update")
	return ok && id != "" && !strings.Contains(id, "/")
}

// withModelRoutes sends the model routes to adm and the rest to llm.
func withModelRoutes(llm, adm http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsModelRoute(r.URL.Path) {
			adm.ServeHTTP(w, r)
			return
		}
		llm.ServeHTTP(w, r)
	})
}

// adminPrefixes are the path prefixes the admin handler serves; the rest is the gateway's.
var adminPrefixes = []string{"/key/", "/user/", "/team/", "/spend/", "/budget/", "/customer/", "/end_user/", "/organization/", "/global/", "/health", "/ui"}

// healthCheck is the gateway's GET /health, which calls every deployment: the completions
// function has the router and the provider secrets. /health/* stays the admin handler's.
const healthCheck = "/health"

// IsAdminPath reports whether path belongs to the admin handler: a path under one of
// adminPrefixes, or the prefix itself without its slash, except GET /health's path.
func IsAdminPath(path string) bool {
	if path == healthCheck {
		return false
	}
	for _, p := range adminPrefixes {
		if strings.HasPrefix(path, p) || path+"/" == p {
			return true
		}
	}
	return false
}

// Handler serves both handlers from one listener, as the local server does.
func (a *App) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && a.metrics != nil {
			a.serveMetrics(w, r)
			return
		}
		if IsAdminPath(r.URL.Path) {
			a.Admin.ServeHTTP(w, r)
			return
		}
		a.Gateway.ServeHTTP(w, r)
	})
}

// serveMetrics serves GET /metrics to the master key or a proxy_admin key, or to anyone when
// litellm_settings.require_auth_for_metrics_endpoint is false.
func (a *App) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		openai.InvalidURL(w, r)
		return
	}
	if req := a.Config.LiteLLMSettings.RequireAuthForMetricsEndpoint; req == nil || *req {
		p, err := a.auth.Principal(r.Context(), r)
		if err != nil {
			openai.WriteError(w, err)
			return
		}
		if !p.IsProxyAdmin() {
			openai.WriteError(w, openai.Errorf(http.StatusForbidden, openai.TypeAuth,
				"Only the master key or a proxy_admin key may read /metrics.").WithParam("None"))
			return
		}
	}
	a.metrics.ServeHTTP(w, r)
}
