package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/llmgate/llmgate/internal/secretenv"
)

// Props configure the stack. PropsFromContext fills them from CDK context; every field has a
// default that deploys a working gateway.
type Props struct {
	awscdk.StackProps
	// StackName is the CloudFormation stack name (context stackName, default "Llmgate").
	StackName string
	// TableName names the DynamoDB table (context tableName); empty lets CloudFormation
	// choose one, which keeps a retained table from blocking a later deploy.
	TableName string
	// Schedule is the rotator's EventBridge schedule expression (context schedule,
	// default "rate(1 minute)").
	Schedule string
	// ConfigPath is the config.yaml bundled with the functions (context configPath, relative
	// to infra/; default ../config.yaml if it exists, else ../config.example.yaml). The stack
	// reads it for the environment variables it references (each becomes a Secrets Manager
	// secret) and for its Bedrock models (the completions function may invoke only those).
	ConfigPath string
	// AssetDir holds one folder per function with its bootstrap and config.yaml, as
	// `make build` leaves them (context assetDir, default ../dist).
	AssetDir string
	// Streaming selects REST API response streaming for the LLM routes (context streaming,
	// default true). false deploys buffered integrations and sets LLMGATE_LAMBDA_BUFFERED,
	// which `sam local start-api` needs.
	Streaming bool
	// ThrottleRate and ThrottleBurst are the stage's default method throttling
	// (context throttleRate, default 100 requests per second; throttleBurst, default 200).
	ThrottleRate, ThrottleBurst float64
	// LogRetention is how long function and access logs are kept (context logRetentionDays,
	// default 30).
	LogRetention awslogs.RetentionDays
	// AlarmEmail, if set, creates an SNS topic with this subscriber for the alarms (context
	// alarmEmail).
	AlarmEmail string
	// SecretsPrefix is the Secrets Manager name prefix for stored virtual keys (context
	// secretsPrefix, default "llmgate/<stackName>/keys/", so two stacks in one account do
	// not write each other's keys); the rotator and admin functions may write only under it.
	SecretsPrefix string
	// ProviderSecretArns maps environment variable names referenced by the config to existing
	// secrets (context providerSecretArns, "NAME=arn,NAME=arn"); the other names get a new
	// secret whose value the operator sets.
	ProviderSecretArns map[string]string
	// ProviderSecretsKeyArn is the customer-managed KMS key that encrypts the secrets of
	// ProviderSecretArns (context providerSecretsKmsKeyArn); the completions function gets
	// kms:Decrypt on it through Secrets Manager. Empty: they use aws/secretsmanager.
	ProviderSecretsKeyArn string
	// MemoryMB is the completions and admin functions' memory (context memoryMB, default 256:
	// docs/cost.md measures 38 MiB peak; Lambda gives CPU in proportion to memory).
	MemoryMB float64
	// Reserved concurrency per function (context reservedConcurrencyCompletions, ...Admin,
	// ...Rotator; 0, the default, reserves none). Reserving for admin and the rotator keeps a
	// burst of streams from starving /key/* and budget resets; reserving for completions caps
	// the open streams. The account must keep 100 executions unreserved.
	ReservedCompletions, ReservedAdmin, ReservedRotator float64
	// ConcurrencyAlarm is the account-wide ConcurrentExecutions (maximum over a minute) that
	// raises an alarm (context concurrencyAlarm, default 800, 80% of the default quota).
	ConcurrencyAlarm float64
	// Tracing turns on X-Ray for the functions and the stage (context tracing, default false).
	Tracing bool
	// CorsOrigins are the browser origins allowed to call the API (context corsOrigins,
	// comma-separated, "*" for any; empty, the default, answers no preflight).
	CorsOrigins []string
	// DomainName and CertificateArn give the API a custom domain (context domainName and
	// certificateArn, an ACM certificate in the stack's region); point a DNS CNAME or alias at
	// the DomainTarget output.
	DomainName, CertificateArn string
	// WebACLArn associates an existing regional AWS WAF web ACL with the stage (context
	// webAclArn).
	WebACLArn string
}

// retentions are the log retention periods CloudWatch Logs accepts, by days.
var retentions = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS,
	365: awslogs.RetentionDays_ONE_YEAR, 731: awslogs.RetentionDays_TWO_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

// PropsFromContext reads the stack's settings from app's context, with defaults.
func PropsFromContext(app awscdk.App) (Props, error) {
	get := func(key string) string {
		v := app.Node().TryGetContext(jsii.String(key))
		if v == nil {
			return ""
		}
		return strings.TrimSpace(fmt.Sprint(v))
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	p := Props{
		StackProps: awscdk.StackProps{Env: &awscdk.Environment{
			Account: jsii.String(os.Getenv("CDK_DEFAULT_ACCOUNT")),
			Region:  jsii.String(os.Getenv("CDK_DEFAULT_REGION")),
		}},
		StackName:             or(get("stackName"), "Llmgate"),
		TableName:             get("tableName"),
		Schedule:              or(get("schedule"), "rate(1 minute)"),
		ConfigPath:            get("configPath"),
		AssetDir:              or(get("assetDir"), filepath.Join("..", "dist")),
		AlarmEmail:            get("alarmEmail"),
		SecretsPrefix:         get("secretsPrefix"),
		DomainName:            get("domainName"),
		CertificateArn:        get("certificateArn"),
		WebACLArn:             get("webAclArn"),
		ProviderSecretsKeyArn: get("providerSecretsKmsKeyArn"),
	}
	if p.SecretsPrefix == "" {
		p.SecretsPrefix = "llmgate/" + p.StackName + "/keys/"
	}
	for _, o := range strings.Split(get("corsOrigins"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			p.CorsOrigins = append(p.CorsOrigins, o)
		}
	}
	if (p.DomainName == "") != (p.CertificateArn == "") {
		return p, fmt.Errorf("context domainName and certificateArn: set both or neither")
	}
	for key, arn := range map[string]string{"certificateArn": p.CertificateArn, "webAclArn": p.WebACLArn, "providerSecretsKmsKeyArn": p.ProviderSecretsKeyArn} {
		if arn != "" && !strings.HasPrefix(arn, "arn:") {
			return p, fmt.Errorf("context %s %q: want an ARN", key, arn)
		}
	}
	if p.StackProps.Env.Account == nil || *p.StackProps.Env.Account == "" {
		p.StackProps.Env = nil // environment-agnostic synth (tests, no credentials)
	}
	if p.ConfigPath == "" {
		p.ConfigPath = filepath.Join("..", "config.example.yaml")
		if _, err := os.Stat(filepath.Join("..", "config.yaml")); err == nil {
			p.ConfigPath = filepath.Join("..", "config.yaml")
		}
	}
	var err error
	if p.Streaming, err = strconv.ParseBool(or(get("streaming"), "true")); err != nil {
		return p, fmt.Errorf("context streaming: %w", err)
	}
	if p.Tracing, err = strconv.ParseBool(or(get("tracing"), "false")); err != nil {
		return p, fmt.Errorf("context tracing: %w", err)
	}
	numbers := []struct {
		key, def string
		min      float64
		into     *float64
	}{
		{"memoryMB", "256", 128, &p.MemoryMB},
		{"reservedConcurrencyCompletions", "0", 0, &p.ReservedCompletions},
		{"reservedConcurrencyAdmin", "0", 0, &p.ReservedAdmin},
		{"reservedConcurrencyRotator", "0", 0, &p.ReservedRotator},
		{"concurrencyAlarm", "800", 1, &p.ConcurrencyAlarm},
	}
	for _, n := range numbers {
		v, err := strconv.ParseFloat(or(get(n.key), n.def), 64)
		if err != nil || v < n.min || v != float64(int64(v)) {
			return p, fmt.Errorf("context %s %q: want a whole number of at least %v", n.key, get(n.key), n.min)
		}
		*n.into = v
	}
	if p.ThrottleRate, err = strconv.ParseFloat(or(get("throttleRate"), "100"), 64); err != nil || p.ThrottleRate <= 0 {
		return p, fmt.Errorf("context throttleRate %q: want a positive number", get("throttleRate"))
	}
	if p.ThrottleBurst, err = strconv.ParseFloat(or(get("throttleBurst"), "200"), 64); err != nil || p.ThrottleBurst <= 0 {
		return p, fmt.Errorf("context throttleBurst %q: want a positive number", get("throttleBurst"))
	}
	days, err := strconv.Atoi(or(get("logRetentionDays"), "30"))
	var ok bool
	if p.LogRetention, ok = retentions[days]; err != nil || !ok {
		return p, fmt.Errorf("context logRetentionDays %q: want one of CloudWatch's periods (1, 3, 5, 7, 14, 30, 60, 90, 180, 365, ...)", get("logRetentionDays"))
	}
	if p.ProviderSecretArns, err = secretenv.Parse(get("providerSecretArns")); err != nil {
		return p, fmt.Errorf("context providerSecretArns: %w", err)
	}
	for name, arn := range p.ProviderSecretArns {
		if !strings.HasPrefix(arn, "arn:") {
			return p, fmt.Errorf("context providerSecretArns: %s=%s is not a secret ARN", name, arn)
		}
	}
	return p, nil
}
