package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Synthesis takes seconds, so the tests share three: the full stack (streaming, alarm email,
// one provider secret referenced by ARN, cdk-nag checks), the same with a config whose
// custom_key_generate is a Lambda function, and the buffered stack that `make synth
// STREAMING=false` gives sam local, built through PropsFromContext like main.

const referencedOpenAIKey = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-AbCdEf"

var (
	fullOnce    sync.Once
	full        synthesized
	keyHookOnce sync.Once
	keyHook     synthesized
	localOnce   sync.Once
	local       synthesized
)

// synthesized is one synthesized stack: its template as JSON and its cdk-nag findings.
type synthesized struct {
	tpl      template
	findings []string
	outdir   string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// fullProps are the props of the full stack.
func fullProps() Props {
	return Props{
		StackName: "Llmgate", Schedule: "rate(1 minute)", ConfigPath: "testdata/config.yaml",
		AssetDir: "testdata/dist", Streaming: true, ThrottleRate: 100, ThrottleBurst: 200,
		LogRetention: retentions[30], SecretsPrefix: "llmgate/keys/", AlarmEmail: "ops@example.com",
		ProviderSecretArns: map[string]string{"OPENAI_API_KEY": referencedOpenAIKey},
	}
}

func fullStack(t *testing.T) synthesized {
	t.Helper()
	fullOnce.Do(func() { full = synthWithNag(fullProps()) })
	return full
}

// keyHookLambda is the custom_key_generate function of testdata/config-keyhook.yaml.
const keyHookLambda = "arn:aws:lambda:us-east-1:123456789012:function:llmgate-key-decider"

func keyHookStack(t *testing.T) synthesized {
	t.Helper()
	keyHookOnce.Do(func() {
		p := fullProps()
		p.ConfigPath = "testdata/config-keyhook.yaml"
		keyHook = synthWithNag(p)
	})
	return keyHook
}

// synthWithNag synthesizes the stack p describes under cdk-nag's AwsSolutions checks.
func synthWithNag(p Props) synthesized {
	var out synthesized
	app := awscdk.NewApp(nil)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	s := NewStack(app, p)
	out.tpl = toTemplate(assertions.Template_FromStack(s.Stack, nil).ToJSON())
	ann := assertions.Annotations_FromStack(s.Stack)
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, msgs := range [][]*cxapi.SynthesisMessage{
		*ann.FindError(jsii.String("*"), nag), *ann.FindWarning(jsii.String("*"), nag),
	} {
		for _, m := range msgs {
			out.findings = append(out.findings, *m.Id+": "+toString(m.Entry.Data))
		}
	}
	return out
}

func localStack(t *testing.T) synthesized {
	t.Helper()
	localOnce.Do(func() {
		dir, err := os.MkdirTemp("", "llmgate-cdk-out-")
		if err != nil {
			local.err = err
			return
		}
		local.outdir = dir
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir), Context: &map[string]any{
			"streaming": "false", "configPath": "testdata/config.yaml", "assetDir": "testdata/dist",
		}})
		p, err := PropsFromContext(app)
		if err != nil {
			local.err = err
			return
		}
		NewStack(app, p)
		app.Synth(nil)
		b, err := os.ReadFile(filepath.Join(dir, p.StackName+".template.json"))
		if err != nil {
			local.err = err
			return
		}
		var raw any
		local.err = json.Unmarshal(b, &raw)
		local.tpl = toTemplate(raw)
	})
	if local.err != nil {
		t.Fatalf("synthesize the buffered stack: %v", local.err)
	}
	return local
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
