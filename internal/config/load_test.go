package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParse_SeedLiteLLMConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := Parse(data, env(map[string]string{"AZURE_API_KEY": "az-secret", "OPENAI_API_KEY": "sk-openai"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := len(cfg.ModelList); got != 4 {
		t.Fatalf("model_list has %d entries, want 4", got)
	}
	if a, b := cfg.ModelList[0], cfg.ModelList[1]; a.ModelName != "gpt-3.5-turbo" || b.ModelName != "gpt-3.5-turbo" {
		t.Errorf("duplicate model_name deployments not kept: %q, %q", a.ModelName, b.ModelName)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"os.environ api_key resolved", cfg.ModelList[0].LiteLLMParams.APIKey, "az-secret"},
		{"api_version kept as string", cfg.ModelList[0].LiteLLMParams.APIVersion, "2023-05-15"},
		{"rpm", cfg.ModelList[1].LiteLLMParams.RPM, 1440},
		{"timeout", cfg.ModelList[1].LiteLLMParams.Timeout, 30.0},
		{"max_retries", *cfg.ModelList[1].LiteLLMParams.MaxRetries, 2},
		{"aws_region_name", cfg.ModelList[3].LiteLLMParams.AWSRegionName, "us-west-2"},
		{"model_info input price", *cfg.ModelList[3].ModelInfo.InputCostPerToken, 0.000003},
		{"access group", cfg.ModelList[3].ModelInfo.AccessGroups[0], "beta-models"},
		{"master_key", cfg.GeneralSettings.MasterKey, "sk-1234"},
		{"litellm_key_header_name", cfg.GeneralSettings.LiteLLMKeyHeaderName, "X-Litellm-Key"},
		{"fallbacks", cfg.LiteLLMSettings.Fallbacks[0]["gpt-3.5-turbo"][0], "my-free-tier"},
		{"team key roles", cfg.LiteLLMSettings.KeyGenerationSettings.TeamKeyGeneration.AllowedTeamMemberRoles[0], "admin"},
		{"team key required params", cfg.LiteLLMSettings.KeyGenerationSettings.TeamKeyGeneration.RequiredParams[0], "tags"},
		{"personal key roles", cfg.LiteLLMSettings.KeyGenerationSettings.PersonalKeyGeneration.AllowedUserRoles[0], "proxy_admin"},
		{"upperbound max_budget", cfg.LiteLLMSettings.UpperboundKeyGenerateParams["max_budget"], 100},
		{"upperbound duration", cfg.LiteLLMSettings.UpperboundKeyGenerateParams["duration"], "30d"},
		{"default key max_budget", cfg.LiteLLMSettings.DefaultKeyGenerateParams["max_budget"], 1.5},
		{"router allowed_fails", *cfg.RouterSettings.AllowedFails, 3},
		{"router cooldown_time", *cfg.RouterSettings.CooldownTime, 30.0},
		{"default table", cfg.Settings.TableName, DefaultTableName},
		{"default port", cfg.Settings.Port, DefaultPort},
		{"default enforcement", cfg.Settings.BudgetEnforcement, "reserve"},
		{"default body limit", cfg.Settings.MaxRequestBodyBytes, int64(DefaultMaxRequestBodyBytes)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v (%T), want %v (%T)", c.name, c.got, c.got, c.want, c.want)
		}
	}
	for _, want := range []string{
		"litellm_settings.set_verbose: unknown or unsupported setting, ignored",
		"litellm_settings.success_callback: unknown or unsupported setting, ignored",
		"general_settings.alerting: unknown or unsupported setting, ignored",
		"router_settings.redis_host: unknown or unsupported setting, ignored",
		"general_settings.database_url is not used: llmgate keeps its state in DynamoDB (table llmgate)",
	} {
		if !slices.Contains(warnings, want) {
			t.Errorf("warnings lack %q; got %q", want, warnings)
		}
	}
	for _, w := range warnings {
		if strings.Contains(w, "az-secret") || strings.Contains(w, "sk-openai") {
			t.Errorf("a warning leaks a secret: %q", w)
		}
	}
}

func TestParse_EnvironmentVariablesBlockFeedsReferences(t *testing.T) {
	cfg, _, err := Parse([]byte(`
environment_variables:
  MY_KEY: sk-from-block
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/MY_KEY}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ModelList[0].LiteLLMParams.APIKey; got != "sk-from-block" {
		t.Errorf("api_key = %q, want sk-from-block", got)
	}
}

func TestParse_MissingEnvReferenceWarns(t *testing.T) {
	cfg, warnings, err := Parse([]byte(`
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/NOT_SET}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ModelList[0].LiteLLMParams.APIKey; got != "" {
		t.Errorf("api_key = %q, want empty", got)
	}
	want := "model_list[0].litellm_params.api_key: environment variable NOT_SET is not set"
	if !slices.Contains(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
}

func TestParse_EnvOverrides(t *testing.T) {
	cfg, _, err := Parse([]byte("general_settings: {master_key: sk-file}\nllmgate_settings: {table_name: from-file, port: 5000}\n"), env(map[string]string{
		"LITELLM_MASTER_KEY":        "sk-env",
		"LLMGATE_TABLE":             "from-env",
		"LLMGATE_DYNAMODB_ENDPOINT": "http://127.0.0.1:8000",
		"LLMGATE_REGION":            "eu-west-1",
		"LLMGATE_PORT":              "4100",
		"AWS_REGION":                "us-west-2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Settings
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"master key", cfg.GeneralSettings.MasterKey, "sk-env"},
		{"table", s.TableName, "from-env"},
		{"endpoint", s.DynamoDBEndpoint, "http://127.0.0.1:8000"},
		{"region", s.Region, "eu-west-1"},
		{"port", s.Port, 4100},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParse_RegionFallsBackToAWSRegion(t *testing.T) {
	cfg, _, err := Parse(nil, env(map[string]string{"AWS_REGION": "ap-south-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Settings.Region != "ap-south-1" {
		t.Errorf("region = %q, want ap-south-1", cfg.Settings.Region)
	}
}

func TestParse_LLMGateSettings(t *testing.T) {
	cfg, warnings, err := Parse([]byte(`
llmgate_settings:
  budget_enforcement: post_hoc
  clamp_max_tokens: true
  auth_cache_ttl: 2s
  reservation_ttl: 15m
  spend_log_retention: 90d
  rotator_schedule: 300
general_settings:
  max_request_size_mb: 2
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("unexpected warnings %q", warnings)
	}
	s := cfg.Settings
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"enforcement", s.BudgetEnforcement, "post_hoc"},
		{"clamp", s.ClampMaxTokens, true},
		{"auth cache ttl", s.AuthCacheTTL.Std(), 2 * time.Second},
		{"reservation ttl", s.ReservationTTL.Std(), 15 * time.Minute},
		{"spend log retention", s.SpendLogRetention.Std(), 90 * 24 * time.Hour},
		{"rotator schedule in seconds", s.RotatorSchedule.Std(), 5 * time.Minute},
		{"body limit from max_request_size_mb", s.MaxRequestBodyBytes, int64(2 << 20)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParse_Rejects(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		wantErr string
	}{
		{"model required", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n  - model_name: b\n    litellm_params: {model: openai/y}\n  - model_name: c\n    litellm_params: {api_key: k}\n", nil, "model_list[2].litellm_params.model: required"},
		{"model_name required", "model_list:\n  - litellm_params: {model: openai/x}\n", nil, "model_list[0].model_name: required"},
		{"negative rpm", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, rpm: -1}\n", nil, "model_list[0].litellm_params.rpm: must not be negative"},
		{"negative price", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {input_cost_per_token: -0.1}\n", nil, "model_list[0].model_info.input_cost_per_token: must not be negative"},
		{"duplicate model id", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {id: d1}\n  - model_name: b\n    litellm_params: {model: openai/y}\n    model_info: {id: d1}\n", nil, `model_list[1].model_info.id: duplicate id "d1" (also model_list[0])`},
		{"master key prefix", "general_settings: {master_key: abc}\n", nil, "general_settings.master_key: must start with 'sk-'"},
		{"master key prefix from env", "", map[string]string{"LITELLM_MASTER_KEY": "nope"}, "general_settings.master_key: must start with 'sk-'"},
		{"wrong type", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, rpm: lots}\n", nil, "cannot unmarshal"},
		{"not a mapping", "- a\n- b\n", nil, "the top level must be a mapping"},
		{"bad yaml", "model_list: [\n", nil, "parse config"},
		{"bad strategy", "router_settings: {routing_strategy: random}\n", nil, `router_settings.routing_strategy: unknown strategy "random"`},
		{"bad budget duration", "litellm_settings: {max_budget: 10, budget_duration: 10x}\n", nil, "litellm_settings.budget_duration: invalid duration"},
		{"negative proxy budget", "litellm_settings: {max_budget: -1}\n", nil, "litellm_settings.max_budget: must not be negative"},
		{"bad timezone", "litellm_settings: {timezone: Mars/Olympus}\n", nil, `litellm_settings.timezone: unknown time zone "Mars/Olympus"`},
		{"bad enforcement", "llmgate_settings: {budget_enforcement: maybe}\n", nil, "llmgate_settings.budget_enforcement"},
		{"bad port env", "", map[string]string{"LLMGATE_PORT": "http"}, `LLMGATE_PORT: "http" is not a port number`},
		{"bad duration setting", "llmgate_settings: {auth_cache_ttl: soon}\n", nil, "invalid duration"},
		{"alias without model", "router_settings:\n  model_group_alias:\n    gpt-4: {hidden: true}\n", nil, "router_settings.model_group_alias.gpt-4.model: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatalf("Parse accepted it; want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	if _, _, err := Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("missing file: err = %v, want a read error", err)
	}
	cfg, _, err := Load("")
	if err != nil {
		t.Fatalf("empty path: %v", err)
	}
	if len(cfg.ModelList) != 0 {
		t.Errorf("empty config has %d models", len(cfg.ModelList))
	}
}

func TestLoad_ShippedConfigs(t *testing.T) {
	for _, path := range []string{"../../config.example.yaml", "../../config.demo.yaml"} {
		t.Run(path, func(t *testing.T) {
			t.Setenv("LITELLM_MASTER_KEY", "sk-test")
			cfg, warnings, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, w := range warnings {
				if strings.Contains(w, "unknown") {
					t.Errorf("shipped config has an unknown setting: %s", w)
				}
			}
			if len(cfg.ModelList) == 0 {
				t.Error("no models")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/seed.yaml")
	f.Add(seed)
	f.Add([]byte("model_list: [{model_name: a, litellm_params: {model: os.environ/X}}]"))
	f.Add([]byte("llmgate_settings: {auth_cache_ttl: 1mo}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse(data, env(nil))
		if err == nil && cfg.Validate() != nil {
			t.Errorf("Parse returned a config that does not validate")
		}
	})
}
