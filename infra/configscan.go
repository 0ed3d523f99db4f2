package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/llmgate/llmgate/internal/config"
)

// configNeeds is what the stack must provide for a config.yaml.
type configNeeds struct {
	// EnvNames are the variables the config reads with os.environ/NAME (besides
	// LITELLM_MASTER_KEY, which the generated master key secret provides), sorted.
	EnvNames []string
	// Bedrock are the Bedrock models the config calls.
	Bedrock []bedrockModel
	// KeyGenerateLambda is the function ARN general_settings.custom_key_generate names, which
	// the admin function invokes on /key/generate; empty for a webhook or no hook.
	KeyGenerateLambda string
}

// bedrockModel is a Bedrock model id (or inference profile id or ARN) and its region; an
// empty region means the stack's.
type bedrockModel struct {
	ID     string
	Region string
}

// scanConfig loads the config at path the way the functions will, recording which
// environment variables it asks for instead of reading them.
func scanConfig(path string) (configNeeds, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return configNeeds{}, fmt.Errorf("read config: %w", err)
	}
	var needs configNeeds
	lookup := func(name string) (string, bool) {
		// Parse also asks for llmgate's own overrides (LLMGATE_*, AWS_REGION); those are the
		// function's environment, not the config's references.
		if strings.HasPrefix(name, "LLMGATE_") || name == "AWS_REGION" {
			return "", false
		}
		if name != "LITELLM_MASTER_KEY" && !slices.Contains(needs.EnvNames, name) {
			needs.EnvNames = append(needs.EnvNames, name)
		}
		return "sk-placeholder", true
	}
	cfg, _, err := config.Parse(data, lookup)
	if err != nil {
		return configNeeds{}, fmt.Errorf("config %s: %w", path, err)
	}
	slices.Sort(needs.EnvNames)
	// The prefix admin.NewKeyDecider takes for a Lambda function (anything else is a webhook
	// or refused).
	if spec := cfg.GeneralSettings.CustomKeyGenerate; strings.HasPrefix(spec, "arn:aws:lambda:") {
		needs.KeyGenerateLambda = spec
	}
	for _, d := range cfg.ModelList {
		id, ok := strings.CutPrefix(d.LiteLLMParams.Model, "bedrock/")
		if !ok {
			continue
		}
		for _, route := range []string{"converse/", "invoke/"} {
			id = strings.TrimPrefix(id, route)
		}
		m := bedrockModel{ID: id, Region: d.LiteLLMParams.AWSRegionName}
		if !slices.Contains(needs.Bedrock, m) {
			needs.Bedrock = append(needs.Bedrock, m)
		}
	}
	return needs, nil
}
