package secretenv

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fakeSecretsManager answers GetSecretValue in Secrets Manager's JSON 1.1 wire format from
// a map of secret id → SecretString; a missing id gets ResourceNotFoundException, an empty
// string a binary-only secret.
func fakeSecretsManager(t *testing.T, secrets map[string]string) (*secretsmanager.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if got := r.Header.Get("X-Amz-Target"); got != "secretsmanager.GetSecretValue" {
			t.Errorf("X-Amz-Target = %q, want secretsmanager.GetSecretValue", got)
		}
		var in struct{ SecretId string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			t.Errorf("decode request: %v", err)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		v, ok := secrets[in.SecretId]
		switch {
		case !ok:
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret.",
			})
		case v == "":
			_ = json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "SecretBinary": "AAE="})
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "Name": "n", "SecretString": v})
		}
	}))
	t.Cleanup(srv.Close)
	c := secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("id", "secret", ""),
	})
	return c, &calls
}

func TestLoad_SetsEachVariableFromItsSecret(t *testing.T) {
	c, calls := fakeSecretsManager(t, map[string]string{
		"arn:aws:secretsmanager:us-east-1:1:secret:master": "sk-master",
		"openai": "sk-openai",
	})
	t.Setenv("LITELLM_MASTER_KEY", "")
	t.Setenv("OPENAI_API_KEY", "")
	err := Load(context.Background(), c, "LITELLM_MASTER_KEY=arn:aws:secretsmanager:us-east-1:1:secret:master, OPENAI_API_KEY=openai,")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for name, want := range map[string]string{"LITELLM_MASTER_KEY": "sk-master", "OPENAI_API_KEY": "sk-openai"} {
		if got := os.Getenv(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2", n)
	}
}

func TestLoad_SetsNothingWhenASecretFails(t *testing.T) {
	c, _ := fakeSecretsManager(t, map[string]string{"good": "v", "binary": ""})
	for _, tt := range []struct{ name, spec, wantErr string }{
		{"missing secret", "A=good,B=missing", "secret for B: get missing"},
		{"binary secret", "A=good,B=binary", "no string value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("A", "before")
			err := Load(context.Background(), c, tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if got := os.Getenv("A"); got != "before" {
				t.Errorf("A = %q after a failed load, want it untouched", got)
			}
		})
	}
}

func TestLoad_EmptySpecCallsNothing(t *testing.T) {
	c, calls := fakeSecretsManager(t, nil)
	if err := Load(context.Background(), c, " "); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("GetSecretValue calls = %d, want 0", n)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		spec    string
		want    map[string]string
		wantErr bool
	}{
		{spec: "", want: map[string]string{}},
		{spec: "A=arn:aws:secretsmanager:eu-west-1:1:secret:a-AbC", want: map[string]string{"A": "arn:aws:secretsmanager:eu-west-1:1:secret:a-AbC"}},
		{spec: " A = x , B=y ,", want: map[string]string{"A": "x", "B": "y"}},
		{spec: "A", wantErr: true},
		{spec: "=x", wantErr: true},
		{spec: "A=", wantErr: true},
		{spec: "A=x,A=y", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("Parse(%q) = %v, %v; want %v (error: %v)", tt.spec, got, err, tt.want, tt.wantErr)
		}
	}
}
