package rotation

import (
	"fmt"
	"strings"
	"time"
	// Every binary builds its rotator here, so the time zone database is embedded once for
	// all of them: provided.al2023 need not have /usr/share/zoneinfo, and without it a
	// litellm_settings.timezone would fail at init.
	_ "time/tzdata"

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
// zone of budget resets, the proxy-wide budget, auto-rotation with its grace period, and the
// reservation_ttl after which an hour's spend is rolled up. The
// caller adds the store, the Rekeyer, the Reconciler and the logger.
//
// The rotation variables are looked up in the environment first, then in config.yaml's
// environment_variables, as LiteLLM exports that block into its environment without
// overriding a variable already set; in the deployed stack the block is the only place to
// set them.
func OptionsFromConfig(cfg *config.Config, lookup func(string) (string, bool)) (Options, error) {
	enabled, grace, err := KeyRotationEnv(func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		v, ok := cfg.EnvironmentVariables[name]
		return v, ok
	})
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
		ReservationTTL:      cfg.Settings.ReservationTTL.Std(),
	}, nil
}
