package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/metrics"
	"github.com/llmgate/llmgate/internal/store/schema"
)

func TestTable_MatchesSchema(t *testing.T) {
	tpl := fullStack(t).tpl
	_, table := tpl.one(t, "AWS::DynamoDB::GlobalTable", "State")
	p := table.Properties

	keySchema := func(pk, sk schema.Key) []any {
		return []any{
			map[string]any{"AttributeName": pk.Name, "KeyType": "HASH"},
			map[string]any{"AttributeName": sk.Name, "KeyType": "RANGE"},
		}
	}
	want := schema.State.CreateTableInput("x")
	if got, w := p["KeySchema"], keySchema(schema.State.PartitionKey, schema.State.SortKey); !jsonEqual(got, w) {
		t.Errorf("KeySchema = %v, want %v", got, w)
	}
	var wantDefs []any
	for _, d := range want.AttributeDefinitions {
		wantDefs = append(wantDefs, map[string]any{"AttributeName": *d.AttributeName, "AttributeType": string(d.AttributeType)})
	}
	if got := p["AttributeDefinitions"]; !jsonEqualUnordered(got, wantDefs) {
		t.Errorf("AttributeDefinitions = %v, want %v", got, wantDefs)
	}
	var wantGSIs []any
	for _, ix := range schema.State.Indexes {
		proj := map[string]any{"ProjectionType": ix.Projection.Type}
		if len(ix.Projection.NonKeyAttributes) > 0 {
			proj["NonKeyAttributes"] = ix.Projection.NonKeyAttributes
		}
		wantGSIs = append(wantGSIs, map[string]any{
			"IndexName": ix.Name, "KeySchema": keySchema(ix.PartitionKey, ix.SortKey),
			"Projection": proj,
		})
	}
	if got := p["GlobalSecondaryIndexes"]; !jsonEqualUnordered(got, wantGSIs) {
		t.Errorf("GlobalSecondaryIndexes = %v, want %v", got, wantGSIs)
	}
	if got, w := p["TimeToLiveSpecification"], map[string]any{"AttributeName": schema.State.TTLAttribute, "Enabled": true}; !jsonEqual(got, w) {
		t.Errorf("TimeToLiveSpecification = %v, want %v", got, w)
	}
	if p["BillingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode = %v, want PAY_PER_REQUEST", p["BillingMode"])
	}
	replicas := list(p["Replicas"])
	if len(replicas) != 1 {
		t.Fatalf("Replicas = %v, want one", replicas)
	}
	replica := replicas[0].(map[string]any)
	if replica["DeletionProtectionEnabled"] != true {
		t.Error("deletion protection is off")
	}
	if got, w := replica["PointInTimeRecoverySpecification"], map[string]any{"PointInTimeRecoveryEnabled": true}; !jsonEqual(got, w) {
		t.Errorf("PointInTimeRecoverySpecification = %v, want %v", got, w)
	}
	if table.DeletionPolicy != "Retain" || table.UpdateReplacePolicy != "Retain" {
		t.Errorf("DeletionPolicy/UpdateReplacePolicy = %s/%s, want Retain/Retain", table.DeletionPolicy, table.UpdateReplacePolicy)
	}
}

func TestFunctions(t *testing.T) {
	tpl := fullStack(t).tpl
	tests := []struct {
		id       string
		memory   float64
		timeout  float64
		secrets  []string // LLMGATE_SECRETS names
		logGroup string
	}{
		{CompletionsFunctionID, 256, 900, []string{"ANTHROPIC_API_KEY", "LITELLM_MASTER_KEY", "OPENAI_API_KEY"}, "CompletionsFunctionLogs"},
		{AdminFunctionID, 256, 25, []string{"LITELLM_MASTER_KEY"}, "AdminFunctionLogs"},
		{RotatorFunctionID, 256, 300, nil, "RotatorFunctionLogs"},
	}
	if got := tpl.ofType("AWS::Lambda::Function"); len(got) != len(tests) {
		t.Errorf("functions = %v, want %d", got, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			fn, ok := tpl.Resources[tt.id]
			if !ok || fn.Type != "AWS::Lambda::Function" {
				t.Fatalf("no function with logical ID %s", tt.id)
			}
			p := fn.Properties
			for k, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "MemorySize": tt.memory, "Timeout": tt.timeout} {
				if p[k] != want {
					t.Errorf("%s = %v, want %v", k, p[k], want)
				}
			}
			if got := strs(p["Architectures"]); !slices.Equal(got, []string{"arm64"}) {
				t.Errorf("Architectures = %v, want [arm64]", got)
			}
			lc := p["LoggingConfig"].(map[string]any)
			if lc["LogFormat"] != "JSON" || !strings.HasPrefix(ref(lc["LogGroup"]), tt.logGroup) {
				t.Errorf("LoggingConfig = %v, want JSON into %s", lc, tt.logGroup)
			}
			lg := tpl.Resources[ref(lc["LogGroup"])]
			if lg.Properties["RetentionInDays"] != float64(30) {
				t.Errorf("log group retention = %v, want 30 days", lg.Properties["RetentionInDays"])
			}
			env := p["Environment"].(map[string]any)["Variables"].(map[string]any)
			if got := env["LLMGATE_CONFIG"]; got != "/var/task/config.yaml" {
				t.Errorf("LLMGATE_CONFIG = %v", got)
			}
			if got := ref(env["LLMGATE_TABLE"]); !strings.HasPrefix(got, "State") {
				t.Errorf("LLMGATE_TABLE = %v, want the table's Ref", env["LLMGATE_TABLE"])
			}
			if _, buffered := env["LLMGATE_LAMBDA_BUFFERED"]; buffered {
				t.Error("LLMGATE_LAMBDA_BUFFERED set in the streaming stack")
			}
			if got := env["LLMGATE_SECRETS_PREFIX"]; got != "llmgate/Llmgate/keys/" {
				t.Errorf("LLMGATE_SECRETS_PREFIX = %v, want the stack's own llmgate/Llmgate/keys/", got)
			}
			for _, k := range []string{"ReservedConcurrentExecutions", "TracingConfig"} {
				if v, ok := p[k]; ok {
					t.Errorf("%s = %v by default, want it unset (opt-in context)", k, v)
				}
			}
			assertSecretSpec(t, tpl, env["LLMGATE_SECRETS"], tt.secrets)
			for k, v := range env {
				if s := render(v); strings.Contains(s, "sk-") || strings.Contains(s, "{{resolve:") {
					t.Errorf("environment %s = %q carries a secret value", k, s)
				}
			}
		})
	}
}

// assertSecretSpec checks that LLMGATE_SECRETS lists exactly names, each pointing at a
// secret ARN (a Ref to a secret of the stack, or the referenced OpenAI key ARN).
func assertSecretSpec(t *testing.T, tpl template, spec any, names []string) {
	t.Helper()
	if len(names) == 0 {
		if spec != nil {
			t.Errorf("LLMGATE_SECRETS = %v, want unset", render(spec))
		}
		return
	}
	var got []string
	for pair := range strings.SplitSeq(render(spec), ",") {
		name, target, _ := strings.Cut(pair, "=")
		got = append(got, name)
		id := strings.TrimSuffix(strings.TrimPrefix(target, "${"), "}")
		if target != referencedOpenAIKey && tpl.Resources[id].Type != "AWS::SecretsManager::Secret" {
			t.Errorf("LLMGATE_SECRETS %s=%s does not name a secret", name, target)
		}
	}
	if !slices.Equal(got, names) {
		t.Errorf("LLMGATE_SECRETS names = %v, want %v", got, names)
	}
}

func TestAPI_RoutesAdminPrefixesToAdminAndTheRestToCompletions(t *testing.T) {
	tpl := fullStack(t).tpl
	methods := tpl.ofType("AWS::ApiGateway::Method")
	if len(methods) != 3+2*2*len(AdminResources) {
		t.Errorf("%d methods, want GET, POST and DELETE on {proxy+}, GET and POST on each admin resource and its {proxy+}", len(methods))
	}
	for _, id := range methods {
		p := tpl.Resources[id].Properties
		path := tpl.path(p["ResourceId"])
		integ := p["Integration"].(map[string]any)
		uri := render(integ["Uri"])
		if p["AuthorizationType"] != "NONE" || integ["Type"] != "AWS_PROXY" {
			t.Errorf("%s %s: %v/%v, want NONE (llmgate checks keys) and AWS_PROXY", p["HttpMethod"], path, p["AuthorizationType"], integ["Type"])
		}
		// the path a request to this resource has, e.g. /key/x for /key/{proxy+}, /health for /health
		sample := strings.ReplaceAll(path, "{proxy+}", "x")
		if app.IsAdminPath(sample) {
			if !strings.Contains(uri, "${AdminFunction.Arn}/invocations") || integ["ResponseTransferMode"] != nil {
				t.Errorf("%s %s → %s (mode %v), want the admin function, buffered", p["HttpMethod"], path, uri, integ["ResponseTransferMode"])
			}
			continue
		}
		if !strings.Contains(uri, ":lambda:path/2021-11-15/functions/${CompletionsFunction.Arn}/response-streaming-invocations") ||
			integ["ResponseTransferMode"] != "STREAM" || integ["TimeoutInMillis"] != float64(900000) {
			t.Errorf("%s %s → %s (mode %v, timeout %v), want the completions function streaming for 15 minutes",
				p["HttpMethod"], path, uri, integ["ResponseTransferMode"], integ["TimeoutInMillis"])
		}
		validator := tpl.Resources[ref(p["RequestValidatorId"])].Properties
		if p["HttpMethod"] == "POST" {
			model := tpl.Resources[ref(p["RequestModels"].(map[string]any)["application/json"])].Properties
			if validator["ValidateRequestBody"] != true || model["Schema"].(map[string]any)["type"] != "object" {
				t.Errorf("POST %s: validator %v, model %v; want JSON bodies validated as objects", path, validator, model)
			}
		}
	}
	for _, name := range AdminResources {
		if !app.IsAdminPath("/" + name + "/x") {
			t.Errorf("AdminResources has %q, which app.IsAdminPath does not route to the admin handler", name)
		}
	}
}

func TestAPI_PermissionsAndStage(t *testing.T) {
	tpl := fullStack(t).tpl
	var perms []string
	for _, id := range tpl.ofType("AWS::Lambda::Permission") {
		p := tpl.Resources[id].Properties
		perms = append(perms, p["Action"].(string)+" "+ref(p["FunctionName"])+" "+p["Principal"].(string)+" "+render(p["SourceArn"]))
	}
	slices.Sort(perms)
	apiArn := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${ApiF70053CD}/"
	want := []string{
		"lambda:InvokeFunction AdminFunction apigateway.amazonaws.com " + apiArn + "*/*/*",
		"lambda:InvokeFunction CompletionsFunction apigateway.amazonaws.com " + apiArn + "*/*/*",
		"lambda:InvokeWithResponseStream CompletionsFunction apigateway.amazonaws.com " + apiArn + "prod/*/*",
	}
	if len(perms) != len(want) {
		t.Fatalf("permissions:\n%s\nwant:\n%s", strings.Join(perms, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(perms[i], want[i]) {
			t.Errorf("permission %d = %s, want %s", i, perms[i], want[i])
		}
	}

	_, stage := tpl.one(t, "AWS::ApiGateway::Stage", "Api")
	if stage.Properties["StageName"] != StageName {
		t.Errorf("StageName = %v", stage.Properties["StageName"])
	}
	ms := list(stage.Properties["MethodSettings"])[0].(map[string]any)
	if ms["ThrottlingRateLimit"] != float64(100) || ms["ThrottlingBurstLimit"] != float64(200) || ms["LoggingLevel"] != "ERROR" || ms["DataTraceEnabled"] != false {
		t.Errorf("MethodSettings = %v, want throttling 100/200, ERROR logs, no data trace (bodies hold prompts)", ms)
	}
	als := stage.Properties["AccessLogSetting"].(map[string]any)
	var format map[string]string
	if err := json.Unmarshal([]byte(als["Format"].(string)), &format); err != nil || !strings.HasPrefix(ref(als["DestinationArn"]), "ApiAccessLogs") {
		t.Fatalf("AccessLogSetting = %v, want JSON lines into ApiAccessLogs (%v)", als, err)
	}
	// what joins a request to its function's log lines and tells where a slow or cut stream
	// spent its time
	for _, v := range []string{"$context.requestId", "$context.awsEndpointRequestId", "$context.status",
		"$context.integration.latency", "$context.integration.status", "$context.integration.responseTransferMode",
		"$context.integration.timeToFirstContent", "$context.integration.timeToAllHeaders", "$context.error.responseType"} {
		if !slices.Contains(slices.Collect(maps.Values(format)), v) {
			t.Errorf("access log format %v lacks %s", format, v)
		}
	}
	if stage.Properties["TracingEnabled"] == true {
		t.Error("X-Ray tracing on by default, want it opt-in")
	}
}

func TestAPI_GatewayErrorsAreOpenAIErrors(t *testing.T) {
	tpl := fullStack(t).tpl
	ids := tpl.ofType("AWS::ApiGateway::GatewayResponse")
	if len(ids) != len(gatewayErrors) {
		t.Fatalf("%d gateway responses, want %d", len(ids), len(gatewayErrors))
	}
	// Fill the VTL as API Gateway would, with a value holding ' and ": messageString is a
	// quoted JSON string; $util.escapeJavaScript escapes both quotes (\' is not JSON), and a
	// .replaceAll("\\'","'") after it undoes the \'.
	const value = `it's "x"`
	jsEscaped := strings.NewReplacer(`'`, `\'`, `"`, `\"`).Replace(value)
	escape := regexp.MustCompile(`\$util\.escapeJavaScript\([^)]*\)(\.replaceAll\("\\\\'","'"\))?`)
	for _, id := range ids {
		p := tpl.Resources[id].Properties
		body := p["ResponseTemplates"].(map[string]any)["application/json"].(string)
		filled := strings.ReplaceAll(body, "$context.error.messageString", `"Too Many Requests"`)
		filled = escape.ReplaceAllStringFunc(filled, func(m string) string {
			if strings.HasSuffix(m, `.replaceAll("\\'","'")`) {
				return strings.ReplaceAll(jsEscaped, `\'`, `'`)
			}
			return jsEscaped
		})
		filled = regexp.MustCompile(`\$context\.[A-Za-z.]+`).ReplaceAllString(filled, "x")
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    string  `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(filled), &e); err != nil || e.Error.Message == "" || e.Error.Type == "" || e.Error.Code == "" {
			t.Errorf("%s %v: template %s is not an OpenAI error (%v)", id, p["ResponseType"], body, err)
		}
		if code, ok := p["StatusCode"].(string); ok && e.Error.Code != code {
			t.Errorf("%s: code %q, want the status %s", id, e.Error.Code, code)
		}
	}
}

// roleStatements returns the statements of every policy attached to fn's role, each as
// stmt renders it (and " if <condition>"), sorted. Statements must be Allows of actions on
// resources.
func roleStatements(t *testing.T, tpl template, fn string) []string {
	t.Helper()
	role, _ := tpl.one(t, "AWS::IAM::Role", fn+"Role")
	var out []string
	for _, id := range tpl.ofType("AWS::IAM::Policy") {
		p := tpl.Resources[id].Properties
		if !slices.ContainsFunc(list(p["Roles"]), func(r any) bool { return ref(r) == role }) {
			continue
		}
		for _, st := range list(p["PolicyDocument"].(map[string]any)["Statement"]) {
			st := st.(map[string]any)
			keys := slices.Sorted(maps.Keys(st))
			if st["Effect"] != "Allow" || !slices.Equal(slices.DeleteFunc(keys, func(k string) bool { return k == "Condition" }), []string{"Action", "Effect", "Resource"}) {
				t.Errorf("%s: statement %v is not an Allow of actions on resources", id, st)
			}
			s := stmt(strs(st["Action"]), strs(st["Resource"])...)
			if c, ok := st["Condition"]; ok {
				s += " if " + render(c)
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// stmt renders a statement as its sorted actions and sorted resources, so statements compare
// as sets.
func stmt(actions []string, resources ...string) string {
	return strings.Join(slices.Sorted(slices.Values(actions)), ",") + " -> " + strings.Join(slices.Sorted(slices.Values(resources)), ",")
}

func TestIAM_EachFunctionGetsOnlyWhatItUses(t *testing.T) {
	tpl := fullStack(t).tpl
	table := "${State1C20CC9A.Arn}"
	tableAnd := func(indexes ...string) []string {
		out := []string{table}
		for _, n := range indexes {
			out = append(out, table+"/index/"+n)
		}
		return out
	}
	logs := func(fn string) string {
		id, _ := tpl.one(t, "AWS::Logs::LogGroup", fn+"Logs")
		return stmt([]string{"logs:CreateLogStream", "logs:PutLogEvents"}, "${"+id+".Arn}")
	}
	readSecret := func(arn string) string {
		return stmt([]string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}, arn)
	}
	secret := func(prefix string) string {
		for _, id := range tpl.ofType("AWS::SecretsManager::Secret") {
			if strings.HasPrefix(id, prefix) && !strings.HasPrefix(id, "MasterKeySeed") {
				return "${" + id + "}"
			}
		}
		t.Fatalf("no secret %s", prefix)
		return ""
	}
	// the calls internal/store makes: the admin function makes them all (DescribeTable is
	// /health/readiness's), the others all but DescribeTable
	allTable := storeTableActions(t)
	readWrite := slices.DeleteFunc(slices.Clone(allTable), func(a string) bool { return a == "dynamodb:DescribeTable" })
	// the calls internal/keyvault makes, on the secrets under the stack's prefix
	storedKeys := stmt(keyvaultActions(t), "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:llmgate/Llmgate/keys/*")
	failures, _ := tpl.one(t, "AWS::SQS::Queue", "RotatorFailures")
	var adminIdx []string
	for _, ix := range schema.State.Indexes {
		if !slices.Contains(dueIndexes, ix.Name) {
			adminIdx = append(adminIdx, ix.Name)
		}
	}
	want := map[string][]string{
		CompletionsFunctionID: {
			stmt([]string{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"},
				"arn:${AWS::Partition}:bedrock:us-west-2::foundation-model/meta.llama3-1-70b-instruct-v1:0",
				"arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
				"arn:${AWS::Partition}:bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"),
			stmt(readWrite, table),
			logs(CompletionsFunctionID),
			readSecret(secret("EnvANTHROPICAPIKEY")),
			readSecret(secret("MasterKey")),
			readSecret(referencedOpenAIKey),
		},
		AdminFunctionID: {
			stmt(allTable, tableAnd(adminIdx...)...),
			logs(AdminFunctionID),
			storedKeys,
			readSecret(secret("MasterKey")),
		},
		RotatorFunctionID: {
			stmt(readWrite, tableAnd(rotatorIndexes...)...),
			logs(RotatorFunctionID),
			storedKeys,
			// its on-failure destination
			stmt([]string{"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}, "${"+failures+".Arn}"),
		},
	}
	for fn, want := range want {
		t.Run(fn, func(t *testing.T) {
			slices.Sort(want)
			if got := roleStatements(t, tpl, fn); !slices.Equal(got, want) {
				t.Errorf("statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			_, role := tpl.one(t, "AWS::IAM::Role", fn+"Role")
			if mp := role.Properties["ManagedPolicyArns"]; mp != nil {
				t.Errorf("role has managed policies %v", mp)
			}
		})
	}
}

// A wildcard anywhere in a granted resource must be one nag.go justifies for that function.
func TestIAM_WildcardsAreOnlyTheJustifiedOnes(t *testing.T) {
	needs, err := scanConfig(fullProps().ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	justified := map[string][]string{}
	for _, w := range wildcardGrants(fullProps(), needs) {
		justified[w.FunctionID] = append(justified[w.FunctionID], w.Resource)
	}
	tpl := fullStack(t).tpl
	roles := map[string]string{} // role logical ID → function
	for _, fn := range []string{CompletionsFunctionID, AdminFunctionID, RotatorFunctionID} {
		id, _ := tpl.one(t, "AWS::IAM::Role", fn+"Role")
		roles[id] = fn
	}
	// cdk-nag writes intrinsics as <AWS::Partition>, render as ${AWS::Partition}
	nagForm := strings.NewReplacer("${", "<", "}", ">")
	for _, id := range tpl.ofType("AWS::IAM::Policy") {
		p := tpl.Resources[id].Properties
		for _, st := range list(p["PolicyDocument"].(map[string]any)["Statement"]) {
			for _, r := range strs(st.(map[string]any)["Resource"]) {
				if !strings.Contains(r, "*") {
					continue
				}
				ok := false
				for _, role := range list(p["Roles"]) {
					ok = ok || slices.Contains(justified[roles[ref(role)]], nagForm.Replace(r))
				}
				if !ok {
					t.Errorf("%s grants on %q, a wildcard nag.go's wildcardGrants does not justify for its role", id, r)
				}
			}
		}
	}
}

// general_settings.custom_key_generate: arn:aws:lambda:... is invoked by the admin function
// on /key/generate: the admin role, and only it, may invoke exactly that function. The full
// stack's config has no such hook, and TestIAM_EachFunctionGetsOnlyWhatItUses finds no
// Lambda grant there.
func TestIAM_AdminInvokesTheCustomKeyGenerateLambda(t *testing.T) {
	s := keyHookStack(t)
	for _, fn := range []string{CompletionsFunctionID, AdminFunctionID, RotatorFunctionID} {
		var got, want []string
		for _, st := range roleStatements(t, s.tpl, fn) {
			if strings.Contains(st, "lambda:") {
				got = append(got, st)
			}
		}
		if fn == AdminFunctionID {
			want = []string{stmt([]string{"lambda:InvokeFunction"}, keyHookLambda)}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Lambda grants %v, want %v", fn, got, want)
		}
	}
	if len(s.findings) > 0 {
		t.Errorf("unsuppressed cdk-nag findings:\n%s", strings.Join(s.findings, "\n"))
	}
}

func TestSecrets(t *testing.T) {
	tpl := fullStack(t).tpl
	seedID, seed := tpl.one(t, "AWS::SecretsManager::Secret", "MasterKeySeed")
	gen := seed.Properties["GenerateSecretString"].(map[string]any)
	if gen["PasswordLength"] != float64(48) || gen["ExcludePunctuation"] != true {
		t.Errorf("seed generator = %v, want 48 letters and digits", gen)
	}
	masterID := ""
	for _, id := range tpl.ofType("AWS::SecretsManager::Secret") {
		if strings.HasPrefix(id, "MasterKey") && id != seedID {
			masterID = id
		}
	}
	master := tpl.Resources[masterID]
	if got, want := render(master.Properties["SecretString"]), "sk-{{resolve:secretsmanager:${"+seedID+"}:SecretString:::}}"; got != want {
		t.Errorf("master key SecretString = %s, want %s", got, want)
	}
	if master.DeletionPolicy != "Retain" {
		t.Errorf("master key DeletionPolicy = %s, want Retain", master.DeletionPolicy)
	}
	// OPENAI_API_KEY is referenced by ARN; ANTHROPIC_API_KEY gets a placeholder secret;
	// NOT_A_SECRET is defined in the config's environment_variables; the rest are mock models.
	var created []string
	for _, id := range tpl.ofType("AWS::SecretsManager::Secret") {
		if strings.HasPrefix(id, "Env") {
			created = append(created, id)
			if p := tpl.Resources[id].Properties["SecretString"]; p != PlaceholderValue {
				t.Errorf("%s SecretString = %v, want the placeholder", id, p)
			}
		}
	}
	if len(created) != 1 || !strings.HasPrefix(created[0], "EnvANTHROPICAPIKEY") {
		t.Errorf("provider secrets created = %v, want only ANTHROPIC_API_KEY's", created)
	}
	outputs := slices.Sorted(maps.Keys(tpl.Outputs))
	for _, want := range []string{"ApiUrl", "MasterKeySecretArn", "SecretANTHROPICAPIKEY", "SecretOPENAIAPIKEY", "TableName"} {
		if !slices.Contains(outputs, want) {
			t.Errorf("outputs %v lack %s", outputs, want)
		}
	}
	if got := ref(tpl.Outputs["MasterKeySecretArn"].Value); got != masterID {
		t.Errorf("MasterKeySecretArn output = %v, want Ref %s", got, masterID)
	}
	if got := render(tpl.Outputs["ApiUrl"].Value); !strings.HasSuffix(got, "/v1") {
		t.Errorf("ApiUrl = %s, want the base URL ending in /v1", got)
	}
}

// The rotator runs from EventBridge Scheduler, once per schedule: neither Scheduler nor
// Lambda retries a run, a run older than one interval is dropped, and runs that fail or
// cannot be delivered land in the RotatorFailures queue. Only the schedule's role may
// invoke it, and only it.
func TestSchedule_RotatorRunsOnceAndFailuresAreKept(t *testing.T) {
	tpl := fullStack(t).tpl
	if rules := tpl.ofType("AWS::Events::Rule"); len(rules) > 0 {
		t.Errorf("scheduled EventBridge rules %v, want EventBridge Scheduler", rules)
	}
	queue, _ := tpl.one(t, "AWS::SQS::Queue", "RotatorFailures")
	_, sched := tpl.one(t, "AWS::Scheduler::Schedule", "RotatorSchedule")
	target := sched.Properties["Target"].(map[string]any)
	if sched.Properties["ScheduleExpression"] != "rate(1 minute)" || ref(target["Arn"]) != RotatorFunctionID {
		t.Errorf("schedule = %v, want rate(1 minute) → the rotator", sched.Properties)
	}
	if got, want := target["RetryPolicy"], map[string]any{"MaximumRetryAttempts": float64(0), "MaximumEventAgeInSeconds": float64(60)}; !jsonEqual(got, want) {
		t.Errorf("Scheduler RetryPolicy = %v, want %v", got, want)
	}
	if got := ref(target["DeadLetterConfig"].(map[string]any)["Arn"]); got != queue {
		t.Errorf("Scheduler dead-letter queue = %v, want %s", got, queue)
	}
	role := ref(target["RoleArn"])
	var roleStmts []string
	for _, id := range tpl.ofType("AWS::IAM::Policy") {
		pol := tpl.Resources[id].Properties
		if slices.ContainsFunc(list(pol["Roles"]), func(r any) bool { return ref(r) == role }) {
			for _, st := range list(pol["PolicyDocument"].(map[string]any)["Statement"]) {
				st := st.(map[string]any)
				roleStmts = append(roleStmts, stmt(strs(st["Action"]), strs(st["Resource"])...))
			}
		}
	}
	slices.Sort(roleStmts)
	wantStmts := []string{stmt([]string{"lambda:InvokeFunction"}, "${RotatorFunction.Arn}"), stmt([]string{"sqs:SendMessage"}, "${"+queue+".Arn}")}
	if !slices.Equal(roleStmts, wantStmts) {
		t.Errorf("schedule role %s may:\n%s\nwant:\n%s", role, strings.Join(roleStmts, "\n"), strings.Join(wantStmts, "\n"))
	}

	_, cfg := tpl.one(t, "AWS::Lambda::EventInvokeConfig", "RotatorFunction")
	p := cfg.Properties
	dest := ref(p["DestinationConfig"].(map[string]any)["OnFailure"].(map[string]any)["Destination"])
	if ref(p["FunctionName"]) != RotatorFunctionID || p["MaximumRetryAttempts"] != float64(0) || p["MaximumEventAgeInSeconds"] != float64(60) || dest != queue {
		t.Errorf("rotator EventInvokeConfig = %v, want no retries, events dropped after 60 s, failures to %s", p, queue)
	}
	if got := tpl.ofType("AWS::Lambda::EventInvokeConfig"); len(got) != 1 {
		t.Errorf("EventInvokeConfigs %v, want only the rotator's", got)
	}
}

func TestScheduleIntervals(t *testing.T) {
	tests := []struct {
		expr        string
		age, window float64 // seconds
	}{
		{"rate(1 minute)", 60, 300},
		{"rate(10 minutes)", 600, 1200},
		{"rate(2 hours)", 7200, 14400},
		{"rate(1 day)", 21600, 86400},
		{"cron(0 * * * ? *)", 3600, 86400},
	}
	for _, tt := range tests {
		if age, window := *rotatorMaxEventAge(tt.expr).ToSeconds(nil), *rotatorWindow(tt.expr).ToSeconds(nil); age != tt.age || window != tt.window {
			t.Errorf("%s: max event age %v s, alarm window %v s; want %v, %v", tt.expr, age, window, tt.age, tt.window)
		}
	}
}

// alarmTarget is what an alarm watches, rendered: namespace, metric, statistic, period and
// its dimensions as name=value.
func alarmTarget(p map[string]any) string {
	var dims []string
	for _, d := range list(p["Dimensions"]) {
		d := d.(map[string]any)
		dims = append(dims, d["Name"].(string)+"="+render(d["Value"]))
	}
	slices.Sort(dims)
	return fmt.Sprintf("%v %v %v %v %s", p["Namespace"], p["MetricName"], p["Statistic"], p["Period"], strings.Join(dims, ","))
}

// Every alarm watches the right resource: a function's alarms its own function, the table
// alarms the state table, the API alarm this API's stage.
func TestAlarms_WatchTheRightResources(t *testing.T) {
	tpl := fullStack(t).tpl
	table, _ := tpl.one(t, "AWS::DynamoDB::GlobalTable", "State")
	queue, _ := tpl.one(t, "AWS::SQS::Queue", "RotatorFailures")
	want := map[string]string{
		"Api5xxAlarm":                   "AWS/ApiGateway 5XXError Sum 300 ApiName=Llmgate",
		"TableReadThrottleEventsAlarm":  "AWS/DynamoDB ReadThrottleEvents Sum 300 TableName=${" + table + "}",
		"TableWriteThrottleEventsAlarm": "AWS/DynamoDB WriteThrottleEvents Sum 300 TableName=${" + table + "}",
		"ConcurrencyAlarm":              "AWS/Lambda ConcurrentExecutions Maximum 60 ",
		"RotatorStoppedAlarm":           "AWS/Lambda Invocations Sum 300 FunctionName=${RotatorFunction}",
		"RotatorFailuresAlarm":          "AWS/SQS ApproximateNumberOfMessagesVisible Maximum 300 QueueName=${" + queue + ".QueueName}",
	}
	for _, fn := range []string{CompletionsFunctionID, AdminFunctionID, RotatorFunctionID} {
		want[fn+"ErrorsAlarm"] = "AWS/Lambda Errors Sum 300 FunctionName=${" + fn + "}"
		want[fn+"ThrottlesAlarm"] = "AWS/Lambda Throttles Sum 300 FunctionName=${" + fn + "}"
	}
	alarms := tpl.ofType("AWS::CloudWatch::Alarm")
	if len(alarms) != len(want) {
		t.Errorf("alarms %v, want %d", alarms, len(want))
	}
	for prefix, target := range want {
		id, a := tpl.one(t, "AWS::CloudWatch::Alarm", prefix)
		if got := alarmTarget(a.Properties); !strings.HasPrefix(got, target) {
			t.Errorf("%s watches %s, want %s", id, got, target)
		}
	}
	_, stopped := tpl.one(t, "AWS::CloudWatch::Alarm", "RotatorStoppedAlarm")
	if p := stopped.Properties; p["ComparisonOperator"] != "LessThanThreshold" || p["Threshold"] != float64(1) || p["TreatMissingData"] != "breaching" {
		t.Errorf("RotatorStoppedAlarm = %v, want fewer than 1 run, missing data breaching", p)
	}
}

// Alarm emails arrive: every alarm notifies the topic; the topic is encrypted with a
// customer-managed key whose policy lets CloudWatch use it (alias/aws/sns cannot), and its
// policy lets this account's alarms publish (EnforceSSL's policy alone holds only a Deny).
func TestAlarms_NotifyATopicCloudWatchCanPublishTo(t *testing.T) {
	tpl := fullStack(t).tpl
	topicID, topic := tpl.one(t, "AWS::SNS::Topic", "Alarms")
	for _, id := range tpl.ofType("AWS::CloudWatch::Alarm") {
		if actions := strs(tpl.Resources[id].Properties["AlarmActions"]); !slices.Equal(actions, []string{"${" + topicID + "}"}) {
			t.Errorf("%s actions = %v, want the alarm topic", id, actions)
		}
	}
	_, sub := tpl.one(t, "AWS::SNS::Subscription", "Alarms")
	if sub.Properties["Protocol"] != "email" || sub.Properties["Endpoint"] != "ops@example.com" {
		t.Errorf("subscription = %v", sub.Properties)
	}
	keyID := ref(topic.Properties["KmsMasterKeyId"])
	key, ok := tpl.Resources[keyID]
	if !ok || key.Type != "AWS::KMS::Key" {
		t.Fatalf("topic KmsMasterKeyId = %v, want a customer-managed key of the stack", topic.Properties["KmsMasterKeyId"])
	}
	if key.Properties["EnableKeyRotation"] != true {
		t.Error("alarm key rotation is off")
	}
	grants := func(doc any, principal string, actions ...string) bool {
		for _, st := range list(doc.(map[string]any)["Statement"]) {
			st := st.(map[string]any)
			pr, _ := st["Principal"].(map[string]any)
			if st["Effect"] == "Allow" && pr != nil && render(pr["Service"]) == principal {
				got := strs(st["Action"])
				if !slices.ContainsFunc(actions, func(a string) bool { return !slices.Contains(got, a) }) {
					return true
				}
			}
		}
		return false
	}
	if !grants(key.Properties["KeyPolicy"], "cloudwatch.amazonaws.com", "kms:Decrypt", "kms:GenerateDataKey*") {
		t.Errorf("alarm key policy does not let CloudWatch use the key: %s", render(key.Properties["KeyPolicy"]))
	}
	_, pol := tpl.one(t, "AWS::SNS::TopicPolicy", "Alarms")
	if got := strs(pol.Properties["Topics"]); !slices.Equal(got, []string{"${" + topicID + "}"}) {
		t.Errorf("topic policy on %v", got)
	}
	if !grants(pol.Properties["PolicyDocument"], "cloudwatch.amazonaws.com", "sns:Publish") {
		t.Errorf("topic policy does not let CloudWatch publish: %s", render(pol.Properties["PolicyDocument"]))
	}
}

func TestDashboard_ShowsTheStacksMetrics(t *testing.T) {
	tpl := fullStack(t).tpl
	_, dash := tpl.one(t, "AWS::CloudWatch::Dashboard", "Dashboard")
	body := render(dash.Properties["DashboardBody"])
	table, _ := tpl.one(t, "AWS::DynamoDB::GlobalTable", "State")
	for _, want := range []string{
		`"AWS/ApiGateway","Count"`, `"AWS/ApiGateway","5XXError"`, `"AWS/ApiGateway","Latency"`, `"AWS/ApiGateway","IntegrationLatency"`,
		`"AWS/Lambda","ConcurrentExecutions","FunctionName","${CompletionsFunction}"`,
		`"AWS/Lambda","UnreservedConcurrentExecutions"`,
		`"AWS/Lambda","Throttles","FunctionName","${AdminFunction}"`,
		`"AWS/Lambda","Invocations","FunctionName","${RotatorFunction}"`,
		`"AWS/DynamoDB","ConsumedWriteCapacityUnits","TableName","${` + table + `}"`,
		`"AWS/DynamoDB","TransactionConflict","TableName","${` + table + `}"`,
		`"AWS/DynamoDB","WriteThrottleEvents","TableName","${` + table + `}"`,
		`"llmgate","litellm_requests_metric"`, `"llmgate","litellm_spend_metric"`, `"llmgate","litellm_total_tokens"`,
		`"llmgate","litellm_llm_api_failed_requests_metric"`, `"llmgate","litellm_request_total_latency_metric"`,
		`"llmgate","litellm_llm_api_latency_metric"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	// llmgate's own metrics are the ones internal/metrics writes, in its namespace
	if MetricsNamespace != metrics.Namespace {
		t.Errorf("dashboard namespace %q, internal/metrics writes %q", MetricsNamespace, metrics.Namespace)
	}
	written := varStrings(t, goSource(t, "internal/metrics"), "callMetrics")
	for _, m := range regexp.MustCompile(`litellm_[a-z_]+`).FindAllString(body, -1) {
		if !slices.Contains(written, m) {
			t.Errorf("dashboard shows %s, which internal/metrics does not write (it writes %v)", m, written)
		}
	}
}

func TestNag_EveryFindingIsSuppressedWithAReason(t *testing.T) {
	if f := fullStack(t).findings; len(f) > 0 {
		t.Errorf("%d unsuppressed cdk-nag findings:\n%s", len(f), strings.Join(f, "\n"))
	}
}

func TestBufferedStack_ForSamLocal(t *testing.T) {
	tpl := localStack(t).tpl
	for _, id := range tpl.ofType("AWS::ApiGateway::Method") {
		integ := tpl.Resources[id].Properties["Integration"].(map[string]any)
		if integ["ResponseTransferMode"] == "STREAM" || strings.Contains(render(integ["Uri"]), "response-streaming") {
			t.Errorf("%s streams in the buffered stack: %v", id, integ)
		}
	}
	for _, id := range tpl.ofType("AWS::Lambda::Permission") {
		if a := tpl.Resources[id].Properties["Action"]; a != "lambda:InvokeFunction" {
			t.Errorf("%s: %v in the buffered stack", id, a)
		}
	}
	env := tpl.Resources[CompletionsFunctionID].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
	if env["LLMGATE_LAMBDA_BUFFERED"] != "1" {
		t.Errorf("LLMGATE_LAMBDA_BUFFERED = %v, want 1", env["LLMGATE_LAMBDA_BUFFERED"])
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// jsonEqualUnordered compares two lists ignoring order.
func jsonEqualUnordered(a any, b []any) bool {
	norm := func(l []any) []string {
		var out []string
		for _, x := range l {
			j, _ := json.Marshal(x)
			out = append(out, string(j))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(list(a)), norm(b))
}

// Each opt-in context option reaches the template.
func TestOptions(t *testing.T) {
	s := keyHookStack(t)
	tpl := s.tpl
	if len(s.findings) > 0 {
		t.Errorf("unsuppressed cdk-nag findings:\n%s", strings.Join(s.findings, "\n"))
	}
	for fn, want := range map[string]float64{CompletionsFunctionID: 500, AdminFunctionID: 10, RotatorFunctionID: 2} {
		p := tpl.Resources[fn].Properties
		if p["ReservedConcurrentExecutions"] != want {
			t.Errorf("%s ReservedConcurrentExecutions = %v, want %v", fn, p["ReservedConcurrentExecutions"], want)
		}
		if got := p["TracingConfig"]; !jsonEqual(got, map[string]any{"Mode": "Active"}) {
			t.Errorf("%s TracingConfig = %v, want Active", fn, got)
		}
		env := p["Environment"].(map[string]any)["Variables"].(map[string]any)
		if got := env["LLMGATE_CORS_ORIGINS"]; got != "https://app.example.com,https://admin.example.com" {
			t.Errorf("%s LLMGATE_CORS_ORIGINS = %v", fn, got)
		}
		if got := env["LLMGATE_SECRETS_PREFIX"]; got != "llmgate/LlmgateDev/keys/" {
			t.Errorf("%s LLMGATE_SECRETS_PREFIX = %v, want the stack's own prefix", fn, got)
		}
		if fn != RotatorFunctionID && p["MemorySize"] != float64(512) {
			t.Errorf("%s MemorySize = %v, want 512", fn, p["MemorySize"])
		}
	}
	id, capAlarm := tpl.one(t, "AWS::CloudWatch::Alarm", "CompletionsCapAlarm")
	if got := alarmTarget(capAlarm.Properties); got != "AWS/Lambda ConcurrentExecutions Maximum 60 FunctionName=${CompletionsFunction}" || capAlarm.Properties["Threshold"] != float64(450) {
		t.Errorf("%s watches %s over %v, want the completions function's concurrency over 450 (90%% of 500)", id, got, capAlarm.Properties["Threshold"])
	}
	_, stopped := tpl.one(t, "AWS::CloudWatch::Alarm", "RotatorStoppedAlarm")
	if got := stopped.Properties["Period"]; got != float64(7200) {
		t.Errorf("RotatorStoppedAlarm period = %v for rate(1 hour), want 7200", got)
	}
	_, stage := tpl.one(t, "AWS::ApiGateway::Stage", "Api")
	if stage.Properties["TracingEnabled"] != true {
		t.Error("stage tracing off with tracing=true")
	}
	_, dn := tpl.one(t, "AWS::ApiGateway::DomainName", "Api")
	if dn.Properties["DomainName"] != "llm.example.com" || dn.Properties["RegionalCertificateArn"] != testCertificate || dn.Properties["SecurityPolicy"] != "TLS_1_2" {
		t.Errorf("domain name = %v", dn.Properties)
	}
	if _, ok := tpl.Outputs["DomainTarget"]; !ok {
		t.Error("no DomainTarget output")
	}
	_, waf := tpl.one(t, "AWS::WAFv2::WebACLAssociation", "WebAcl")
	if waf.Properties["WebACLArn"] != testWebACL || !strings.Contains(render(waf.Properties["ResourceArn"]), "/stages/") {
		t.Errorf("web ACL association = %v", waf.Properties)
	}
	var preflight int
	for _, m := range tpl.ofType("AWS::ApiGateway::Method") {
		p := tpl.Resources[m].Properties
		if p["HttpMethod"] != "OPTIONS" {
			continue
		}
		preflight++
		params := p["Integration"].(map[string]any)["IntegrationResponses"].([]any)[0].(map[string]any)["ResponseParameters"].(map[string]any)
		if o := params["method.response.header.Access-Control-Allow-Origin"]; o != "'https://app.example.com'" {
			t.Errorf("preflight %s allows origin %v", m, o)
		}
	}
	if preflight == 0 {
		t.Error("no CORS preflight methods")
	}
	// provider secrets under a customer key: the completions function may decrypt with it,
	// only through Secrets Manager
	var decrypt []string
	for _, st := range roleStatements(t, tpl, CompletionsFunctionID) {
		if strings.Contains(st, "kms:") {
			decrypt = append(decrypt, st)
		}
	}
	if len(decrypt) != 1 || !strings.HasPrefix(decrypt[0], "kms:Decrypt -> "+testSecretsKey+" if ") || !strings.Contains(decrypt[0], "secretsmanager.") {
		t.Errorf("completions KMS grants %v, want kms:Decrypt on %s via Secrets Manager", decrypt, testSecretsKey)
	}
}

// The functions behind a buffered integration stop before API Gateway's integration
// timeout does (else the client gets a 504 while the function runs on); a streamed one may
// run as long as its integration.
func TestAPI_FunctionsStopBeforeTheirIntegration(t *testing.T) {
	for name, tpl := range map[string]template{"streaming": fullStack(t).tpl, "buffered": localStack(t).tpl} {
		for _, id := range tpl.ofType("AWS::ApiGateway::Method") {
			integ, ok := tpl.Resources[id].Properties["Integration"].(map[string]any)
			if !ok || integ["Type"] != "AWS_PROXY" {
				continue
			}
			fn := ""
			for _, f := range []string{CompletionsFunctionID, AdminFunctionID} {
				if strings.Contains(render(integ["Uri"]), "${"+f+".Arn}") {
					fn = f
				}
			}
			timeout := tpl.Resources[fn].Properties["Timeout"].(float64) * 1000
			limit, _ := integ["TimeoutInMillis"].(float64)
			if limit == 0 {
				limit = 29000
			}
			if streamed := integ["ResponseTransferMode"] == "STREAM"; timeout > limit || (!streamed && timeout >= limit) {
				t.Errorf("%s stack: %s → %s runs %v ms, integration times out at %v ms", name, id, fn, timeout, limit)
			}
		}
	}
}
