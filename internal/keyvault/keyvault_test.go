package keyvault_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/mototest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mototest.Stop()
	dynamotest.Stop()
	os.Exit(code)
}

// current reads what an application reads: the AWSCURRENT value of the secret. (moto answers
// a GetSecretValue without a stage with the version the secret was last written with, not the
// one AWSCURRENT was moved to, so the stage is named.)
func current(t *testing.T, sm *secretsmanager.Client, name string) string {
	t.Helper()
	out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionStage: aws.String(keyvault.StageCurrent),
	})
	if err != nil {
		t.Fatalf("GetSecretValue(%s): %v", name, err)
	}
	return aws.ToString(out.SecretString)
}

func TestPut_CreatesThenReplacesTheCurrentValue(t *testing.T) {
	ctx := context.Background()
	sm := mototest.SecretsManager(t)
	v := keyvault.New(sm, mototest.Prefix(t))
	for _, value := range []string{"sk-first", "sk-second"} {
		if err := v.Put(ctx, "billing", value); err != nil {
			t.Fatalf("Put(%s): %v", value, err)
		}
		if got := current(t, sm, v.Name("billing")); got != value {
			t.Errorf("current value = %q, want %q", got, value)
		}
	}
}

func TestStageAndPromote(t *testing.T) {
	const (
		v1 = "11111111111111111111111111111111"
		v2 = "22222222222222222222222222222222"
	)
	tests := []struct {
		name   string
		before string // current value before the rotation; "" = no secret yet
	}{
		{"existing secret", "sk-old"},
		{"missing secret", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			sm := mototest.SecretsManager(t)
			v := keyvault.New(sm, mototest.Prefix(t))
			if tt.before != "" {
				if err := v.Put(ctx, "app", tt.before); err != nil {
					t.Fatal(err)
				}
			}
			if err := v.Stage(ctx, "app", "sk-new", v1); err != nil {
				t.Fatalf("Stage: %v", err)
			}
			if tt.before != "" {
				// A retried run stages the same version again. (Not on a new secret: there moto
				// drops the AWSCURRENT label the first version got; AWS leaves it.)
				if err := v.Stage(ctx, "app", "sk-new", v1); err != nil {
					t.Fatalf("Stage again: %v", err)
				}
				if got := current(t, sm, v.Name("app")); got != tt.before {
					t.Errorf("after Stage current = %q, want the old %q", got, tt.before)
				}
			}
			for range 2 { // the second Promote is a retried run: nothing left to do
				if err := v.Promote(ctx, "app", v1); err != nil {
					t.Fatalf("Promote: %v", err)
				}
			}
			if got := current(t, sm, v.Name("app")); got != "sk-new" {
				t.Errorf("after Promote current = %q, want sk-new", got)
			}
			desc, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(v.Name("app"))})
			if err != nil {
				t.Fatal(err)
			}
			if got := desc.VersionIdsToStages[v1]; len(got) != 1 || got[0] != keyvault.StageCurrent {
				t.Errorf("stages of the promoted version = %v, want [AWSCURRENT]", got)
			}
			// A second rotation moves AWSCURRENT on again.
			if err := v.Stage(ctx, "app", "sk-newer", v2); err != nil {
				t.Fatal(err)
			}
			if err := v.Promote(ctx, "app", v2); err != nil {
				t.Fatal(err)
			}
			if got := current(t, sm, v.Name("app")); got != "sk-newer" {
				t.Errorf("after the second rotation current = %q, want sk-newer", got)
			}
		})
	}
}

// TestPromote_UnknownVersionFails runs on fakeSM: Promote moves AWSCURRENT by version id,
// which AWS refuses for a version that does not exist, but moto accepts.
func TestPromote_UnknownVersionFails(t *testing.T) {
	ctx := context.Background()
	sm := newFakeSM()
	v := keyvault.New(sm, "llmgate/keys/")
	if err := v.Put(ctx, "app", "sk-old"); err != nil {
		t.Fatal(err)
	}
	if err := v.Promote(ctx, "app", "33333333333333333333333333333333"); err == nil {
		t.Fatal("Promote of a version never staged: got nil error")
	}
	if got := sm.value(v.Name("app"), keyvault.StageCurrent); got != "sk-old" {
		t.Errorf("current = %q, want sk-old untouched", got)
	}
}

// downAPI is Secrets Manager failing every call.
type downAPI struct{ keyvault.API }

var errDown = &types.InternalServiceError{Message: aws.String("service unavailable")}

func (downAPI) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return nil, errDown
}

func (downAPI) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return nil, errDown
}

func TestErrorsSayWhatFailed(t *testing.T) {
	v := keyvault.New(downAPI{}, "llmgate/keys/")
	ctx := context.Background()
	for name, err := range map[string]error{
		"Put":     v.Put(ctx, "app", "sk-x"),
		"Stage":   v.Stage(ctx, "app", "sk-x", "44444444444444444444444444444444"),
		"Promote": v.Promote(ctx, "app", "44444444444444444444444444444444"),
	} {
		var ise *types.InternalServiceError
		if !errors.As(err, &ise) {
			t.Errorf("%s error = %v, want the wrapped InternalServiceError", name, err)
		}
	}
}
