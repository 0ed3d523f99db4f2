package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
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

// Synthesis takes seconds, so the tests share three: the full stack (defaults, streaming,
// alarm email, one provider secret referenced by ARN, cdk-nag checks), the options stack
// (every opt-in context option, a config whose custom_key_generate is a Lambda function),
// and the buffered stack that `make synth-sam` gives sam local, built through
// PropsFromContext like main.

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
	for _, dir := range tempDirs {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// tempDirs are removed after the tests.
var tempDirs []string

// testDist writes what `make build` would for config: per function, a bootstrap (an ELF
// header for machine, enough for the synth's check) and a copy of config.
func testDist(config string, machine elf.Machine) (string, error) {
	dir, err := os.MkdirTemp("", "llmgate-dist-")
	if err != nil {
		return "", err
	}
	tempDirs = append(tempDirs, dir)
	cfg, err := os.ReadFile(config)
	if err != nil {
		return "", err
	}
	var hdr bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	if err := binary.Write(&hdr, binary.LittleEndian, h); err != nil {
		return "", err
	}
	for _, fn := range assetFolders {
		if err := os.MkdirAll(filepath.Join(dir, fn), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, fn, "bootstrap"), hdr.Bytes(), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, fn, "config.yaml"), cfg, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// fullProps are the props of the full stack: the context defaults, a config with secrets
// and Bedrock models, an alarm email and OPENAI_API_KEY's secret referenced by ARN.
func fullProps() Props {
	return propsFrom(map[string]any{
		"configPath": "testdata/config.yaml", "alarmEmail": "ops@example.com",
		"providerSecretArns": "OPENAI_API_KEY=" + referencedOpenAIKey,
	})
}

// propsFrom reads Props from a CDK context as main does.
func propsFrom(ctx map[string]any) Props {
	p, err := PropsFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &ctx}))
	if err != nil {
		panic(err)
	}
	return p
}

func fullStack(t *testing.T) synthesized {
	t.Helper()
	fullOnce.Do(func() { full = synthWithNag(fullProps()) })
	if full.err != nil {
		t.Fatalf("synthesize the full stack: %v", full.err)
	}
	return full
}

// optionsProps are the props of the options stack: every opt-in context option set, and a
// config whose custom_key_generate is a Lambda function.
func optionsProps() Props {
	return propsFrom(map[string]any{
		"configPath": "testdata/config-keyhook.yaml", "stackName": "LlmgateDev", "schedule": "rate(1 hour)",
		"memoryMB": "512", "tracing": "true", "corsOrigins": "https://app.example.com, https://admin.example.com",
		"reservedConcurrencyCompletions": "500", "reservedConcurrencyAdmin": "10", "reservedConcurrencyRotator": "2",
		"domainName": "llm.example.com", "certificateArn": testCertificate, "webAclArn": testWebACL,
		"providerSecretArns":       "OPENAI_API_KEY=" + referencedOpenAIKey,
		"providerSecretsKmsKeyArn": testSecretsKey,
	})
}

const (
	testCertificate = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	testWebACL      = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/llmgate/abcd"
	testSecretsKey  = "arn:aws:kms:us-east-1:123456789012:key/66666666-7777-8888-9999-000000000000"
)

// keyHookLambda is the custom_key_generate function of testdata/config-keyhook.yaml.
const keyHookLambda = "arn:aws:lambda:us-east-1:123456789012:function:llmgate-key-decider"

func keyHookStack(t *testing.T) synthesized {
	t.Helper()
	keyHookOnce.Do(func() {
		keyHook = synthWithNag(optionsProps())
	})
	if keyHook.err != nil {
		t.Fatalf("synthesize the key hook stack: %v", keyHook.err)
	}
	return keyHook
}

// synthWithNag synthesizes the stack p describes, over a test dist of its config, under
// cdk-nag's AwsSolutions and Serverless checks.
func synthWithNag(p Props) synthesized {
	var out synthesized
	if p.AssetDir, out.err = testDist(p.ConfigPath, elf.EM_AARCH64); out.err != nil {
		return out
	}
	app := awscdk.NewApp(nil)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	awscdk.Aspects_Of(app).Add(cdknag.NewServerlessChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	s, err := NewStack(app, p)
	if err != nil {
		out.err = err
		return out
	}
	out.tpl = toTemplate(assertions.Template_FromStack(s.Stack, nil).ToJSON())
	ann := assertions.Annotations_FromStack(s.Stack)
	nag := assertions.Match_StringLikeRegexp(jsii.String("(AwsSolutions|Serverless)-.*"))
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
		tempDirs = append(tempDirs, dir)
		local.outdir = dir
		dist, err := testDist("testdata/config.yaml", elf.EM_AARCH64)
		if err != nil {
			local.err = err
			return
		}
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir), Context: &map[string]any{
			"streaming": "false", "configPath": "testdata/config.yaml", "assetDir": dist,
		}})
		p, err := PropsFromContext(app)
		if err != nil {
			local.err = err
			return
		}
		if _, local.err = NewStack(app, p); local.err != nil {
			return
		}
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
