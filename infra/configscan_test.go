package main

import (
	"debug/elf"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

func TestScanConfig_ListsReferencedVariablesAndBedrockModels(t *testing.T) {
	needs, err := scanConfig("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}; !reflect.DeepEqual(needs.EnvNames, want) {
		t.Errorf("EnvNames = %v, want %v (not the master key, not environment_variables)", needs.EnvNames, want)
	}
	want := []bedrockModel{
		{ID: "meta.llama3-1-70b-instruct-v1:0", Region: "us-west-2"},
		{ID: "us.anthropic.claude-3-5-haiku-20241022-v1:0"},
	}
	if !reflect.DeepEqual(needs.Bedrock, want) {
		t.Errorf("Bedrock = %v, want %v", needs.Bedrock, want)
	}
	if needs.KeyGenerateLambda != "" {
		t.Errorf("KeyGenerateLambda = %q for a config without custom_key_generate", needs.KeyGenerateLambda)
	}
	if needs, err := scanConfig("testdata/config-keyhook.yaml"); err != nil || needs.KeyGenerateLambda != keyHookLambda {
		t.Errorf("KeyGenerateLambda = %q (%v), want %s", needs.KeyGenerateLambda, err, keyHookLambda)
	}
	if _, err := scanConfig("testdata/missing.yaml"); err == nil {
		t.Error("scanConfig accepted a missing file")
	}
}

func TestPropsFromContext(t *testing.T) {
	tests := []struct {
		name    string
		ctx     map[string]any
		check   func(Props) bool
		wantErr bool
	}{
		{name: "defaults", ctx: map[string]any{}, check: func(p Props) bool {
			return p.StackName == "Llmgate" && p.Streaming && p.Schedule == "rate(1 minute)" && p.ThrottleRate == 100 &&
				p.ThrottleBurst == 200 && p.LogRetention == awslogs.RetentionDays_ONE_MONTH && p.SecretsPrefix == "llmgate/Llmgate/keys/" &&
				p.AssetDir == "../dist" && p.TableName == "" && len(p.ProviderSecretArns) == 0 && p.MemoryMB == 256 &&
				p.ReservedCompletions == 0 && p.ReservedAdmin == 0 && p.ReservedRotator == 0 && p.ConcurrencyAlarm == 800 &&
				!p.Tracing && p.CorsOrigins == nil && p.DomainName == "" && p.WebACLArn == ""
		}},
		{name: "a second stack gets its own secrets prefix", ctx: map[string]any{"stackName": "LlmgateStaging"}, check: func(p Props) bool {
			return p.SecretsPrefix == "llmgate/LlmgateStaging/keys/"
		}},
		{name: "cors origins", ctx: map[string]any{"corsOrigins": " https://a.example , https://b.example,"}, check: func(p Props) bool {
			return slices.Equal(p.CorsOrigins, []string{"https://a.example", "https://b.example"})
		}},
		{name: "domain without certificate", ctx: map[string]any{"domainName": "llm.example.com"}, wantErr: true},
		{name: "memory below Lambda's minimum", ctx: map[string]any{"memoryMB": "64"}, wantErr: true},
		{name: "fractional reserved concurrency", ctx: map[string]any{"reservedConcurrencyAdmin": "1.5"}, wantErr: true},
		{name: "web ACL that is not an ARN", ctx: map[string]any{"webAclArn": "my-acl"}, wantErr: true},
		{name: "bad tracing", ctx: map[string]any{"tracing": "yes please"}, wantErr: true},
		{name: "values from -c arrive as strings", ctx: map[string]any{
			"streaming": "false", "schedule": "rate(5 minutes)", "tableName": "gw", "logRetentionDays": "7",
			"providerSecretArns": "OPENAI_API_KEY=arn:aws:secretsmanager:eu-west-1:1:secret:o-1",
		}, check: func(p Props) bool {
			return !p.Streaming && p.Schedule == "rate(5 minutes)" && p.TableName == "gw" && p.LogRetention == awslogs.RetentionDays_ONE_WEEK &&
				p.ProviderSecretArns["OPENAI_API_KEY"] == "arn:aws:secretsmanager:eu-west-1:1:secret:o-1"
		}},
		{name: "cdk.json booleans and numbers", ctx: map[string]any{"streaming": false, "throttleRate": 5}, check: func(p Props) bool {
			return !p.Streaming && p.ThrottleRate == 5
		}},
		{name: "bad streaming", ctx: map[string]any{"streaming": "maybe"}, wantErr: true},
		{name: "retention CloudWatch does not offer", ctx: map[string]any{"logRetentionDays": "10"}, wantErr: true},
		{name: "negative throttle", ctx: map[string]any{"throttleBurst": "-1"}, wantErr: true},
		{name: "provider secret that is not an ARN", ctx: map[string]any{"providerSecretArns": "OPENAI_API_KEY=openai"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
			p, err := PropsFromContext(app)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !tt.check(p) {
				t.Errorf("props = %+v", p)
			}
		})
	}
}

// The synth refuses a dist/ that is missing, built for another architecture, or bundling a
// config other than the one the stack reads (the secrets and Bedrock grants come from it).
func TestCheckAssets(t *testing.T) {
	good, err := testDist("testdata/config.yaml", elf.EM_AARCH64)
	if err != nil {
		t.Fatal(err)
	}
	amd64, err := testDist("testdata/config.yaml", elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, config, wantErr string
	}{
		{"built from the config", good, "testdata/config.yaml", ""},
		{"built from another config", good, "testdata/config-keyhook.yaml", "differs from testdata/config-keyhook.yaml"},
		{"amd64 bootstraps", amd64, "testdata/config.yaml", "want arm64"},
		{"no dist", filepath.Join(t.TempDir(), "dist"), "testdata/config.yaml", "run make build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAssets(tt.dir, tt.config)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkAssets = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" {
				return
			}
			app := awscdk.NewApp(nil)
			p := propsFrom(map[string]any{"configPath": tt.config, "assetDir": tt.dir})
			if _, err := NewStack(app, p); err == nil {
				t.Error("NewStack synthesized over the bad dist")
			}
		})
	}
}
