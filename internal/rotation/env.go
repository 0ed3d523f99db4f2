package rotation

import (
	"fmt"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/duration"
)

// Environment variables of LiteLLM's key rotation, read as LiteLLM reads them.
const (
	EnvRotationEnabled = "LITELLM_KEY_ROTATION_ENABLED"
	EnvGracePeriod     = "LITELLM_KEY_ROTATION_GRACE_PERIOD"
)

// KeyRotationEnv reads LITELLM_KEY_ROTATION_ENABLED ("true", any case, turns auto-rotation on)
// and LITELLM_KEY_ROTATION_GRACE_PERIOD ("48h", "1d", a number of seconds; empty or unset
// revokes a rotated-out key at once).
func KeyRotationEnv(lookup func(string) (string, bool)) (enabled bool, grace time.Duration, err error) {
	v, _ := lookup(EnvRotationEnabled)
	enabled = strings.EqualFold(strings.TrimSpace(v), "true")
	g, _ := lookup(EnvGracePeriod)
	if strings.TrimSpace(g) == "" {
		return enabled, 0, nil
	}
	d, err := duration.Parse(g)
	if err != nil {
		return false, 0, fmt.Errorf("%s: %w", EnvGracePeriod, err)
	}
	return enabled, d.Approx(), nil
}

// OptionsFromConfig fills the options the config and LiteLLM's environment decide: the time
// zone of budget resets, the proxy-wide budget, and auto-rotation with its grace period. The
// caller adds the store, the Rekeyer, the Reconciler and the logger.
func OptionsFromConfig(cfg *config.Config, lookup func(string) (string, bool)) (Options, error) {
	enabled, grace, err := KeyRotationEnv(lookup)
	if err != nil {
		return Options{}, err
	}
	loc := time.UTC
	if tz := cfg.LiteLLMSettings.Timezone; tz != "" {
		if loc, err = time.LoadLocation(tz); err != nil {
			return Options{}, fmt.Errorf("litellm_settings.timezone: %w", err)
		}
	}
	return Options{
		Location:            loc,
		ProxyBudget:         cfg.LiteLLMSettings.MaxBudget != nil,
		ProxyBudgetDuration: cfg.LiteLLMSettings.BudgetDuration,
		RotationEnabled:     enabled,
		Grace:               grace,
	}, nil
}
