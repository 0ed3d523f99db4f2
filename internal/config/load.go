package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/store"
)

// Defaults for llmgate's own settings.
const (
	DefaultTableName            = "llmgate"
	DefaultRegion               = "us-east-1"
	DefaultPort                 = 4000
	DefaultMaxRequestBodyBytes  = 10 << 20
	DefaultMaxResponseBodyBytes = 16 << 20
	DefaultAuthCacheTTL         = Duration(5 * time.Second)
	DefaultReservationTTL       = Duration(20 * time.Minute)
	DefaultRotatorSchedule      = Duration(time.Minute)
	DefaultModelRefreshInterval = Duration(10 * time.Second)
	DefaultSecretsPrefix        = "llmgate/keys/"
	DefaultReadHeaderTimeout    = Duration(10 * time.Second)
	DefaultBodyReadTimeout      = Duration(time.Minute)
	DefaultIdleTimeout          = Duration(2 * time.Minute)
	DefaultMaxConnections       = 4096
)

// envPrefix marks a value that LiteLLM reads from the environment: "os.environ/NAME".
const envPrefix = "os.environ/"

// Load reads the config file at path (empty path: an empty config), resolves
// os.environ/NAME references, applies env overrides and defaults, and validates.
// Warnings (unknown keys, unset env references, settings llmgate does not use) are returned
// for the caller to log; they never stop a LiteLLM config from loading.
func Load(path string) (*Config, []string, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read config: %w", err)
		}
	}
	return Parse(data, os.LookupEnv)
}

// Parse is Load on bytes with an injectable environment lookup.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, []string, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("parse config: %w", err)
	}
	cfg := &Config{}
	var warnings []string
	if root.Kind != 0 {
		doc := &root
		if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
			doc = doc.Content[0]
		}
		if doc.Kind != yaml.MappingNode && !(doc.Kind == yaml.ScalarNode && doc.Tag == "!!null") {
			return nil, nil, fmt.Errorf("parse config: the top level must be a mapping")
		}
		if doc.Kind == yaml.MappingNode {
			envVars := environmentVariables(doc)
			lookup := func(name string) (string, bool) {
				if v, ok := envVars[name]; ok {
					return v, true
				}
				return lookupEnv(name)
			}
			warnings = append(warnings, resolveEnv(doc, "", lookup)...)
			var c checker
			c.check(doc, reflect.TypeOf(*cfg), "")
			warnings = append(warnings, c.warnings...)
			if len(c.errs) > 0 {
				return nil, warnings, errors.Join(c.errs...)
			}
			// The check above should catch every decode error; this is the backstop.
			if err := doc.Decode(cfg); err != nil {
				return nil, nil, fmt.Errorf("parse config: %s", cleanYAMLError(err))
			}
		}
	}
	if err := applyEnv(cfg, lookupEnv); err != nil {
		return nil, nil, err
	}
	applyDefaults(cfg)
	if cfg.GeneralSettings.DatabaseURL != "" {
		warnings = append(warnings, "general_settings.database_url is not used: llmgate keeps its state in DynamoDB (table "+cfg.Settings.TableName+")")
	}
	if err := cfg.Validate(); err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

func environmentVariables(doc *yaml.Node) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "environment_variables" || doc.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[i+1]
		for j := 0; j+1 < len(m.Content); j += 2 {
			out[m.Content[j].Value] = m.Content[j+1].Value
		}
	}
	return out
}

// resolveEnv replaces every scalar "os.environ/NAME" with the variable's value, in place.
func resolveEnv(n *yaml.Node, path string, lookup func(string) (string, bool)) []string {
	var warnings []string
	switch n.Kind {
	case yaml.ScalarNode:
		if name, ok := strings.CutPrefix(n.Value, envPrefix); ok {
			v, found := lookup(name)
			if !found {
				warnings = append(warnings, fmt.Sprintf("%s: environment variable %s is not set", path, name))
			}
			// The value is typed as if written in place, so "rpm: os.environ/RPM" reads a number;
			// an unset or empty variable is null (the field's zero value), but a value that
			// merely spells null ("~") or a merge ("<<") stays the string it is.
			n.Value, n.Tag, n.Style = v, "", 0
			if tag := n.ShortTag(); v != "" && (tag == "!!null" || tag == "!!merge") {
				n.Tag = "!!str"
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			warnings = append(warnings, resolveEnv(n.Content[i+1], join(path, n.Content[i].Value), lookup)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			warnings = append(warnings, resolveEnv(c, fmt.Sprintf("%s[%d]", path, i), lookup)...)
		}
	}
	return warnings
}

// checker walks the YAML tree beside the Go type it decodes into, before decoding, so every
// problem is reported by its dotted path: yaml.v3's own type errors only name a line number.
type checker struct {
	warnings []string
	errs     []error
}

// check warns about keys that have no field in t (so configs written for LiteLLM still load)
// and about fields tagged `unused:"why"` (parsed for compatibility, no effect), and records
// an error for each value that does not fit its field.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Following aliases cannot blow up: the walk stops where the YAML outgrows the Go type,
	// and Config nests only a few levels deep.
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.ShortTag() == "!!null" || t.Kind() == reflect.Interface {
		return // null leaves the zero value; an interface takes anything
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || n.Kind == yaml.ScalarNode {
		c.checkScalar(n, t, path)
		return
	}
	switch {
	case n.Kind == yaml.MappingNode && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map):
		var fields map[string]reflect.StructField
		if t.Kind() == reflect.Struct {
			fields = yamlFields(t)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if key.ShortTag() == "!!merge" {
				c.checkMerge(val, t, path)
				continue
			}
			p := join(path, key.Value)
			if t.Kind() == reflect.Map {
				c.check(val, t.Elem(), p)
				continue
			}
			f, ok := fields[key.Value]
			if !ok && t == reflect.TypeFor[ModelInfo]() && isPriceKey(key.Value) {
				c.check(val, reflect.TypeFor[float64](), p) // into ModelInfo.Other
				continue
			}
			if !ok {
				c.warnings = append(c.warnings, p+": unknown or unsupported setting, ignored")
				continue
			}
			if why := f.Tag.Get("unused"); why != "" {
				c.warnings = append(c.warnings, fmt.Sprintf("%s: not implemented by llmgate, ignored (%s)", p, why))
			}
			c.check(val, f.Type, p)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		c.mismatch(path, n, t)
	}
}

// checkMerge follows a "<<: *anchor" (or a list of anchors) into the mapping it merges.
func (c *checker) checkMerge(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.SequenceNode {
		for _, e := range n.Content {
			c.check(e, t, path)
		}
		return
	}
	c.check(n, t, path)
}

// checkScalar decodes n into a throwaway t: that runs yaml.v3's conversions and Duration's
// UnmarshalYAML exactly as the real decode will.
func (c *checker) checkScalar(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	switch {
	case err == nil && isInt(t.Kind()) && n.ShortTag() == "!!float" && !isWhole(n.Value):
		c.mismatch(path, n, t) // yaml.v3 would truncate rpm: 1.5 to 1 without a word
	case err == nil:
	case errors.As(err, new(*yaml.TypeError)):
		c.mismatch(path, n, t)
	default:
		c.fail(path, n, err.Error()) // Duration's own reason
	}
}

func (c *checker) fail(path string, n *yaml.Node, reason string) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s (line %d)", path, reason, n.Line))
}

func (c *checker) mismatch(path string, n *yaml.Node, t reflect.Type) {
	c.fail(path, n, "must be "+describe(t)+", not "+describeNode(n))
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// describe names what a value of type t looks like in YAML.
func describe(t reflect.Type) string {
	if isInt(t.Kind()) {
		return "a whole number"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	}
	return t.String()
}

func isInt(k reflect.Kind) bool {
	return reflect.Int <= k && k <= reflect.Uint64
}

// isWhole reports whether a YAML float such as "1e3" or "2.0" has no fraction.
func isWhole(v string) bool {
	var f float64
	if err := yaml.Unmarshal([]byte(v), &f); err != nil {
		return false
	}
	return f == math.Trunc(f)
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// cleanYAMLError turns "yaml: unmarshal errors:\n  line 3: cannot unmarshal ..." into one line.
func cleanYAMLError(err error) string {
	msg := strings.ReplaceAll(err.Error(), "yaml: unmarshal errors:\n", "")
	return strings.Join(strings.Fields(msg), " ")
}

// applyEnv applies LITELLM_MASTER_KEY and LLMGATE_* overrides.
func applyEnv(cfg *Config, lookupEnv func(string) (string, bool)) error {
	if v, ok := lookupEnv("LITELLM_MASTER_KEY"); ok && v != "" {
		cfg.GeneralSettings.MasterKey = v
	}
	s := &cfg.Settings
	if v, ok := lookupEnv("LLMGATE_TABLE"); ok && v != "" {
		s.TableName = v
	}
	if v, ok := lookupEnv("LLMGATE_DYNAMODB_ENDPOINT"); ok && v != "" {
		s.DynamoDBEndpoint = v
	}
	if v, ok := lookupEnv("LLMGATE_REGION"); ok && v != "" {
		s.Region = v
	} else if v, ok := lookupEnv("AWS_REGION"); ok && v != "" && s.Region == "" {
		s.Region = v
	}
	if v, ok := lookupEnv("LLMGATE_PORT"); ok && v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("LLMGATE_PORT: %q is not a port number", v)
		}
		s.Port = p
	}
	if v, ok := lookupEnv("LLMGATE_BUDGET_ENFORCEMENT"); ok && v != "" {
		// Checked here so the error names the variable, not the YAML key it overrides.
		if err := checkEnforcement(v); err != nil {
			return fmt.Errorf("LLMGATE_BUDGET_ENFORCEMENT: %w", err)
		}
		s.BudgetEnforcement = v
	}
	if v, ok := lookupEnv("LLMGATE_SECRETS_PREFIX"); ok && v != "" {
		s.SecretsPrefix = v
	}
	return nil
}

func applyDefaults(cfg *Config) {
	s := &cfg.Settings
	if s.TableName == "" {
		s.TableName = DefaultTableName
	}
	if s.Region == "" {
		s.Region = DefaultRegion
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.BudgetEnforcement == "" {
		s.BudgetEnforcement = "reserve"
	}
	if s.AuthCacheTTL == 0 {
		s.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if s.ReservationTTL == 0 {
		s.ReservationTTL = DefaultReservationTTL
	}
	if s.MaxRequestBodyBytes == 0 {
		s.MaxRequestBodyBytes = DefaultMaxRequestBodyBytes
		if mb := cfg.GeneralSettings.MaxRequestSizeMB; mb > 0 {
			s.MaxRequestBodyBytes = int64(mb * (1 << 20))
		}
	}
	if s.MaxResponseBodyBytes <= 0 {
		s.MaxResponseBodyBytes = DefaultMaxResponseBodyBytes
	}
	if s.RotatorSchedule == 0 {
		s.RotatorSchedule = DefaultRotatorSchedule
	}
	if s.SecretsPrefix == "" {
		s.SecretsPrefix = DefaultSecretsPrefix
	}
	if s.ModelRefreshInterval == 0 {
		s.ModelRefreshInterval = DefaultModelRefreshInterval
	}
	if s.MaxConnections <= 0 {
		s.MaxConnections = DefaultMaxConnections
	}
	for _, d := range []struct {
		v   *Duration
		def Duration
	}{{&s.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&s.BodyReadTimeout, DefaultBodyReadTimeout}, {&s.IdleTimeout, DefaultIdleTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
}

// Validate checks the config and names the first invalid value by its path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, reason string) { errs = append(errs, fmt.Errorf("%s: %s", path, reason)) }
	ids := map[string]int{}
	for i, d := range c.ModelList {
		p := fmt.Sprintf("model_list[%d]", i)
		validateDeployment(d, p, bad)
		if id := d.ModelInfo.ID; id != "" {
			if j, dup := ids[id]; dup {
				bad(p+".model_info.id", fmt.Sprintf("duplicate id %q (also model_list[%d])", id, j))
			}
			ids[id] = i
		}
	}
	if mk := c.GeneralSettings.MasterKey; mk != "" && !strings.HasPrefix(mk, "sk-") {
		bad("general_settings.master_key", "must start with 'sk-'")
	}
	ls := c.LiteLLMSettings
	if ls.MaxBudget != nil && *ls.MaxBudget < 0 {
		bad("litellm_settings.max_budget", "must not be negative")
	}
	if ls.BudgetDuration != "" {
		if _, err := duration.Parse(ls.BudgetDuration); err != nil {
			bad("litellm_settings.budget_duration", err.Error())
		}
	}
	if ls.Timezone != "" {
		if _, err := time.LoadLocation(ls.Timezone); err != nil {
			bad("litellm_settings.timezone", fmt.Sprintf("unknown time zone %q", ls.Timezone))
		}
	}
	if ls.NumRetries != nil && *ls.NumRetries < 0 {
		bad("litellm_settings.num_retries", "must not be negative")
	}
	rs := c.RouterSettings
	switch rs.RoutingStrategy {
	case "", "simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing", "usage-based-routing-v2", "cost-based-routing":
	default:
		bad("router_settings.routing_strategy", fmt.Sprintf("unknown strategy %q (want simple-shuffle, least-busy, latency-based-routing, usage-based-routing or cost-based-routing)", rs.RoutingStrategy))
	}
	if rs.NumRetries != nil && *rs.NumRetries < 0 {
		bad("router_settings.num_retries", "must not be negative")
	}
	if rs.AllowedFails != nil && *rs.AllowedFails < 0 {
		bad("router_settings.allowed_fails", "must not be negative")
	}
	if rs.CooldownTime != nil && *rs.CooldownTime < 0 {
		bad("router_settings.cooldown_time", "must not be negative")
	}
	for alias, v := range rs.ModelGroupAlias {
		switch v := v.(type) {
		case string:
		case map[string]any:
			if m, _ := v["model"].(string); m == "" {
				bad("router_settings.model_group_alias."+alias+".model", "required")
			}
		default:
			bad("router_settings.model_group_alias."+alias, "must be a model group name or {model: ..., hidden: ...}")
		}
	}
	s := c.Settings
	if err := checkEnforcement(s.BudgetEnforcement); err != nil {
		bad("llmgate_settings.budget_enforcement", err.Error())
	}
	if s.Port <= 0 || s.Port > 65535 {
		bad("llmgate_settings.port", fmt.Sprintf("%d is not a port number", s.Port))
	}
	if s.MaxRequestBodyBytes < 0 {
		bad("llmgate_settings.max_request_body_bytes", "must not be negative")
	}
	if s.EscrowShards < 0 || s.EscrowShards > store.MaxEscrowShards {
		bad("llmgate_settings.escrow_shards", fmt.Sprintf("%d is not between 0 and %d", s.EscrowShards, store.MaxEscrowShards))
	}
	return errors.Join(errs...)
}

// validateDeployment checks one model_list entry; p is its path.
func validateDeployment(d Deployment, p string, bad func(path, reason string)) {
	if strings.TrimSpace(d.ModelName) == "" {
		bad(p+".model_name", "required")
	}
	if strings.TrimSpace(d.LiteLLMParams.Model) == "" {
		bad(p+".litellm_params.model", "required")
	}
	lp := d.LiteLLMParams
	for name, v := range map[string]float64{"rpm": float64(lp.RPM), "tpm": float64(lp.TPM), "weight": lp.Weight, "timeout": lp.Timeout, "stream_timeout": lp.StreamTimeout} {
		if v < 0 {
			bad(p+".litellm_params."+name, "must not be negative")
		}
	}
	if lp.MaxRetries != nil && *lp.MaxRetries < 0 {
		bad(p+".litellm_params.max_retries", "must not be negative")
	}
	for name, v := range map[string]*float64{"litellm_params.input_cost_per_token": lp.InputCostPerToken, "litellm_params.output_cost_per_token": lp.OutputCostPerToken, "model_info.input_cost_per_token": d.ModelInfo.InputCostPerToken, "model_info.output_cost_per_token": d.ModelInfo.OutputCostPerToken,
		"model_info.output_cost_per_image": d.ModelInfo.OutputCostPerImage, "model_info.input_cost_per_pixel": d.ModelInfo.InputCostPerPixel,
		"model_info.cache_creation_input_token_cost_above_1hr": d.ModelInfo.CacheCreationInputTokenCostAbove1hr} {
		if v != nil && *v < 0 {
			bad(p+"."+name, "must not be negative")
		}
	}
	for k, v := range d.ModelInfo.Other {
		if f, isNum := number(v); isNum && f < 0 && isPriceKey(k) {
			bad(p+".model_info."+k, "must not be negative")
		}
	}
}

// ParseDeployment reads one model_list entry written as JSON or YAML (a model stored with
// /model/new), resolving its os.environ/NAME references with lookupEnv, and validates it.
// Warnings are as Parse's.
func ParseDeployment(data []byte, lookupEnv func(string) (string, bool)) (Deployment, []string, error) {
	var d Deployment
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return d, nil, fmt.Errorf("parse deployment: %s", cleanYAMLError(err))
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = *n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return d, nil, errors.New("parse deployment: must be an object")
	}
	warnings := resolveEnv(&n, "", lookupEnv)
	var c checker
	c.check(&n, reflect.TypeOf(d), "")
	warnings = append(warnings, c.warnings...)
	if len(c.errs) > 0 {
		return d, warnings, errors.Join(c.errs...)
	}
	if err := n.Decode(&d); err != nil {
		return d, warnings, fmt.Errorf("parse deployment: %s", cleanYAMLError(err))
	}
	var errs []error
	validateDeployment(d, "", func(path, reason string) {
		errs = append(errs, fmt.Errorf("%s: %s", strings.TrimPrefix(path, "."), reason))
	})
	return d, warnings, errors.Join(errs...)
}

// checkEnforcement accepts the budget_enforcement modes (the YAML key and its env override).
func checkEnforcement(v string) error {
	if v != "reserve" && v != "post_hoc" {
		return fmt.Errorf("%q: want reserve or post_hoc", v)
	}
	return nil
}

// maxDurationSeconds is the 100 years internal/duration allows.
const maxDurationSeconds = 100 * 365 * 24 * 60 * 60

// UnmarshalYAML reads "30s", "5m", "48h", "1d", "2w" or a number of seconds. Errors carry no
// position: Parse adds the setting's path and line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New(`must be a duration such as "30s", "5m", "1d" or a number of seconds`)
	}
	v := strings.TrimSpace(n.Value)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		// !(f >= 0) also catches NaN; the cap keeps the conversion below from overflowing.
		if !(f >= 0) || f > maxDurationSeconds {
			return fmt.Errorf("duration %q must be between 0 and 100 years of seconds", v)
		}
		*d = Duration(f * float64(time.Second))
		return nil
	}
	if std, err := time.ParseDuration(v); err == nil {
		if std < 0 {
			return fmt.Errorf("duration %q must not be negative", v)
		}
		*d = Duration(std)
		return nil
	}
	p, err := duration.Parse(v)
	if err != nil {
		return err
	}
	*d = Duration(p.Approx())
	return nil
}
