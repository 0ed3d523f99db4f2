package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/llmgate/llmgate/internal/lambdahttp"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/secretenv"
	"github.com/llmgate/llmgate/internal/store/schema"
)

// Logical IDs that tools address directly: samconfig.toml's env file names the functions.
const (
	CompletionsFunctionID = "CompletionsFunction"
	AdminFunctionID       = "AdminFunction"
	RotatorFunctionID     = "RotatorFunction"
)

// PlaceholderValue is the initial value of a provider secret the stack creates.
const PlaceholderValue = "placeholder: set the real value with aws secretsmanager put-secret-value"

// Stack is the llmgate stack and the parts tests and outputs refer to.
type Stack struct {
	awscdk.Stack
	Table                       awsdynamodb.TableV2
	MasterKey                   awssecretsmanager.ISecret
	Completions, Admin, Rotator awslambda.Function
	// failures holds the rotator runs that failed or could not be delivered.
	failures        awssqs.Queue
	providerSecrets map[string]awssecretsmanager.ISecret
	// createdSecrets are the secrets the stack creates (not those it only references).
	createdSecrets []constructs.IConstruct
}

// NewStack builds the llmgate stack: the state table, the three functions, the REST API in
// front of them, the rotator's schedule, the secrets, the alarms and the dashboard. It
// refuses a config that does not load and an asset directory that does not hold arm64
// bootstraps built with that config.
func NewStack(scope constructs.Construct, p Props) (*Stack, error) {
	needs, err := scanConfig(p.ConfigPath)
	if err != nil {
		return nil, err
	}
	if err := checkAssets(p.AssetDir, p.ConfigPath); err != nil {
		return nil, err
	}
	stack := awscdk.NewStack(scope, jsii.String(p.StackName), &awscdk.StackProps{
		Env:         p.Env,
		Description: jsii.String("llmgate: OpenAI-compatible LLM gateway (API Gateway, Lambda, DynamoDB)"),
	})
	s := &Stack{Stack: stack}
	s.Table = newTable(stack, p.TableName)
	s.MasterKey = newMasterKey(stack)
	s.providerSecrets = providerSecrets(stack, needs.EnvNames, p.ProviderSecretArns)
	s.createdSecrets = []constructs.IConstruct{s.MasterKey, stack.Node().FindChild(jsii.String("MasterKeySeed"))}
	for _, name := range sortedKeys(s.providerSecrets) {
		if _, referenced := p.ProviderSecretArns[name]; !referenced {
			s.createdSecrets = append(s.createdSecrets, s.providerSecrets[name])
		}
	}

	common := map[string]*string{
		"LLMGATE_TABLE":          s.Table.TableName(),
		"LLMGATE_CONFIG":         jsii.String("/var/task/config.yaml"), // lambdaapp.EnvConfig; make build bundles it
		"LLMGATE_SECRETS_PREFIX": jsii.String(p.SecretsPrefix),
	}
	if len(p.CorsOrigins) > 0 {
		common[lambdahttp.EnvCORSOrigins] = jsii.String(strings.Join(p.CorsOrigins, ","))
	}
	completionsEnv := with(common, secretenv.Env, secretSpec(map[string]awssecretsmanager.ISecret{"LITELLM_MASTER_KEY": s.MasterKey}, s.providerSecrets))
	adminEnv := with(common, secretenv.Env, secretSpec(map[string]awssecretsmanager.ISecret{"LITELLM_MASTER_KEY": s.MasterKey}))
	rotatorEnv := with(common, "", nil)
	// A streamed call may last as long as the integration allows (15 minutes). A buffered
	// one is cut by API Gateway at 29 s: the function stops first, so its own error is what
	// gets logged rather than a 504 with the function still running.
	completionsTimeout := awscdk.Duration_Minutes(jsii.Number(15))
	if !p.Streaming {
		completionsTimeout = bufferedFunctionTimeout
		completionsEnv[lambdahttp.EnvBuffered] = jsii.String("1")
		// sam local, the reason for a buffered stack, overrides only variables the template
		// declares: declare, empty, the ones infra/sam-env.json sets.
		for _, env := range []map[string]*string{completionsEnv, adminEnv, rotatorEnv} {
			env["LLMGATE_DYNAMODB_ENDPOINT"] = jsii.String("")
		}
		completionsEnv["LITELLM_MASTER_KEY"] = jsii.String("")
		adminEnv["LITELLM_MASTER_KEY"] = jsii.String("")
	}
	s.failures = newFailureQueue(stack)
	s.Completions = newFunction(stack, CompletionsFunctionID, p, functionProps{
		Description: "llmgate LLM routes (/v1/*): gateway handler, streamed",
		MemoryMB:    p.MemoryMB, Timeout: completionsTimeout, Reserved: p.ReservedCompletions,
		Env: completionsEnv,
	})
	s.Admin = newFunction(stack, AdminFunctionID, p, functionProps{
		Description: "llmgate management and health routes (/key, /user, /team, /spend, /health)",
		MemoryMB:    p.MemoryMB, Timeout: bufferedFunctionTimeout, Reserved: p.ReservedAdmin,
		Env: adminEnv,
	})
	s.Rotator = newFunction(stack, RotatorFunctionID, p, functionProps{
		Description: "llmgate rotator: budget resets, key rotation, expiry, stale reservations",
		MemoryMB:    256, Timeout: awscdk.Duration_Minutes(jsii.Number(5)), Reserved: p.ReservedRotator,
		Env: rotatorEnv,
		// Runs are idempotent and the next one picks up whatever is due: a failed or
		// throttled run is not retried (Lambda's default is 2 retries and 6 hours), it goes
		// to the failure queue, which alarms.
		Async: &asyncInvoke{maxAge: rotatorMaxEventAge(p.Schedule), onFailure: s.failures},
	})

	s.grant(p, needs)
	api := newAPI(stack, p, s.Completions, s.Admin)
	newSchedule(stack, p.Schedule, s.Rotator, s.failures)
	newAlarms(stack, p, api, s)
	newDashboard(stack, api, s)
	suppressFindings(s, api, p, needs)

	awscdk.NewCfnOutput(stack, jsii.String("ApiUrl"), &awscdk.CfnOutputProps{
		Value:       api.UrlForPath(jsii.String("/v1")),
		Description: jsii.String("the OpenAI base URL (base_url for the openai SDKs); admin routes are beside v1"),
	})
	if dn := api.DomainName(); dn != nil {
		awscdk.NewCfnOutput(stack, jsii.String("DomainTarget"), &awscdk.CfnOutputProps{
			Value:       dn.DomainNameAliasDomainName(),
			Description: jsii.String("point " + p.DomainName + " here (CNAME, or a Route 53 alias); the base URL is then https://" + p.DomainName + "/v1"),
		})
	}
	awscdk.NewCfnOutput(stack, jsii.String("MasterKeySecretArn"), &awscdk.CfnOutputProps{
		Value:       s.MasterKey.SecretArn(),
		Description: jsii.String("the master key (sk-...): aws secretsmanager get-secret-value --secret-id <arn>"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("TableName"), &awscdk.CfnOutputProps{Value: s.Table.TableName()})
	for _, name := range sortedKeys(s.providerSecrets) {
		awscdk.NewCfnOutput(stack, jsii.String("Secret"+strings.ReplaceAll(name, "_", "")), &awscdk.CfnOutputProps{
			Value:       s.providerSecrets[name].SecretArn(),
			Description: jsii.String("the secret holding " + name + " (config.yaml: os.environ/" + name + ")"),
		})
	}
	return s, nil
}

// bufferedFunctionTimeout is the timeout of functions behind a buffered integration, below
// API Gateway's 29 s integration timeout.
var bufferedFunctionTimeout = awscdk.Duration_Seconds(jsii.Number(25))

// newTable builds the state table from schema.State, so the table in AWS, DynamoDB Local
// and the store's code agree on keys, indexes and TTL.
func newTable(scope constructs.Construct, name string) awsdynamodb.TableV2 {
	attr := func(k schema.Key) *awsdynamodb.Attribute {
		t := awsdynamodb.AttributeType_STRING
		if k.Type == schema.Number {
			t = awsdynamodb.AttributeType_NUMBER
		}
		return &awsdynamodb.Attribute{Name: jsii.String(k.Name), Type: t}
	}
	var gsis []*awsdynamodb.GlobalSecondaryIndexPropsV2
	for _, ix := range schema.State.Indexes {
		gsi := &awsdynamodb.GlobalSecondaryIndexPropsV2{
			IndexName:      jsii.String(ix.Name),
			PartitionKey:   attr(ix.PartitionKey),
			SortKey:        attr(ix.SortKey),
			ProjectionType: awsdynamodb.ProjectionType(ix.Projection.Type),
		}
		if len(ix.Projection.NonKeyAttributes) > 0 {
			gsi.NonKeyAttributes = jsii.Strings(ix.Projection.NonKeyAttributes...)
		}
		gsis = append(gsis, gsi)
	}
	props := &awsdynamodb.TablePropsV2{
		PartitionKey:           attr(schema.State.PartitionKey),
		SortKey:                attr(schema.State.SortKey),
		TimeToLiveAttribute:    jsii.String(schema.State.TTLAttribute),
		GlobalSecondaryIndexes: &gsis,
		Billing:                awsdynamodb.Billing_OnDemand(nil),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection: jsii.Bool(true),
		RemovalPolicy:      awscdk.RemovalPolicy_RETAIN,
	}
	if name != "" {
		props.TableName = jsii.String(name)
	}
	return awsdynamodb.NewTableV2(scope, jsii.String("State"), props)
}

// newMasterKey generates the master key as "sk-" + 48 random letters and digits. CloudFormation
// cannot prefix a generated value, so a seed secret holds the random part and the master key
// secret is built from it by a dynamic reference, resolved by CloudFormation at deploy time:
// the value never appears in the template. Operators rotate the master key by putting a new
// value into the master key secret (functions read it when an instance starts).
func newMasterKey(scope constructs.Construct) awssecretsmanager.ISecret {
	seed := awssecretsmanager.NewSecret(scope, jsii.String("MasterKeySeed"), &awssecretsmanager.SecretProps{
		Description: jsii.String("llmgate: random part of the initial master key (read once, by CloudFormation)"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(48),
			ExcludePunctuation: jsii.Bool(true),
		},
	})
	return awssecretsmanager.NewSecret(scope, jsii.String("MasterKey"), &awssecretsmanager.SecretProps{
		Description: jsii.String("llmgate master key (LITELLM_MASTER_KEY)"),
		SecretStringValue: awscdk.SecretValue_UnsafePlainText(awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("sk-"), seed.SecretValue().UnsafeUnwrap(),
		})),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
}

// providerSecrets returns a secret per environment variable the config references: the
// existing secret named in arns, else a new one holding a placeholder (not a secret) for the
// operator to replace with put-secret-value; CloudFormation leaves the value alone on later
// deploys. New secrets are retained on stack deletion.
func providerSecrets(scope constructs.Construct, names []string, arns map[string]string) map[string]awssecretsmanager.ISecret {
	out := map[string]awssecretsmanager.ISecret{}
	for _, name := range names {
		id := jsii.String("Env" + strings.ReplaceAll(name, "_", ""))
		if arn, ok := arns[name]; ok {
			out[name] = awssecretsmanager.Secret_FromSecretCompleteArn(scope, id, jsii.String(arn))
			continue
		}
		out[name] = awssecretsmanager.NewSecret(scope, id, &awssecretsmanager.SecretProps{
			Description:       jsii.String("llmgate: value of " + name + " for config.yaml's os.environ/" + name + "; set it with put-secret-value"),
			SecretStringValue: awscdk.SecretValue_UnsafePlainText(jsii.String(PlaceholderValue)),
			RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		})
	}
	return out
}

// secretSpec renders secrets as secretenv.Env's NAME=ARN list, sorted by name.
func secretSpec(sets ...map[string]awssecretsmanager.ISecret) *string {
	all := map[string]awssecretsmanager.ISecret{}
	for _, set := range sets {
		for k, v := range set {
			all[k] = v
		}
	}
	var parts []*string
	for i, name := range sortedKeys(all) {
		sep := ","
		if i == 0 {
			sep = ""
		}
		parts = append(parts, jsii.String(sep+name+"="), all[name].SecretArn())
	}
	return awscdk.Fn_Join(jsii.String(""), &parts)
}

// with returns a copy of base with k set to v (k "" adds nothing).
func with(base map[string]*string, k string, v *string) map[string]*string {
	out := make(map[string]*string, len(base)+1)
	for bk, bv := range base {
		out[bk] = bv
	}
	if k != "" {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// functionProps are what differs between the functions.
type functionProps struct {
	Description string
	MemoryMB    float64
	Timeout     awscdk.Duration
	Env         map[string]*string
	Reserved    float64      // reserved concurrency; 0 reserves none
	Async       *asyncInvoke // for a function invoked asynchronously
}

// asyncInvoke is how Lambda handles a function's asynchronous invocations: no retries, events
// dropped after maxAge, failures sent to onFailure.
type asyncInvoke struct {
	maxAge    awscdk.Duration
	onFailure awssqs.IQueue
}

// newFunction builds an arm64 provided.al2023 function from its `make build` folder, with its
// own role (no managed policies: it may write only to its own log group until grants add
// more) and its own JSON log group with retention.
func newFunction(scope constructs.Construct, id string, sp Props, p functionProps) awslambda.Function {
	logs := awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     sp.LogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(scope, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("llmgate " + id),
	})
	logs.GrantWrite(role)
	props := &awslambda.FunctionProps{
		Description:           jsii.String(p.Description),
		Runtime:               awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:          awslambda.Architecture_ARM_64(),
		Handler:               jsii.String("bootstrap"),
		Code:                  awslambda.Code_FromAsset(jsii.String(filepath.Join(sp.AssetDir, assetFolders[id])), nil),
		MemorySize:            jsii.Number(p.MemoryMB),
		Timeout:               p.Timeout,
		Role:                  role,
		LogGroup:              logs,
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel_INFO,
		SystemLogLevelV2:      awslambda.SystemLogLevel_WARN,
		Environment:           &p.Env,
	}
	if sp.Tracing {
		props.Tracing = awslambda.Tracing_ACTIVE
	}
	if p.Reserved > 0 {
		props.ReservedConcurrentExecutions = jsii.Number(p.Reserved)
	}
	if p.Async != nil {
		props.RetryAttempts = jsii.Number(0)
		props.MaxEventAge = p.Async.maxAge
		props.OnFailure = awslambdadestinations.NewSqsDestination(p.Async.onFailure)
	}
	fn := awslambda.NewFunction(scope, jsii.String(id), props)
	fn.Node().DefaultChild().(awslambda.CfnFunction).OverrideLogicalId(jsii.String(id))
	return fn
}

// Actions each function needs on the state table. Transactions are authorized per item
// action, so TransactWriteItems needs the actions its parts use, and TransactGetItems GetItem.
var (
	completionsTableActions = []string{"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
	adminTableActions       = append([]string{"dynamodb:DescribeTable"}, completionsTableActions...) // DescribeTable: /health/readiness
	rotatorTableActions     = completionsTableActions
	// storedKeyActions are the calls of keyvault.API, with which the admin function
	// (/key/generate, /key/regenerate) and the rotator (auto-rotation) write virtual keys to
	// Secrets Manager under the prefix (store_virtual_keys): a test derives them from that
	// interface, so a call added there fails the infra tests until it is granted here.
	storedKeyActions = []string{"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:UpdateSecretVersionStage"}
	bedrockActions   = []string{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
	// dueIndexes are the sparse "due" indexes only the rotator queries; the admin API lists
	// through the others; the completions path reads items by key and queries no index
	// (faulttest's TestCalls_QueryNoIndex fails on a call that queries one).
	dueIndexes = []string{schema.IndexDueReset, schema.IndexDueRotate, schema.IndexDueExpire}
	// rotatorIndexes are the indexes the rotator queries (a test of internal/rotation runs it
	// and fails on a Query of any other).
	rotatorIndexes = rotation.Indexes
)

// grant gives each function exactly what it uses: its table actions on the table and the
// indexes it queries (by name, no wildcard), the secrets it reads, stored-key writes under
// the prefix, Bedrock invocation of the config's Bedrock models only, and the admin
// function's invocation of the config's custom_key_generate Lambda function.
func (s *Stack) grant(p Props, needs configNeeds) {
	tableAnd := func(keep func(index string) bool) []*string {
		out := []*string{s.Table.TableArn()}
		for _, ix := range schema.State.Indexes {
			if keep(ix.Name) {
				out = append(out, jsii.String(*s.Table.TableArn()+"/index/"+ix.Name))
			}
		}
		return out
	}
	isRotatorIndex := func(name string) bool { return slices.Contains(rotatorIndexes, name) }
	isDueIndex := func(name string) bool { return slices.Contains(dueIndexes, name) }
	allow := func(fn awslambda.Function, actions []string, resources []*string) {
		fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(actions...),
			Resources: &resources,
		}))
	}
	allow(s.Completions, completionsTableActions, tableAnd(func(string) bool { return false }))
	allow(s.Admin, adminTableActions, tableAnd(func(ix string) bool { return !isDueIndex(ix) }))
	allow(s.Rotator, rotatorTableActions, tableAnd(isRotatorIndex))

	s.MasterKey.GrantRead(s.Completions, nil)
	s.MasterKey.GrantRead(s.Admin, nil)
	for _, name := range sortedKeys(s.providerSecrets) {
		s.providerSecrets[name].GrantRead(s.Completions, nil)
	}
	if p.ProviderSecretsKeyArn != "" {
		// Referenced secrets under a customer-managed key: reading them decrypts with it,
		// which the key may allow only through Secrets Manager.
		s.Completions.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:Decrypt"),
			Resources: jsii.Strings(p.ProviderSecretsKeyArn),
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:ViaService": awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("secretsmanager."), s.Stack.Region(), jsii.String(".amazonaws.com")}),
			}},
		}))
	}

	storedKeys := []*string{awscdk.Stack_Of(s.Stack).FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("secretsmanager"),
		Resource:     jsii.String("secret"),
		ResourceName: jsii.String(p.SecretsPrefix + "*"),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})}
	allow(s.Rotator, storedKeyActions, storedKeys)
	allow(s.Admin, storedKeyActions, storedKeys)

	if res := bedrockResources(s.Stack, needs.Bedrock); len(res) > 0 {
		allow(s.Completions, bedrockActions, res)
	}
	if needs.KeyGenerateLambda != "" {
		allow(s.Admin, []string{"lambda:InvokeFunction"}, []*string{jsii.String(needs.KeyGenerateLambda)})
	}
}

// geoPrefixes start the ids of Bedrock cross-region inference profiles.
var geoPrefixes = []string{"us", "eu", "apac", "us-gov", "jp", "au", "ca", "global"}

func isGeoPrefix(s string) bool { return slices.Contains(geoPrefixes, s) }

// bedrockResources lists the ARNs the config's Bedrock models are invoked through: the
// foundation model in its region; for a cross-region inference profile, the profile and its
// foundation model in every region it may route to; a model given as an ARN, that ARN.
func bedrockResources(stack awscdk.Stack, models []bedrockModel) []*string {
	var out []*string
	add := func(arn string) {
		if !slices.ContainsFunc(out, func(s *string) bool { return *s == arn }) {
			out = append(out, jsii.String(arn))
		}
	}
	for _, m := range models {
		region := m.Region
		if region == "" {
			region = *stack.Region()
		}
		if strings.HasPrefix(m.ID, "arn:") {
			add(m.ID)
			continue
		}
		geo, base, _ := strings.Cut(m.ID, ".")
		if isGeoPrefix(geo) && base != "" {
			add(fmt.Sprintf("arn:%s:bedrock:%s:%s:inference-profile/%s", *stack.Partition(), region, *stack.Account(), m.ID))
			add(fmt.Sprintf("arn:%s:bedrock:*::foundation-model/%s", *stack.Partition(), base))
			continue
		}
		add(fmt.Sprintf("arn:%s:bedrock:%s::foundation-model/%s", *stack.Partition(), region, m.ID))
	}
	return out
}

// function returns the function with logical ID id.
func (s *Stack) function(id string) awslambda.Function {
	switch id {
	case CompletionsFunctionID:
		return s.Completions
	case AdminFunctionID:
		return s.Admin
	case RotatorFunctionID:
		return s.Rotator
	}
	panic("no function " + id)
}
