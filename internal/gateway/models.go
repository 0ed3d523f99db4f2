package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/anthropic"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/router"
)

// modelCreated is the "created" time LiteLLM gives every model (DEFAULT_MODEL_CREATED_AT_TIME).
const modelCreated = 1677610602

// models answers GET /v1/models: the model groups and aliases the caller may use, in
// Anthropic's shape when the client sends anthropic-version (as Anthropic's SDKs and
// Claude Code do), else in OpenAI's.
func (g *Gateway) models(w http.ResponseWriter, r *http.Request) {
	anthropicShape := r.Header.Get("anthropic-version") != ""
	caller, err := g.caller(r)
	if err != nil {
		if anthropicShape {
			anthropic.WriteError(w, err)
		} else {
			openai.WriteError(w, err)
		}
		return
	}
	names := g.modelNames(r, caller)
	if anthropicShape {
		openai.WriteJSON(w, http.StatusOK, anthropic.NewModelList(names, time.Unix(modelCreated, 0)))
		return
	}
	list := openai.ModelList{Object: "list", Data: []openai.Model{}}
	for _, name := range names {
		list.Data = append(list.Data, openai.Model{ID: name, Object: "model", Created: modelCreated, OwnedBy: "openai"})
	}
	openai.WriteJSON(w, http.StatusOK, list)
}

// modelNames are the names GET /v1/models lists: the model groups and aliases the caller
// may use; with ?only_model_access_groups=true, the model access groups of those instead;
// with ?litellm_model_id=, the group of that deployment only.
func (g *Gateway) modelNames(r *http.Request, caller llmcall.Caller) []string {
	allowed := func(name string) bool { return caller == nil || caller.Allowed(name) }
	q := r.URL.Query()
	if id := q.Get("litellm_model_id"); id != "" {
		for _, d := range g.router.Deployments() {
			if d.ID == id && allowed(d.Group) {
				return []string{d.Group}
			}
		}
		return nil
	}
	if onlyGroups, _ := strconv.ParseBool(q.Get("only_model_access_groups")); onlyGroups {
		var names []string
		for _, d := range g.router.Deployments() {
			if !allowed(d.Group) {
				continue
			}
			for _, ag := range d.Config.ModelInfo.AccessGroups {
				if !slices.Contains(names, ag) {
					names = append(names, ag)
				}
			}
		}
		return names
	}
	var names []string
	for _, name := range g.router.Models() {
		if allowed(name) {
			names = append(names, name)
		}
	}
	return names
}

// safeParams are the litellm_params /model/info shows: never api_key, AWS credentials or
// headers, which may hold secrets.
type safeParams struct {
	Model         string   `json:"model"`
	APIBase       string   `json:"api_base,omitempty"`
	APIVersion    string   `json:"api_version,omitempty"`
	AWSRegionName string   `json:"aws_region_name,omitempty"`
	RPM           int      `json:"rpm,omitempty"`
	TPM           int      `json:"tpm,omitempty"`
	Weight        float64  `json:"weight,omitempty"`
	Timeout       float64  `json:"timeout,omitempty"`
	StreamTimeout float64  `json:"stream_timeout,omitempty"`
	MaxRetries    *int     `json:"max_retries,omitempty"`
	InputCost     *float64 `json:"input_cost_per_token,omitempty"`
	OutputCost    *float64 `json:"output_cost_per_token,omitempty"`
}

type modelInfo struct {
	ID                          string   `json:"id"`
	DBModel                     bool     `json:"db_model"`
	Mode                        string   `json:"mode,omitempty"`
	BaseModel                   string   `json:"base_model,omitempty"`
	LiteLLMProvider             string   `json:"litellm_provider"`
	InputCostPerToken           float64  `json:"input_cost_per_token"`
	OutputCostPerToken          float64  `json:"output_cost_per_token"`
	CacheReadInputTokenCost     float64  `json:"cache_read_input_token_cost"`
	CacheCreationInputTokenCost float64  `json:"cache_creation_input_token_cost"`
	MaxInputTokens              int      `json:"max_input_tokens,omitempty"`
	MaxOutputTokens             int      `json:"max_output_tokens,omitempty"`
	AccessGroups                []string `json:"access_groups,omitempty"`
	Description                 string   `json:"description,omitempty"`
}

type modelEntry struct {
	ModelName     string     `json:"model_name"`
	LiteLLMParams safeParams `json:"litellm_params"`
	ModelInfo     modelInfo  `json:"model_info"`
}

// modelInfo answers GET /model/info: each deployment the caller may use, with its prices
// and limits and without secrets; ?litellm_model_id= keeps that deployment only and
// ?only_model_access_groups=true those in a model access group.
func (g *Gateway) modelInfo(w http.ResponseWriter, r *http.Request) {
	caller, err := g.caller(r)
	if err != nil {
		openai.WriteError(w, err)
		return
	}
	q := r.URL.Query()
	id := q.Get("litellm_model_id")
	onlyGroups, _ := strconv.ParseBool(q.Get("only_model_access_groups"))
	out := struct {
		Data []modelEntry `json:"data"`
	}{Data: []modelEntry{}}
	for _, d := range g.router.Deployments() {
		if (caller != nil && !caller.Allowed(d.Group)) || (id != "" && d.ID != id) ||
			(onlyGroups && len(d.Config.ModelInfo.AccessGroups) == 0) {
			continue
		}
		lp, mi, price := d.Config.LiteLLMParams, d.Config.ModelInfo, d.Price()
		prefix, _ := provider.Split(d.Model)
		out.Data = append(out.Data, modelEntry{
			ModelName: d.Group,
			LiteLLMParams: safeParams{
				Model: lp.Model, APIBase: d.APIBase(), APIVersion: lp.APIVersion, AWSRegionName: lp.AWSRegionName,
				RPM: lp.RPM, TPM: lp.TPM, Weight: lp.Weight, Timeout: lp.Timeout, StreamTimeout: lp.StreamTimeout,
				MaxRetries: lp.MaxRetries, InputCost: lp.InputCostPerToken, OutputCost: lp.OutputCostPerToken,
			},
			ModelInfo: modelInfo{
				ID: d.ID, DBModel: d.Stored(), Mode: mi.Mode, BaseModel: mi.BaseModel, LiteLLMProvider: prefix,
				InputCostPerToken: price.Input, OutputCostPerToken: price.Output,
				CacheReadInputTokenCost: price.CacheRead, CacheCreationInputTokenCost: price.CacheCreation,
				MaxInputTokens: price.MaxInputTokens, MaxOutputTokens: price.MaxOutputTokens,
				AccessGroups: mi.AccessGroups, Description: mi.Description,
			},
		})
	}
	openai.WriteJSON(w, http.StatusOK, out)
}

// caller authenticates r; nil when auth is off.
func (g *Gateway) caller(r *http.Request) (llmcall.Caller, error) {
	if g.auth == nil {
		return nil, nil
	}
	return g.auth.Authenticate(r.Context(), r)
}

// modelGroup is one entry of GET /model_group/info (LiteLLM's ModelGroupInfo): what a model
// group's deployments offer together.
type modelGroup struct {
	ModelGroup         string   `json:"model_group"`
	Providers          []string `json:"providers"`
	Mode               string   `json:"mode,omitempty"`
	MaxInputTokens     int      `json:"max_input_tokens,omitempty"`
	MaxOutputTokens    int      `json:"max_output_tokens,omitempty"`
	InputCostPerToken  float64  `json:"input_cost_per_token"`
	OutputCostPerToken float64  `json:"output_cost_per_token"`
	TPM                int      `json:"tpm,omitempty"`
	RPM                int      `json:"rpm,omitempty"`
}

// modelGroupInfo answers GET /model_group/info: the model groups the caller may use, in
// config order, with their providers, the highest prices and limits of their deployments
// and their summed rpm/tpm. A wildcard group ("anthropic/*") is listed as the models of the
// cost map it serves, each priced as a call to it would be.
func (g *Gateway) modelGroupInfo(w http.ResponseWriter, r *http.Request) {
	caller, err := g.caller(r)
	if err != nil {
		openai.WriteError(w, err)
		return
	}
	out := struct {
		Data []*modelGroup `json:"data"`
	}{Data: []*modelGroup{}}
	byName := map[string]*modelGroup{}
	add := func(name string, d *router.Deployment, upstream string, price pricing.Price) {
		if caller != nil && !caller.Allowed(name) {
			return
		}
		mg, ok := byName[name]
		if !ok {
			mg = &modelGroup{ModelGroup: name, Providers: []string{}, Mode: d.Config.ModelInfo.Mode}
			byName[name] = mg
			out.Data = append(out.Data, mg)
		}
		if prefix, _ := provider.Split(upstream); !slices.Contains(mg.Providers, prefix) {
			mg.Providers = append(mg.Providers, prefix)
		}
		mg.InputCostPerToken = max(mg.InputCostPerToken, price.Input)
		mg.OutputCostPerToken = max(mg.OutputCostPerToken, price.Output)
		mg.MaxInputTokens = max(mg.MaxInputTokens, price.MaxInputTokens)
		mg.MaxOutputTokens = max(mg.MaxOutputTokens, price.MaxOutputTokens)
		mg.TPM += d.Config.LiteLLMParams.TPM
		mg.RPM += d.Config.LiteLLMParams.RPM
	}
	expanded := map[string]bool{}
	for _, d := range g.router.Deployments() {
		if !strings.Contains(d.Group, "*") {
			add(d.Group, d, d.Model, d.Price())
			continue
		}
		if expanded[d.Group] {
			continue
		}
		expanded[d.Group] = true
		grp, _ := g.router.Resolve(d.Group) // a group's own name resolves to it
		for _, rt := range g.router.Expand(grp.Group) {
			for _, gd := range rt.Group.Deployments {
				add(rt.Model, gd, rt.Upstream(gd), g.router.Price(rt, gd))
			}
		}
	}
	openai.WriteJSON(w, http.StatusOK, out)
}
