// Package modeldb is general_settings.store_model_in_db: the deployments added with
// /model/new live in DynamoDB beside config.yaml's model_list, and every instance's router
// picks changes up within llmgate_settings.model_refresh_interval.
package modeldb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/router"
	"github.com/llmgate/llmgate/internal/store"
)

// Source is where the stored models are read (the store).
type Source interface {
	ModelsVersion(ctx context.Context) (int64, error)
	StoredModels(ctx context.Context) ([]store.StoredModel, int64, error)
}

// Options are a Sync's dependencies. Now is for tests.
type Options struct {
	Config *config.Config
	Source Source
	Router *router.Router
	Logger *slog.Logger
	Now    func() time.Time
}

// readTimeout bounds the reads of one refresh.
const readTimeout = 5 * time.Second

// Sync keeps a router's stored models current: at most once per refresh interval a request
// reads the version counter (one GetItem), and only when it moved the whole list. A request
// waits for that read, so no instance serves a list older than the interval.
type Sync struct {
	o     Options
	every time.Duration

	mu      sync.Mutex
	checked time.Time // last read of the version; zero: read at the next request
	version int64     // version of the list the router has
}

// NewSync builds a Sync; the router starts with the config's models only (version 0).
func NewSync(o Options) *Sync {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sync{o: o, every: o.Config.Settings.ModelRefreshInterval.Std()}
}

// Invalidate makes the next request read the stored models' version: this instance changed
// them.
func (s *Sync) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = time.Time{}
}

// Fresh brings the router's stored models up to date when they were last checked an
// interval ago or more. A failed read is logged and retried an interval later; the router
// keeps the list it has.
func (s *Sync) Fresh(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	if !s.checked.IsZero() && now.Sub(s.checked) < s.every {
		return
	}
	s.checked = now
	// The reads serve every later request too: a client that leaves must not cancel them.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
	defer cancel()
	v, err := s.o.Source.ModelsVersion(ctx)
	if err != nil {
		s.o.Logger.WarnContext(ctx, "stored models: version read failed; serving the last list read", "error", err.Error())
		return
	}
	if v == s.version {
		return
	}
	models, v, err := s.o.Source.StoredModels(ctx)
	if err != nil {
		s.o.Logger.WarnContext(ctx, "stored models: read failed; serving the last list read", "error", err.Error())
		return
	}
	s.o.Router.SetStoredModels(s.deployments(ctx, models))
	s.version = v
}

// Handler calls Fresh before next serves each request.
func (s *Sync) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Fresh(r.Context())
		next.ServeHTTP(w, r)
	})
}

// deployments parses the stored models; one that no longer parses, or whose id a config
// model took since, is left out with a warning.
func (s *Sync) deployments(ctx context.Context, models []store.StoredModel) []config.Deployment {
	configIDs := map[string]bool{}
	for _, d := range s.o.Config.ModelList {
		configIDs[d.ModelInfo.ID] = true
	}
	lookup := Lookup(s.o.Config)
	out := make([]config.Deployment, 0, len(models))
	for _, m := range models {
		d, warnings, err := config.ParseDeployment([]byte(m.Deployment), lookup)
		for _, w := range warnings {
			s.o.Logger.WarnContext(ctx, "stored model: "+w, "model_id", m.ID)
		}
		if err != nil || configIDs[m.ID] {
			s.o.Logger.WarnContext(ctx, "stored model left out", "model_id", m.ID, "error", fmt.Sprint(err), "config_id", configIDs[m.ID])
			continue
		}
		d.ModelInfo.ID = m.ID
		out = append(out, d)
	}
	return out
}

// Lookup resolves a stored model's os.environ/NAME references: the config's
// environment_variables, then the process environment, except the names Referable refuses.
func Lookup(cfg *config.Config) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if !Referable(name) {
			return "", false
		}
		if v, ok := cfg.EnvironmentVariables[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
}

// refusedPrefixes are environment variables a stored model may not reference: llmgate's
// own settings and secrets (the master key) and the function's AWS credentials. A proxy
// admin adding a model pointed at its own api_base could otherwise have the gateway send
// them there.
var refusedPrefixes = []string{"AWS_", "LLMGATE_", "LITELLM_"}

// Referable reports whether a stored model may reference the environment variable name.
func Referable(name string) bool {
	for _, p := range refusedPrefixes {
		if strings.HasPrefix(strings.ToUpper(name), p) {
			return false
		}
	}
	return name != ""
}

// envPrefix marks a reference to an environment variable, as in config.yaml.
const envPrefix = "os.environ/"

// secretWords mark the litellm_params whose string values are secrets.
var secretWords = []string{"key", "secret", "token", "password", "credential", "authorization"}

// ErrInvalid wraps the reasons Check refuses a deployment.
var ErrInvalid = errors.New("invalid deployment")

// Check validates a deployment sent to /model/new or /model/update (JSON object with
// model_name, litellm_params, model_info) before it is stored: it must parse as a model_list
// entry, and every secret in litellm_params (a string value of a parameter named like
// api_key, aws_secret_access_key, ..._token) must be an os.environ/NAME reference to a
// variable Referable allows, so the table never holds a provider secret.
func Check(raw map[string]any) (config.Deployment, error) {
	lp, _ := raw["litellm_params"].(map[string]any)
	if err := checkSecrets("litellm_params", lp); err != nil {
		return config.Deployment{}, err
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return config.Deployment{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// References are not resolved here: the admin function may not hold the variables.
	d, _, err := config.ParseDeployment(b, func(string) (string, bool) { return "", false })
	if err != nil {
		return config.Deployment{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return d, nil
}

// checkSecrets checks the string values of params (and of maps in it, such as headers)
// whose names are a secret's: each must be a reference Referable allows.
func checkSecrets(path string, params map[string]any) error {
	for name, v := range params {
		p := path + "." + name
		if sub, ok := v.(map[string]any); ok {
			if err := checkSecrets(p, sub); err != nil {
				return err
			}
			continue
		}
		str, isString := v.(string)
		if !isString || str == "" {
			continue
		}
		if ref, ok := strings.CutPrefix(str, envPrefix); ok {
			if !Referable(ref) {
				return fmt.Errorf("%w: %s: os.environ/%s may not be referenced by a stored model (names starting with %s are refused)",
					ErrInvalid, p, ref, strings.Join(refusedPrefixes, ", "))
			}
			continue
		}
		if isSecretParam(name) {
			return fmt.Errorf("%w: %s: a stored model takes secrets as os.environ/NAME references only "+
				"(set NAME in the gateway's environment or secrets); the table never holds a provider secret", ErrInvalid, p)
		}
	}
	return nil
}

func isSecretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
