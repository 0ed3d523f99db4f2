package auth

import (
	"regexp"
	"strings"

	"github.com/llmgate/llmgate/internal/config"
)

// ModelIndex knows what LiteLLM's model rules need from model_list: the access groups each
// model group belongs to (model_info.access_groups) and the providers serving it (the prefix
// of litellm_params.model), for wildcards such as "openai/*".
type ModelIndex struct {
	groups    map[string]map[string]bool // model group → its access groups
	allGroups map[string]bool            // every access group name
	providers map[string][]string        // model group → provider prefixes
}

// NewModelIndex indexes the deployments of model_list.
func NewModelIndex(deployments []config.Deployment) *ModelIndex {
	ix := &ModelIndex{
		groups:    map[string]map[string]bool{},
		allGroups: map[string]bool{},
		providers: map[string][]string{},
	}
	for _, d := range deployments {
		for _, g := range d.ModelInfo.AccessGroups {
			if ix.groups[d.ModelName] == nil {
				ix.groups[d.ModelName] = map[string]bool{}
			}
			ix.groups[d.ModelName][g] = true
			ix.allGroups[g] = true
		}
		if provider, _, ok := strings.Cut(d.LiteLLMParams.Model, "/"); ok && !contains(ix.providers[d.ModelName], provider) {
			ix.providers[d.ModelName] = append(ix.providers[d.ModelName], provider)
		}
	}
	return ix
}

// allows reports whether a models list lets the caller use model, as LiteLLM's
// _check_model_access_helper decides: an access group that contains the model, a team
// model alias, a wildcard, an empty list, "*" or "all-proxy-models", or the name itself.
func (ix *ModelIndex) allows(models []string, model string, teamAliases map[string]string) bool {
	var filtered []string
	for _, m := range models {
		if ix != nil && ix.groups[model][m] {
			return true
		}
		if ix == nil || !ix.allGroups[m] {
			filtered = append(filtered, m)
		}
	}
	if _, ok := teamAliases[model]; ok {
		return true
	}
	if len(models) == 0 {
		return true
	}
	for _, m := range filtered {
		switch {
		case m == model, m == "*", m == "all-proxy-models":
			return true
		case strings.Contains(m, "*") && ix.matchesWildcard(m, model):
			return true
		}
	}
	return false
}

// matchesWildcard matches pattern ("openai/*", "gpt-4*") against the model name and against
// "<provider>/<model>" for each provider serving the model group.
func (ix *ModelIndex) matchesWildcard(pattern, model string) bool {
	re, err := wildcard(pattern)
	if err != nil {
		return false
	}
	if re.MatchString(model) {
		return true
	}
	if ix == nil {
		return false
	}
	for _, p := range ix.providers[model] {
		if re.MatchString(p + "/" + model) {
			return true
		}
	}
	return false
}

// wildcard compiles a pattern in which "*" matches any run of characters.
func wildcard(pattern string) (*regexp.Regexp, error) {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.Compile("^" + strings.Join(parts, ".*") + "$")
}

// Within reports whether a models list lets its holder call model: the list names it (an
// access group, a wildcard, the name itself) or allows every model. It judges entries of
// another list too, so a list can be checked to ask for no more than another.
func (ix *ModelIndex) Within(models []string, model string) bool {
	return contains(models, model) || ix.allows(models, model, nil)
}
