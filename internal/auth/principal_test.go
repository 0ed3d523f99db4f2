package auth

import (
	"errors"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

func TestResolveModel(t *testing.T) {
	models := NewModelIndex([]config.Deployment{
		{ModelName: "gpt-4o", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o"}, ModelInfo: config.ModelInfo{AccessGroups: []string{"beta"}}},
		{ModelName: "claude", LiteLLMParams: config.LiteLLMParams{Model: "anthropic/claude-3-5-sonnet"}},
		{ModelName: "my-free-tier", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o-mini"}},
	})
	team := func(models []string, aliases map[string]string) *store.Team {
		return &store.Team{TeamID: "t1", Models: models, ModelAliases: aliases}
	}
	tests := []struct {
		name      string
		p         Principal
		requested string
		want      string
		errType   string
		errMsg    string
	}{
		{name: "master may use anything", p: Principal{IsMaster: true}, requested: "x", want: "x"},
		{name: "empty models allow all", p: Principal{Key: &store.Key{}}, requested: "claude", want: "claude"},
		{name: "star allows all", p: Principal{Key: &store.Key{Models: []string{"*"}}}, requested: "claude", want: "claude"},
		{name: "all-proxy-models allows all", p: Principal{Key: &store.Key{Models: []string{"all-proxy-models"}}}, requested: "claude", want: "claude"},
		{name: "listed model", p: Principal{Key: &store.Key{Models: []string{"gpt-4o"}}}, requested: "gpt-4o", want: "gpt-4o"},
		{
			name: "unlisted model is denied with LiteLLM's message", p: Principal{Key: &store.Key{Models: []string{"gpt-4o"}}}, requested: "claude",
			errType: TypeKeyModelAccessDenied,
			errMsg:  "key not allowed to access model. This key can only access models=['gpt-4o']. Tried to access claude",
		},
		{name: "wildcard on the name", p: Principal{Key: &store.Key{Models: []string{"gpt-*"}}}, requested: "gpt-4o", want: "gpt-4o"},
		{name: "provider wildcard", p: Principal{Key: &store.Key{Models: []string{"anthropic/*"}}}, requested: "claude", want: "claude"},
		{name: "provider wildcard of another provider", p: Principal{Key: &store.Key{Models: []string{"anthropic/*"}}}, requested: "gpt-4o", errType: TypeKeyModelAccessDenied},
		{name: "access group", p: Principal{Key: &store.Key{Models: []string{"beta"}}}, requested: "gpt-4o", want: "gpt-4o"},
		{name: "access group does not grant other models", p: Principal{Key: &store.Key{Models: []string{"beta"}}}, requested: "claude", errType: TypeKeyModelAccessDenied},
		{
			name: "key alias maps to the group", p: Principal{Key: &store.Key{Models: []string{"my-free-tier"}, Aliases: map[string]string{"gpt-3.5-turbo": "my-free-tier"}}},
			requested: "gpt-3.5-turbo", want: "my-free-tier",
		},
		{
			name: "team model alias", p: Principal{Key: &store.Key{}, Team: team(nil, map[string]string{"fast": "claude"})},
			requested: "fast", want: "claude",
		},
		{
			name: "key alias wins over team alias", p: Principal{Key: &store.Key{Aliases: map[string]string{"m": "gpt-4o"}}, Team: team(nil, map[string]string{"m": "claude"})},
			requested: "m", want: "gpt-4o",
		},
		{
			name: "team models restrict a key with none", p: Principal{Key: &store.Key{}, Team: team([]string{"gpt-4o"}, nil)}, requested: "claude",
			errType: TypeTeamModelAccessDenied,
			errMsg:  "Team not allowed to access model. Team=t1, Model=claude. Allowed team models = ['gpt-4o']",
		},
		{name: "all-team-models defers to the team", p: Principal{Key: &store.Key{Models: []string{"all-team-models"}}, Team: team([]string{"claude"}, nil)}, requested: "claude", want: "claude"},
		{
			name: "user models apply to personal keys", p: Principal{Key: &store.Key{}, User: &store.User{Models: []string{"gpt-4o"}}}, requested: "claude",
			errType: TypeUserModelAccessDenied,
			errMsg:  "user not allowed to access model. This user can only access models=['gpt-4o']. Tried to access claude",
		},
		{name: "user models do not apply to team keys", p: Principal{Key: &store.Key{}, User: &store.User{Models: []string{"gpt-4o"}}, Team: team(nil, nil)}, requested: "claude", want: "claude"},
		{name: "no-default-models", p: Principal{Key: &store.Key{}, User: &store.User{Models: []string{"no-default-models"}}}, requested: "claude", errType: TypeUserModelAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.Models = models
			got, err := p.ResolveModel(tt.requested)
			if tt.errType == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ResolveModel(%q) = %q, %v; want %q", tt.requested, got, err, tt.want)
				}
				if !p.Allowed(tt.requested) {
					t.Errorf("Allowed(%q) = false, want true", tt.requested)
				}
				return
			}
			var oe *openai.Error
			if !errors.As(err, &oe) {
				t.Fatalf("ResolveModel(%q) err = %v, want *openai.Error", tt.requested, err)
			}
			if oe.Status != 401 || oe.Type != tt.errType || oe.Param == nil || *oe.Param != "model" {
				t.Errorf("error = %d %s param %v, want 401 %s param model", oe.Status, oe.Type, oe.Param, tt.errType)
			}
			if tt.errMsg != "" && oe.Message != tt.errMsg {
				t.Errorf("message = %q\nwant %q", oe.Message, tt.errMsg)
			}
			if p.Allowed(tt.requested) {
				t.Errorf("Allowed(%q) = true, want false", tt.requested)
			}
		})
	}
}

func TestPrincipal_OwnerIsTheKeyHashAndTeam(t *testing.T) {
	for _, tc := range []struct {
		p         *Principal
		key, team string
	}{
		{&Principal{Token: "abc", Team: &store.Team{TeamID: "t1"}}, "abc", "t1"},
		{&Principal{Token: "abc"}, "abc", ""},
		{&Principal{IsMaster: true}, "", ""},
	} {
		if key, team := tc.p.Owner(); key != tc.key || team != tc.team {
			t.Errorf("Owner() = %q, %q; want %q, %q", key, team, tc.key, tc.team)
		}
	}
}

// MayRoute checks the group itself: a name the key or team aliases to an allowed group is
// one the key may request, but not a group it may be served by (a configured fallback).
func TestMayRoute_AliasesDoNotWidenIt(t *testing.T) {
	models := NewModelIndex([]config.Deployment{
		{ModelName: "gpt-4o", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o"}, ModelInfo: config.ModelInfo{AccessGroups: []string{"beta"}}},
		{ModelName: "claude", LiteLLMParams: config.LiteLLMParams{Model: "anthropic/claude-3-5-sonnet"}},
		{ModelName: "cheap", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o-mini"}},
	})
	tests := []struct {
		name  string
		p     Principal
		group string
		want  bool
	}{
		{"master key", Principal{IsMaster: true}, "claude", true},
		{"listed", Principal{Key: &store.Key{Models: []string{"cheap"}}}, "cheap", true},
		{"unlisted", Principal{Key: &store.Key{Models: []string{"cheap"}}}, "claude", false},
		{"access group", Principal{Key: &store.Key{Models: []string{"beta"}}}, "gpt-4o", true},
		{"provider wildcard", Principal{Key: &store.Key{Models: []string{"anthropic/*"}}}, "claude", true},
		{"key alias named like the group", Principal{Key: &store.Key{Models: []string{"cheap"}, Aliases: map[string]string{"claude": "cheap"}}}, "claude", false},
		{"team alias named like the group", Principal{Key: &store.Key{}, Team: &store.Team{TeamID: "t", Models: []string{"cheap"}, ModelAliases: map[string]string{"claude": "cheap"}}}, "claude", false},
		{"team models", Principal{Key: &store.Key{}, Team: &store.Team{TeamID: "t", Models: []string{"claude"}}}, "claude", true},
		{"user models of a personal key", Principal{Key: &store.Key{}, User: &store.User{Models: []string{"cheap"}}}, "claude", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.Models = models
			if got := p.MayRoute(tt.group); got != tt.want {
				t.Errorf("MayRoute(%q) = %v, want %v", tt.group, got, tt.want)
			}
		})
	}
}
