package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/router"
)

// healthParallel bounds the deployments GET /health checks at once.
const healthParallel = 8

// endpoint is one deployment in GET /health's answer: what names it, never its secrets.
type endpoint struct {
	ModelName string `json:"model_name"`
	Model     string `json:"model"`
	ModelID   string `json:"model_id"`
	APIBase   string `json:"api_base,omitempty"`
	Error     string `json:"error,omitempty"`
}

// health answers GET /health as LiteLLM does: each deployment (those of the model group or
// litellm_params.model ?model= names) gets a one-token call, and the answer lists the
// healthy and unhealthy endpoints. Proxy admins only: every check is an upstream call that
// no key pays for. Wildcard deployments are left out (no model to call).
func (g *Gateway) health(w http.ResponseWriter, r *http.Request) {
	caller, err := g.caller(r)
	if err != nil {
		openai.WriteError(w, err)
		return
	}
	if caller != nil && !caller.IsProxyAdmin() {
		openai.WriteError(w, openai.Errorf(http.StatusForbidden, openai.TypeAuth,
			"Only the master key or a proxy_admin key may run /health: it calls every deployment.").WithParam("None"))
		return
	}
	model := r.URL.Query().Get("model")
	var checked []*router.Deployment
	for _, d := range g.router.Deployments() {
		if strings.Contains(d.Model, "*") || model != "" && d.Group != model && d.Model != model {
			continue
		}
		checked = append(checked, d)
	}
	if model != "" && len(checked) == 0 {
		openai.WriteError(w, openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			fmt.Sprintf("No deployment serves model=%s.", model)).WithParam("model"))
		return
	}
	results := make([]endpoint, len(checked))
	sem := make(chan struct{}, healthParallel)
	var wg sync.WaitGroup
	for i, d := range checked {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = endpoint{ModelName: d.Group, Model: d.Model, ModelID: d.ID, APIBase: d.APIBase()}
			if err := g.router.Check(r.Context(), d, healthCall(d)); err != nil {
				results[i].Error = healthError(err)
			}
		}()
	}
	wg.Wait()
	out := struct {
		Healthy        []endpoint `json:"healthy_endpoints"`
		Unhealthy      []endpoint `json:"unhealthy_endpoints"`
		HealthyCount   int        `json:"healthy_count"`
		UnhealthyCount int        `json:"unhealthy_count"`
	}{Healthy: []endpoint{}, Unhealthy: []endpoint{}}
	for _, e := range results {
		if e.Error == "" {
			out.Healthy = append(out.Healthy, e)
		} else {
			out.Unhealthy = append(out.Unhealthy, e)
		}
	}
	out.HealthyCount, out.UnhealthyCount = len(out.Healthy), len(out.Unhealthy)
	openai.WriteJSON(w, http.StatusOK, out)
}

// healthCall is the smallest call of the deployment's mode: one embedding of a word, or a
// chat answer of one token.
func healthCall(d *router.Deployment) provider.Call {
	_, model := provider.Split(d.Model)
	body := map[string]any{"model": model, "messages": []any{map[string]any{"role": "user", "content": "ping"}}, "max_tokens": 1}
	kind := provider.Chat
	if d.Config.ModelInfo.Mode == "embedding" {
		body, kind = map[string]any{"model": model, "input": "ping"}, provider.Embedding
	}
	b, _ := json.Marshal(body) // a map of strings and numbers always marshals
	var req openai.Request
	_ = json.Unmarshal(b, &req)
	return provider.Call{Kind: kind, Body: b, Request: &req}
}

// healthError is what GET /health says of a failed check: the upstream's error, which
// providers keep free of keys.
func healthError(err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe.OpenAI().Message
	}
	return err.Error()
}
