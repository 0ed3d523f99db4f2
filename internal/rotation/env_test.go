package rotation_test

import (
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/rotation"
)

func TestKeyRotationEnv(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantGrace   time.Duration
		wantErr     bool
	}{
		{"unset: off, revoke at once", nil, false, 0, false},
		{"enabled, any case", map[string]string{"LITELLM_KEY_ROTATION_ENABLED": "True"}, true, 0, false},
		{"not exactly true is off", map[string]string{"LITELLM_KEY_ROTATION_ENABLED": "1"}, false, 0, false},
		{"grace in hours", map[string]string{"LITELLM_KEY_ROTATION_ENABLED": "true", "LITELLM_KEY_ROTATION_GRACE_PERIOD": "48h"}, true, 48 * time.Hour, false},
		{"grace in days", map[string]string{"LITELLM_KEY_ROTATION_GRACE_PERIOD": "2d"}, false, 48 * time.Hour, false},
		{"grace in seconds", map[string]string{"LITELLM_KEY_ROTATION_GRACE_PERIOD": "90"}, false, 90 * time.Second, false},
		{"empty grace revokes at once", map[string]string{"LITELLM_KEY_ROTATION_GRACE_PERIOD": " "}, false, 0, false},
		{"bad grace", map[string]string{"LITELLM_KEY_ROTATION_GRACE_PERIOD": "two days"}, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			enabled, grace, err := rotation.KeyRotationEnv(lookup)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if enabled != tt.wantEnabled || grace != tt.wantGrace {
				t.Errorf("KeyRotationEnv = %v, %v; want %v, %v", enabled, grace, tt.wantEnabled, tt.wantGrace)
			}
		})
	}
}

func TestOptionsFromConfig_ReadsEnvironmentVariablesBlock(t *testing.T) {
	block := map[string]string{"LITELLM_KEY_ROTATION_ENABLED": "true", "LITELLM_KEY_ROTATION_GRACE_PERIOD": "2h"}
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantGrace   time.Duration
	}{
		{"only config.yaml's environment_variables", nil, true, 2 * time.Hour},
		{"the process environment wins", map[string]string{"LITELLM_KEY_ROTATION_ENABLED": "false", "LITELLM_KEY_ROTATION_GRACE_PERIOD": "30m"}, false, 30 * time.Minute},
		{"an empty variable is set", map[string]string{"LITELLM_KEY_ROTATION_GRACE_PERIOD": ""}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{EnvironmentVariables: block}
			o, err := rotation.OptionsFromConfig(cfg, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			if o.RotationEnabled != tt.wantEnabled || o.Grace != tt.wantGrace {
				t.Errorf("rotation enabled %v, grace %v; want %v, %v", o.RotationEnabled, o.Grace, tt.wantEnabled, tt.wantGrace)
			}
		})
	}
}
