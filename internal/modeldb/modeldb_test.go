package modeldb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/router"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func storedModel(id, name, params string) *store.StoredModel {
	now := time.Now().UTC()
	return &store.StoredModel{ID: id, ModelName: name, CreatedAt: now, UpdatedAt: now,
		Deployment: fmt.Sprintf(`{"model_name":%q,"litellm_params":{%s},"model_info":{"id":%q}}`, name, params, id)}
}

// TestSync_PicksChangesUpWithinTheInterval: an instance that did not make a change serves
// it once the refresh interval has passed since its last read, and not before; a read
// costs one GetItem while the version is unchanged.
func TestSync_PicksChangesUpWithinTheInterval(t *testing.T) {
	t.Parallel()
	st := store.NewWithClient(dynamotest.NewTable(t))
	cfg := &config.Config{ModelList: []config.Deployment{{ModelName: "config-model", LiteLLMParams: config.LiteLLMParams{Model: "mock/a"}, ModelInfo: config.ModelInfo{ID: "config-1"}}}}
	cfg.Settings.ModelRefreshInterval = config.Duration(10 * time.Second)
	rtr, err := router.New(router.Options{Config: cfg, Providers: router.ProviderFunc(func(string) (provider.Provider, error) { return nil, errors.New("none") })})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	sy := NewSync(Options{Config: cfg, Source: st, Router: rtr, Now: clk.Now})
	has := func(model string) bool { _, ok := rtr.Resolve(model); return ok }
	ctx := t.Context()

	sy.Fresh(ctx) // reads version 0 at t0
	if err := st.CreateModel(ctx, storedModel("db-1", "db-model", `"model":"mock/b"`)); err != nil {
		t.Fatal(err)
	}
	clk.advance(10*time.Second - time.Nanosecond)
	sy.Fresh(ctx)
	if has("db-model") {
		t.Fatal("served a stored model before the interval passed: the version was read on every request")
	}
	clk.advance(time.Nanosecond)
	sy.Fresh(ctx)
	if !has("db-model") || !has("config-model") {
		t.Fatalf("after the interval: db-model %t, config-model %t; want both", has("db-model"), has("config-model"))
	}
	configDeployment := rtr.Deployments()[0]

	if err := st.DeleteModel(ctx, "db-1"); err != nil {
		t.Fatal(err)
	}
	clk.advance(9 * time.Second)
	sy.Fresh(ctx)
	if !has("db-model") {
		t.Fatal("deletion served before the interval passed")
	}
	clk.advance(time.Second)
	sy.Fresh(ctx)
	if has("db-model") {
		t.Fatal("deleted model still served after the interval")
	}
	if rtr.Deployments()[0] != configDeployment {
		t.Error("the config deployment was rebuilt: its cooldown and load state would be lost at each change")
	}

	// This instance's own write is served at its next request, even one whose client has
	// gone: the read serves the requests after it too.
	if err := st.CreateModel(ctx, storedModel("db-2", "db-model-2", `"model":"mock/c"`)); err != nil {
		t.Fatal(err)
	}
	sy.Invalidate()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	sy.Fresh(gone)
	if !has("db-model-2") {
		t.Error("Invalidate: the next request did not read the stored models")
	}
}

// TestSync_StoredModelsCannotReadTheGatewaysSecrets: a stored model's references to
// llmgate's, LiteLLM's or AWS's variables resolve to nothing, even when written to the
// table without /model/new's check; other references resolve.
func TestSync_StoredModelsCannotReadTheGatewaysSecrets(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("LITELLM_MASTER_KEY", "sk-master")
	t.Setenv("MODELDB_TEST_KEY", "sk-provider")
	st := store.NewWithClient(dynamotest.NewTable(t))
	cfg := &config.Config{}
	cfg.Settings.ModelRefreshInterval = config.Duration(time.Second)
	rtr, err := router.New(router.Options{Config: cfg, Providers: router.ProviderFunc(func(string) (provider.Provider, error) { return nil, errors.New("none") })})
	if err != nil {
		t.Fatal(err)
	}
	for id, ref := range map[string]string{"aws": "AWS_SECRET_ACCESS_KEY", "master": "LITELLM_MASTER_KEY", "ok": "MODELDB_TEST_KEY"} {
		if err := st.CreateModel(t.Context(), storedModel(id, id, `"model":"openai/x","api_key":"os.environ/`+ref+`"`)); err != nil {
			t.Fatal(err)
		}
	}
	NewSync(Options{Config: cfg, Source: st, Router: rtr}).Fresh(t.Context())
	got := map[string]string{}
	for _, d := range rtr.Deployments() {
		got[d.ID] = d.Config.LiteLLMParams.APIKey
	}
	if want := map[string]string{"aws": "", "master": "", "ok": "sk-provider"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("api keys %v, want %v", got, want)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string // "" accepted, else a part of the error
	}{
		{"reference", map[string]any{"model": "openai/x", "api_key": "os.environ/OPENAI_API_KEY"}, ""},
		{"numbers named like tokens", map[string]any{"model": "openai/x", "max_tokens": 10, "input_cost_per_token": 0.1}, ""},
		{"literal api_key", map[string]any{"model": "openai/x", "api_key": "sk-secret"}, "litellm_params.api_key"},
		{"literal aws secret", map[string]any{"model": "bedrock/x", "aws_secret_access_key": "abc"}, "litellm_params.aws_secret_access_key"},
		{"literal header", map[string]any{"model": "openai/x", "extra_headers": map[string]any{"Authorization": "Bearer sk"}}, "extra_headers.Authorization"},
		{"AWS reference", map[string]any{"model": "openai/x", "api_key": "os.environ/AWS_SESSION_TOKEN"}, "AWS_SESSION_TOKEN"},
		{"llmgate reference", map[string]any{"model": "openai/x", "api_base": "os.environ/LLMGATE_TABLE"}, "LLMGATE_TABLE"},
		{"no model", map[string]any{"api_key": "os.environ/K"}, "litellm_params.model: required"},
		{"wrong type", map[string]any{"model": "openai/x", "rpm": "many"}, "rpm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(map[string]any{"model_name": "m", "litellm_params": tt.params})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid)):
				t.Errorf("error %v, want ErrInvalid naming %q", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "sk-secret") || strings.Contains(err.Error(), "Bearer sk")) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}
