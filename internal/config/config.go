// Package config loads llmgate's configuration: LiteLLM Proxy's config.yaml format
// (model_list, litellm_settings, general_settings, router_settings) plus llmgate's own
// settings from the llmgate_settings block and LLMGATE_* environment variables.
package config

import (
	"time"
)

// Config is the whole gateway configuration after loading, env resolution and validation.
type Config struct {
	ModelList            []Deployment      `yaml:"model_list"`
	LiteLLMSettings      LiteLLMSettings   `yaml:"litellm_settings"`
	GeneralSettings      GeneralSettings   `yaml:"general_settings"`
	RouterSettings       RouterSettings    `yaml:"router_settings"`
	EnvironmentVariables map[string]string `yaml:"environment_variables"`
	Settings             Settings          `yaml:"llmgate_settings"`
}

// Deployment is one model_list entry: a deployment of the model group ModelName.
type Deployment struct {
	ModelName     string        `yaml:"model_name"`
	LiteLLMParams LiteLLMParams `yaml:"litellm_params"`
	ModelInfo     ModelInfo     `yaml:"model_info"`
}

// LiteLLMParams says how to reach a deployment. Model carries the provider prefix
// ("openai/gpt-4o", "anthropic/claude-3-5-sonnet", "bedrock/...").
type LiteLLMParams struct {
	Model              string            `yaml:"model"`
	APIKey             string            `yaml:"api_key"`
	APIBase            string            `yaml:"api_base"`
	APIVersion         string            `yaml:"api_version"`
	RPM                int               `yaml:"rpm"`
	TPM                int               `yaml:"tpm"`
	Weight             float64           `yaml:"weight"`
	Timeout            float64           `yaml:"timeout"`        // seconds
	StreamTimeout      float64           `yaml:"stream_timeout"` // seconds
	MaxRetries         *int              `yaml:"max_retries"`
	AWSRegionName      string            `yaml:"aws_region_name"`
	AWSAccessKeyID     string            `yaml:"aws_access_key_id"`
	AWSSecretAccessKey string            `yaml:"aws_secret_access_key"`
	AWSSessionToken    string            `yaml:"aws_session_token"`
	InputCostPerToken  *float64          `yaml:"input_cost_per_token"`
	OutputCostPerToken *float64          `yaml:"output_cost_per_token"`
	MockResponse       string            `yaml:"mock_response"`
	ExtraHeaders       map[string]string `yaml:"extra_headers"`
	Headers            map[string]string `yaml:"headers"`
	MaxTokens          int               `yaml:"max_tokens"`
}

// ModelInfo is model_info: an id, prices that override the cost map, limits and access groups.
type ModelInfo struct {
	ID                          string   `yaml:"id"`
	Mode                        string   `yaml:"mode"`
	BaseModel                   string   `yaml:"base_model"`
	InputCostPerToken           *float64 `yaml:"input_cost_per_token"`
	OutputCostPerToken          *float64 `yaml:"output_cost_per_token"`
	CacheReadInputTokenCost     *float64 `yaml:"cache_read_input_token_cost"`
	CacheCreationInputTokenCost *float64 `yaml:"cache_creation_input_token_cost"`
	// CacheCreationInputTokenCostAbove1hr prices cache writes with a 1-hour TTL.
	CacheCreationInputTokenCostAbove1hr *float64 `yaml:"cache_creation_input_token_cost_above_1hr"`
	MaxTokens                           int      `yaml:"max_tokens"`
	MaxInputTokens                      int      `yaml:"max_input_tokens"`
	MaxOutputTokens                     int      `yaml:"max_output_tokens"`
	AccessGroups                        []string `yaml:"access_groups"`
	Description                         string   `yaml:"description"`
	// SupportsReasoning and SupportsPDFInput override the cost map's flags.
	SupportsReasoning *bool `yaml:"supports_reasoning"`
	SupportsPDFInput  *bool `yaml:"supports_pdf_input"`
	// OutputCostPerImage and InputCostPerPixel price image generation (USD per image, per
	// pixel of each image): set, they replace the cost map's image prices for the model.
	OutputCostPerImage *float64 `yaml:"output_cost_per_image"`
	InputCostPerPixel  *float64 `yaml:"input_cost_per_pixel"`
	// Other holds the keys without a field: among them the prices that apply above a prompt
	// size (see TierKey and PriceTiers); the others are ignored with a warning.
	Other map[string]any `yaml:",inline"`
}

// LiteLLMSettings is litellm_settings.
type LiteLLMSettings struct {
	// DropParams has no effect in llmgate; its `unused` tag makes Parse warn.
	DropParams                  bool                   `yaml:"drop_params" unused:"OpenAI-compatible upstreams get the client's params as sent"`
	NumRetries                  *int                   `yaml:"num_retries"`
	RequestTimeout              float64                `yaml:"request_timeout"` // seconds
	Fallbacks                   []map[string][]string  `yaml:"fallbacks"`
	ContextWindowFallbacks      []map[string][]string  `yaml:"context_window_fallbacks"`
	MaxBudget                   *float64               `yaml:"max_budget"`
	BudgetDuration              string                 `yaml:"budget_duration"`
	Timezone                    string                 `yaml:"timezone"`
	KeyGenerationSettings       *KeyGenerationSettings `yaml:"key_generation_settings"`
	UpperboundKeyGenerateParams map[string]any         `yaml:"upperbound_key_generate_params"`
	DefaultKeyGenerateParams    map[string]any         `yaml:"default_key_generate_params"`
	ModelGroupAlias             map[string]string      `yaml:"model_group_alias"`
	// RequireAuthForMetricsEndpoint: GET /metrics needs the master key (or a proxy_admin
	// key) unless this is false. Unlike LiteLLM, llmgate requires it by default: the series
	// name keys, teams and users.
	RequireAuthForMetricsEndpoint *bool `yaml:"require_auth_for_metrics_endpoint"`
}

// KeyGenerationSettings is litellm_settings.key_generation_settings.
type KeyGenerationSettings struct {
	TeamKeyGeneration     *KeyGenerationRule `yaml:"team_key_generation"`
	PersonalKeyGeneration *KeyGenerationRule `yaml:"personal_key_generation"`
}

// KeyGenerationRule restricts who may generate keys and which params they must pass.
type KeyGenerationRule struct {
	AllowedTeamMemberRoles []string `yaml:"allowed_team_member_roles"`
	AllowedUserRoles       []string `yaml:"allowed_user_roles"`
	RequiredParams         []string `yaml:"required_params"`
}

// GeneralSettings is general_settings.
type GeneralSettings struct {
	MasterKey            string  `yaml:"master_key"`
	DatabaseURL          string  `yaml:"database_url"`
	LiteLLMKeyHeaderName string  `yaml:"litellm_key_header_name"`
	StoreVirtualKeys     bool    `yaml:"store_virtual_keys"`
	CustomKeyGenerate    string  `yaml:"custom_key_generate"`
	MaxRequestSizeMB     float64 `yaml:"max_request_size_mb"`
	DisableSpendLogs     bool    `yaml:"disable_spend_logs"`
	// StorePromptsInSpendLogs has no effect in llmgate; its `unused` tag makes Parse warn.
	StorePromptsInSpendLogs         bool   `yaml:"store_prompts_in_spend_logs" unused:"spend logs never hold prompt or response text"`
	MaximumSpendLogsRetentionPeriod string `yaml:"maximum_spend_logs_retention_period"`
	// StoreModelInDB turns on /model/new, /model/update and /model/delete: deployments stored
	// in DynamoDB beside model_list, picked up by every instance within
	// llmgate_settings.model_refresh_interval.
	StoreModelInDB bool `yaml:"store_model_in_db"`
	// EnforceFallbackModelAccess: configured fallbacks skip groups the calling key, its
	// team or user may not use (the caller then gets the failing group's own error). Unlike
	// LiteLLM, llmgate enforces it unless this is false: a fallback never serves a key a
	// model it may not call.
	EnforceFallbackModelAccess *bool `yaml:"enforce_fallback_model_access"`
}

// RouterSettings is router_settings.
type RouterSettings struct {
	RoutingStrategy        string                `yaml:"routing_strategy"`
	NumRetries             *int                  `yaml:"num_retries"`
	Timeout                float64               `yaml:"timeout"` // seconds
	Fallbacks              []map[string][]string `yaml:"fallbacks"`
	ContextWindowFallbacks []map[string][]string `yaml:"context_window_fallbacks"`
	ModelGroupAlias        map[string]any        `yaml:"model_group_alias"`
	AllowedFails           *int                  `yaml:"allowed_fails"`
	CooldownTime           *float64              `yaml:"cooldown_time"` // seconds
}

// Settings are llmgate's own settings (llmgate_settings in YAML; LLMGATE_* env overrides).
type Settings struct {
	// TableName is the DynamoDB state table (LLMGATE_TABLE).
	TableName string `yaml:"table_name"`
	// DynamoDBEndpoint points at a local DynamoDB (LLMGATE_DYNAMODB_ENDPOINT); empty in AWS.
	DynamoDBEndpoint string `yaml:"dynamodb_endpoint"`
	// Region is the AWS region (LLMGATE_REGION, else AWS_REGION, else us-east-1).
	Region string `yaml:"region"`
	// Port is the local server's port (LLMGATE_PORT; --port wins).
	Port int `yaml:"port"`
	// BudgetEnforcement is "reserve" (default: spend never passes a budget) or "post_hoc".
	BudgetEnforcement string `yaml:"budget_enforcement"`
	// ClampMaxTokens lowers max_tokens to what the remaining budget can pay, instead of refusing.
	ClampMaxTokens bool `yaml:"clamp_max_tokens"`
	// AllowUnpricedModels lets callers with a budget use models that have no known price, at
	// cost 0; otherwise reserve mode refuses such calls.
	AllowUnpricedModels bool `yaml:"allow_unpriced_models"`
	// AuthCacheTTL is how long a warm process may cache key/user/team records.
	AuthCacheTTL Duration `yaml:"auth_cache_ttl"`
	// ReservationTTL is how long a reservation or parallel lease lives before the rotator settles it.
	ReservationTTL Duration `yaml:"reservation_ttl"`
	// MaxRequestBodyBytes caps request bodies (default 10 MiB, like API Gateway).
	MaxRequestBodyBytes int64 `yaml:"max_request_body_bytes"`
	// MaxResponseBodyBytes caps a non-streamed upstream answer (default 16 MiB); a larger
	// one is a 400, never buffered whole.
	MaxResponseBodyBytes int64 `yaml:"max_response_body_bytes"`
	// CostMapPath is a newer LiteLLM-format cost map that replaces the embedded snapshot.
	CostMapPath string `yaml:"cost_map_path"`
	// SpendLogRetention is how long spend logs live before TTL deletes them (0 = forever).
	SpendLogRetention Duration `yaml:"spend_log_retention"`
	// RotatorSchedule is how often the rotator runs (local ticker; EventBridge rate in AWS).
	RotatorSchedule Duration `yaml:"rotator_schedule"`
	// SecretsPrefix is the Secrets Manager name prefix for stored virtual keys.
	SecretsPrefix string `yaml:"secrets_prefix"`
	// ReadHeaderTimeout, BodyReadTimeout and IdleTimeout bound how long the local server
	// waits for a request's headers, for its body, and for the next request on a keep-alive
	// connection. Nothing bounds writing: a stream may run for minutes.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	BodyReadTimeout   Duration `yaml:"body_read_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	// MaxConnections caps the local server's open client connections: past it, new
	// connections wait in the listen backlog until one closes, so a flood of idle or slow
	// connections cannot exhaust file descriptors and memory.
	MaxConnections int `yaml:"max_connections"`
	// AllowClientMockTesting lets every key use mock_response and the mock_testing_* flags
	// on real deployments too; by default only a proxy admin may (any key on mock deployments).
	AllowClientMockTesting bool `yaml:"allow_client_mock_testing"`
	// ModelRefreshInterval is how often, at most, an instance reads the version of the
	// models stored in DynamoDB (store_model_in_db): an added, changed or deleted model is
	// served by every instance at most this long after the write.
	ModelRefreshInterval Duration `yaml:"model_refresh_interval"`
	// EscrowShards is the most escrow shards a team or key budget is split into, so that one
	// team's or key's calls do not all write its record (0 or 1: never split; at most 64, a
	// key at most 32). A team, or a key whose budget is its only per-call limit, gets one
	// shard per $1 of max_budget up to this many.
	EscrowShards int `yaml:"escrow_shards"`
}

// Duration is a time.Duration that reads "30s", "5m", "48h", "1d" or a number of seconds in YAML.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
