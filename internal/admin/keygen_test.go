package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/config"
)

func TestKeyGenerationSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config, _ *admin.Options) {
		c.LiteLLMSettings.KeyGenerationSettings = &config.KeyGenerationSettings{
			TeamKeyGeneration:     &config.KeyGenerationRule{AllowedTeamMemberRoles: []string{"admin"}, RequiredParams: []string{"key_alias"}},
			PersonalKeyGeneration: &config.KeyGenerationRule{AllowedUserRoles: []string{"proxy_admin_viewer"}},
		}
	})
	dev := e.ok("POST", "/user/new", master, map[string]any{"user_id": "dev"})["key"].(string)
	lead := e.ok("POST", "/user/new", master, map[string]any{"user_id": "lead"})["key"].(string)
	// The team lets plain members create keys, so key_generation_settings decide.
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "team_member_permissions": []string{"/key/generate"},
		"members_with_roles": []any{map[string]any{"user_id": "dev", "role": "user"}, map[string]any{"user_id": "lead", "role": "admin"}},
	})
	tests := []struct {
		name string
		key  string
		body map[string]any
		msg  string
	}{
		{"personal key by a restricted role", dev, map[string]any{}, "Personal key creation has been restricted by admin. Allowed roles=['proxy_admin_viewer']. Your role=internal_user"},
		{"team key by a plain member", dev, map[string]any{"team_id": "t", "key_alias": "x"}, "Team member role user not in allowed_team_member_roles=['admin']"},
		{"team key without a required param", lead, map[string]any{"team_id": "t"}, "Required param key_alias not in data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.call("POST", "/key/generate", tt.key, tt.body)
			wantError(t, code, body, 400, "auth_error", tt.msg)
		})
	}
	e.ok("POST", "/key/generate", lead, map[string]any{"team_id": "t", "key_alias": "ok"})
	e.ok("POST", "/key/generate", master, map[string]any{}) // admins bypass the settings
}

func TestUpperboundAndDefaultKeyParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config, _ *admin.Options) {
		c.LiteLLMSettings.UpperboundKeyGenerateParams = map[string]any{"max_budget": 100, "duration": "30d", "rpm_limit": 50}
		c.LiteLLMSettings.DefaultKeyGenerateParams = map[string]any{"max_budget": 5.5, "models": []any{"gpt-4o"}}
	})
	m := e.ok("POST", "/key/generate", master, map[string]any{})
	if m["max_budget"] != 5.5 || m["rpm_limit"] != 50.0 || m["expires"] == nil || len(m["models"].([]any)) != 1 {
		t.Errorf("defaults and bounds not applied: max_budget %v rpm_limit %v expires %v models %v", m["max_budget"], m["rpm_limit"], m["expires"], m["models"])
	}
	tests := []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"max_budget": 101}, "max_budget is over max limit set in config - user_value=101.0; max_value=100.0"},
		{map[string]any{"duration": "31d"}, "duration is over max limit set in config - user_value=31d; max_value=30d"},
		{map[string]any{"rpm_limit": 51}, "rpm_limit is over max limit set in config - user_value=51; max_value=50"},
	}
	for _, tt := range tests {
		code, body := e.call("POST", "/key/generate", master, tt.body)
		wantError(t, code, body, 400, "auth_error", tt.msg)
	}
	key := m["key"].(string)
	code, body := e.call("POST", "/key/update", master, map[string]any{"key": key, "max_budget": 200})
	wantError(t, code, body, 400, "auth_error", "max_budget is over max limit set in config - user_value=200.0; max_value=100.0")
}

func TestCustomKeyGenerate_Webhook(t *testing.T) {
	t.Parallel()
	var got map[string]any
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		allow := got["key_alias"] == "allowed"
		_ = json.NewEncoder(w).Encode(map[string]any{"decision": allow, "message": "alias must be 'allowed'"})
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, func(_ *config.Config, o *admin.Options) {
		o.KeyDecider = &admin.Webhook{URL: srv.URL, Client: srv.Client()}
	})
	code, body := e.call("POST", "/key/generate", master, map[string]any{"key_alias": "other"})
	wantError(t, code, body, 400, "auth_error", "alias must be 'allowed'")
	if got["key_alias"] != "other" {
		t.Errorf("webhook got %v, want the request body", got)
	}
	e.ok("POST", "/key/generate", master, map[string]any{"key_alias": "allowed"})

	srv.Close() // unreachable: refuse
	code, body = e.call("POST", "/key/generate", master, map[string]any{"key_alias": "allowed2"})
	wantError(t, code, body, 503, "auth_error", "")
}

// fakeLambda answers Invoke with a fixed payload or error.
type fakeLambda struct {
	payload string
	funcErr string
	err     error
	got     *lambda.InvokeInput
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.got = in
	if f.err != nil {
		return nil, f.err
	}
	out := &lambda.InvokeOutput{Payload: []byte(f.payload), StatusCode: 200}
	if f.funcErr != "" {
		out.FunctionError = aws.String(f.funcErr)
	}
	return out, nil
}

func TestLambdaDecider(t *testing.T) {
	const arn = "arn:aws:lambda:us-east-1:123456789012:function:keygate"
	tests := []struct {
		name    string
		fake    *fakeLambda
		want    admin.Decision
		wantErr bool
	}{
		{"allows", &fakeLambda{payload: `{"decision": true}`}, admin.Decision{Decision: true}, false},
		{"refuses with message", &fakeLambda{payload: `{"decision": false, "message": "no"}`}, admin.Decision{Message: "no"}, false},
		{"refuses without message", &fakeLambda{payload: `{"decision": false}`}, admin.Decision{Message: "Key generation was refused by custom_key_generate."}, false},
		{"answer without decision", &fakeLambda{payload: `{"ok": true}`}, admin.Decision{}, true},
		{"function error", &fakeLambda{payload: `{}`, funcErr: "Unhandled"}, admin.Decision{}, true},
		{"invoke error", &fakeLambda{err: errors.New("throttled")}, admin.Decision{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &admin.LambdaDecider{ARN: arn, Client: tt.fake}
			got, err := d.Decide(context.Background(), []byte(`{"key_alias":"a"}`))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Decide = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
			if aws.ToString(tt.fake.got.FunctionName) != arn || string(tt.fake.got.Payload) != `{"key_alias":"a"}` {
				t.Errorf("invoked %s with %s", aws.ToString(tt.fake.got.FunctionName), tt.fake.got.Payload)
			}
		})
	}
}

func TestNewKeyDecider_RefusesPythonHooks(t *testing.T) {
	if _, err := admin.NewKeyDecider(context.Background(), "custom_auth.custom_generate_key_fn", "us-east-1"); err == nil {
		t.Fatal("a Python hook path was accepted")
	}
	d, err := admin.NewKeyDecider(context.Background(), "https://hooks.example.com/keys", "us-east-1")
	if _, ok := d.(*admin.Webhook); err != nil || !ok {
		t.Fatalf("https spec = %T, %v; want *Webhook", d, err)
	}
}
