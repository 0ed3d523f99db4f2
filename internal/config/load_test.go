package config

import (
	"fmt"
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
		"litellm_settings.drop_params: not implemented by llmgate, ignored (OpenAI-compatible upstreams get the client's params as sent)",
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
	cfg, _, err := Parse([]byte("general_settings: {master_key: sk-file}\nllmgate_settings: {table_name: from-file, port: 5000, budget_enforcement: reserve, secrets_prefix: file/}\n"), env(map[string]string{
		"LITELLM_MASTER_KEY":         "sk-env",
		"LLMGATE_BUDGET_ENFORCEMENT": "post_hoc",
		"LLMGATE_SECRETS_PREFIX":     "team-a/keys/",
		"LLMGATE_TABLE":              "from-env",
		"LLMGATE_DYNAMODB_ENDPOINT":  "http://127.0.0.1:8000",
		"LLMGATE_REGION":             "eu-west-1",
		"LLMGATE_PORT":               "4100",
		"AWS_REGION":                 "us-west-2",
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
		{"budget enforcement", s.BudgetEnforcement, "post_hoc"},
		{"secrets prefix", s.SecretsPrefix, "team-a/keys/"},
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
  escrow_shards: 32
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
		{"escrow shards", s.EscrowShards, 32},
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
		{"wrong type", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, rpm: lots}\n", nil, `model_list[0].litellm_params.rpm: must be a whole number, not "lots" (line 3)`},
		{"fraction for an integer", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n  - model_name: b\n    litellm_params: {model: openai/y, tpm: 1.5}\n", nil, `model_list[1].litellm_params.tpm: must be a whole number, not "1.5" (line 5)`},
		{"pointer field", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, max_retries: twice}\n", nil, `model_list[0].litellm_params.max_retries: must be a whole number, not "twice" (line 3)`},
		{"negative tiered price", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {input_cost_per_token_above_200k_tokens: -1e-6}\n", nil, "model_list[0].model_info.input_cost_per_token_above_200k_tokens: must not be negative"},
		{"negative priority price", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {output_cost_per_token_priority: -1}\n", nil, "model_list[0].model_info.output_cost_per_token_priority: must not be negative"},
		{"priority price not a number", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {input_cost_per_token_priority: dear}\n", nil, `model_list[0].model_info.input_cost_per_token_priority: must be a number, not "dear" (line 4)`},
		{"tiered price not a number", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {output_cost_per_token_above_128k_tokens: dear}\n", nil, `model_list[0].model_info.output_cost_per_token_above_128k_tokens: must be a number, not "dear" (line 4)`},
		{"model_info price", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {input_cost_per_token: cheap}\n", nil, `model_list[0].model_info.input_cost_per_token: must be a number, not "cheap" (line 4)`},
		{"list wanted", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {access_groups: beta}\n", nil, `model_list[0].model_info.access_groups: must be a list, not "beta" (line 4)`},
		{"mapping for a string", "model_list:\n  - model_name: {a: b}\n    litellm_params: {model: openai/x}\n", nil, `model_list[0].model_name: must be a string, not a mapping (line 2)`},
		{"model_list not a list", "model_list: 5\n", nil, `model_list: must be a list, not "5" (line 1)`},
		{"model_list entry not a mapping", "model_list:\n  - gpt-4o\n", nil, `model_list[0]: must be a mapping, not "gpt-4o" (line 2)`},
		{"section not a mapping", "litellm_settings: [a]\n", nil, `litellm_settings: must be a mapping, not a list (line 1)`},
		{"litellm_settings type", "litellm_settings: {num_retries: many}\n", nil, `litellm_settings.num_retries: must be a whole number, not "many" (line 1)`},
		{"litellm_settings nested", "litellm_settings:\n  fallbacks: [{gpt-4o: gpt-4o-mini}]\n", nil, `litellm_settings.fallbacks[0].gpt-4o: must be a list, not "gpt-4o-mini" (line 2)`},
		{"general_settings type", "general_settings: {store_virtual_keys: maybe}\n", nil, `general_settings.store_virtual_keys: must be true or false, not "maybe" (line 1)`},
		{"unused setting still typed", "general_settings: {store_prompts_in_spend_logs: maybe}\n", nil, `general_settings.store_prompts_in_spend_logs: must be true or false, not "maybe" (line 1)`},
		{"router_settings type", "router_settings:\n  cooldown_time: soon\n", nil, `router_settings.cooldown_time: must be a number, not "soon" (line 2)`},
		{"llmgate_settings type", "llmgate_settings: {port: http}\n", nil, `llmgate_settings.port: must be a whole number, not "http" (line 1)`},
		{"type error through an alias", "x: &n lots\nrouter_settings: {allowed_fails: *n}\n", nil, `router_settings.allowed_fails: must be a whole number, not "lots" (line 1)`},
		{"type error in a merge", "base: &b {rpm: lots}\nmodel_list:\n  - model_name: a\n    litellm_params: {<<: *b, model: openai/x}\n", nil, `model_list[0].litellm_params.rpm: must be a whole number, not "lots" (line 1)`},
		{"not a mapping", "- a\n- b\n", nil, "the top level must be a mapping"},
		{"bad yaml", "model_list: [\n", nil, "parse config"},
		{"bad strategy", "router_settings: {routing_strategy: random}\n", nil, `router_settings.routing_strategy: unknown strategy "random"`},
		{"bad budget duration", "litellm_settings: {max_budget: 10, budget_duration: 10x}\n", nil, "litellm_settings.budget_duration: invalid duration"},
		{"negative proxy budget", "litellm_settings: {max_budget: -1}\n", nil, "litellm_settings.max_budget: must not be negative"},
		{"bad timezone", "litellm_settings: {timezone: Mars/Olympus}\n", nil, `litellm_settings.timezone: unknown time zone "Mars/Olympus"`},
		{"bad enforcement", "llmgate_settings: {budget_enforcement: maybe}\n", nil, `llmgate_settings.budget_enforcement: "maybe": want reserve or post_hoc`},
		{"escrow shards over the cap", "llmgate_settings: {escrow_shards: 65}\n", nil, `llmgate_settings.escrow_shards: 65 is not between 0 and 64`},
		{"bad port env", "", map[string]string{"LLMGATE_PORT": "http"}, `LLMGATE_PORT: "http" is not a port number`},
		{"bad duration setting", "llmgate_settings:\n  auth_cache_ttl: soon\n", nil, `llmgate_settings.auth_cache_ttl: invalid duration "soon": want a number and a unit (s, m, h, d, w, mo) (line 2)`},
		{"negative duration", "llmgate_settings: {reservation_ttl: -5}\n", nil, `llmgate_settings.reservation_ttl: duration "-5" must be between 0 and 100 years of seconds (line 1)`},
		{"NaN duration", "llmgate_settings: {rotator_schedule: NaN}\n", nil, `llmgate_settings.rotator_schedule: duration "NaN" must be between 0 and 100 years of seconds (line 1)`},
		{"overflowing duration", "llmgate_settings: {spend_log_retention: 1e30}\n", nil, `llmgate_settings.spend_log_retention: duration "1e30" must be between 0 and 100 years of seconds (line 1)`},
		{"duration not a scalar", "llmgate_settings: {auth_cache_ttl: [1s]}\n", nil, `llmgate_settings.auth_cache_ttl: must be a duration such as "30s", "5m", "1d" or a number of seconds (line 1)`},
		{"bad enforcement env", "", map[string]string{"LLMGATE_BUDGET_ENFORCEMENT": "strict"}, `LLMGATE_BUDGET_ENFORCEMENT: "strict": want reserve or post_hoc`},
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

func TestParse_UnusedSettingsWarn(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"litellm_settings: {drop_params: true}\n", "litellm_settings.drop_params: not implemented by llmgate, ignored (OpenAI-compatible upstreams get the client's params as sent)"},
		{"general_settings: {store_prompts_in_spend_logs: true}\n", "general_settings.store_prompts_in_spend_logs: not implemented by llmgate, ignored (spend logs never hold prompt or response text)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, warnings, err := Parse([]byte(tt.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(warnings, []string{tt.want}) {
				t.Errorf("warnings = %q, want [%q]", warnings, tt.want)
			}
		})
	}
}

func TestParse_EnvValuesAndAnchorsDecode(t *testing.T) {
	cfg, warnings, err := Parse([]byte(`
x-limits: &limits {rpm: 10, tpm: 1e3}
model_list:
  - model_name: a
    litellm_params:
      <<: *limits
      model: openai/x
      timeout: os.environ/TIMEOUT
      max_tokens: os.environ/EMPTY
      api_key: os.environ/TILDE
      api_base: os.environ/DIGITS
llmgate_settings: {auth_cache_ttl: os.environ/TTL}
`), env(map[string]string{"TIMEOUT": "7.5", "TTL": "1m", "EMPTY": "", "TILDE": "~", "DIGITS": "0123"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x-limits: unknown or unsupported setting, ignored"}; !slices.Equal(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
	lp := cfg.ModelList[0].LiteLLMParams
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"merged rpm", lp.RPM, 10},
		{"merged tpm written as a float", lp.TPM, 1000},
		{"env number", lp.Timeout, 7.5},
		{"empty env is the zero value", lp.MaxTokens, 0},
		{"env value spelling null stays a string", lp.APIKey, "~"},
		{"env digits stay as written in a string", lp.APIBase, "0123"},
		{"env duration", cfg.Settings.AuthCacheTTL.Std(), time.Minute},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParse_ReportsEveryTypeError(t *testing.T) {
	_, _, err := Parse([]byte("router_settings: {allowed_fails: a, num_retries: b}\n"), env(nil))
	want := "router_settings.allowed_fails: must be a whole number, not \"a\" (line 1)\n" +
		"router_settings.num_retries: must be a whole number, not \"b\" (line 1)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestParse_NestedAliasesStayCheap(t *testing.T) {
	// Each level doubles the expanded size: 2^40 leaves if the check followed every alias.
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x]\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d]\n", i, i, i-1, i-1)
	}
	b.WriteString("litellm_settings:\n  fallbacks: [{m: *a40}]\n")
	done := make(chan error, 1)
	go func() { _, _, err := Parse([]byte(b.String()), env(nil)); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Parse accepted a 2^40-element alias bomb")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Parse is still walking the aliases after 10s")
	}
}
