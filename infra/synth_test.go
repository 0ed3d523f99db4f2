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

// Synthesis takes seconds, so the tests share two: the full stack (streaming, alarm email,
// one provider secret referenced by ARN, cdk-nag checks) and the buffered stack that `make
// synth STREAMING=false` gives sam local, built through PropsFromContext like main.

const referencedOpenAIKey = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-AbCdEf"

var (
	fullOnce  sync.Once
	full      synthesized
	localOnce sync.Once
	local     synthesized
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

func fullStack(t *testing.T) synthesized {
	t.Helper()
	fullOnce.Do(func() {
		app := awscdk.NewApp(nil)
		awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
		s := NewStack(app, Props{
			StackName: "Llmgate", Schedule: "rate(1 minute)", ConfigPath: "testdata/config.yaml",
			AssetDir: "testdata/dist", Streaming: true, ThrottleRate: 100, ThrottleBurst: 200,
			LogRetention: retentions[30], SecretsPrefix: "llmgate/keys/", AlarmEmail: "ops@example.com",
			ProviderSecretArns: map[string]string{"OPENAI_API_KEY": referencedOpenAIKey},
		})
		full.tpl = toTemplate(assertions.Template_FromStack(s.Stack, nil).ToJSON())
		ann := assertions.Annotations_FromStack(s.Stack)
		nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
		for _, msgs := range [][]*cxapi.SynthesisMessage{
			*ann.FindError(jsii.String("*"), nag), *ann.FindWarning(jsii.String("*"), nag),
		} {
			for _, m := range msgs {
				full.findings = append(full.findings, *m.Id+": "+toString(m.Entry.Data))
			}
		}
	})
	return full
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
