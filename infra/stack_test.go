package main

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/app"
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
		{CompletionsFunctionID, 1024, 900, []string{"ANTHROPIC_API_KEY", "LITELLM_MASTER_KEY", "OPENAI_API_KEY"}, "CompletionsFunctionLogs"},
		{AdminFunctionID, 512, 29, []string{"LITELLM_MASTER_KEY"}, "AdminFunctionLogs"},
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
	if len(methods) != 2*(1+2*len(AdminResources)) {
		t.Errorf("%d methods, want GET and POST on {proxy+} and on each admin resource and its {proxy+}", len(methods))
	}
	for _, id := range methods {
		p := tpl.Resources[id].Properties
		path := tpl.path(p["ResourceId"])
		integ := p["Integration"].(map[string]any)
		uri := render(integ["Uri"])
		if p["AuthorizationType"] != "NONE" || integ["Type"] != "AWS_PROXY" {
			t.Errorf("%s %s: %v/%v, want NONE (llmgate checks keys) and AWS_PROXY", p["HttpMethod"], path, p["AuthorizationType"], integ["Type"])
		}
		// the path a request under this resource has, e.g. /key/x for /key/{proxy+}
		sample := strings.ReplaceAll(path, "{proxy+}", "x")
		if !strings.HasSuffix(sample, "/x") {
			sample += "/"
		}
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
		"lambda:InvokeFunction RotatorFunction events.amazonaws.com ${RotatorSchedule",
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
	if !strings.HasPrefix(ref(als["DestinationArn"]), "ApiAccessLogs") || !json.Valid([]byte(als["Format"].(string))) {
		t.Errorf("AccessLogSetting = %v, want JSON lines into ApiAccessLogs", als)
	}
}

func TestAPI_GatewayErrorsAreOpenAIErrors(t *testing.T) {
	tpl := fullStack(t).tpl
	ids := tpl.ofType("AWS::ApiGateway::GatewayResponse")
	if len(ids) != len(gatewayErrors) {
		t.Fatalf("%d gateway responses, want %d", len(ids), len(gatewayErrors))
	}
	vtl := regexp.MustCompile(`\$util\.escapeJavaScript\([^)]*\)|\$context\.[A-Za-z.]+`)
	for _, id := range ids {
		p := tpl.Resources[id].Properties
		body := p["ResponseTemplates"].(map[string]any)["application/json"].(string)
		// Fill the VTL as API Gateway would: messageString is a quoted string, the rest text.
		filled := strings.ReplaceAll(body, "$context.error.messageString", `"Too Many Requests"`)
		filled = vtl.ReplaceAllString(filled, "x")
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
// stmt renders it, sorted. Statements must be plain Allow, Action, Resource.
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
			if keys := slices.Sorted(maps.Keys(st)); st["Effect"] != "Allow" || !slices.Equal(keys, []string{"Action", "Effect", "Resource"}) {
				t.Errorf("%s: statement %v is not a plain Allow of actions on resources", id, st)
			}
			out = append(out, stmt(strs(st["Action"]), strs(st["Resource"])...))
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
	readWrite := []string{"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
	// the calls internal/keyvault makes, on the secrets under the prefix
	storedKeys := stmt(keyvaultActions(t), "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:llmgate/keys/*")
	var adminIdx []string
	for _, ix := range schema.State.Indexes {
		if !slices.Contains(rotatorIndexes, ix.Name) {
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
			stmt(append([]string{"dynamodb:DescribeTable"}, readWrite...), tableAnd(adminIdx...)...),
			logs(AdminFunctionID),
			storedKeys,
			readSecret(secret("MasterKey")),
		},
		RotatorFunctionID: {
			stmt(readWrite, tableAnd(rotatorIndexes...)...),
			logs(RotatorFunctionID),
			storedKeys,
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

func TestScheduleAndAlarms(t *testing.T) {
	tpl := fullStack(t).tpl
	_, rule := tpl.one(t, "AWS::Events::Rule", "RotatorSchedule")
	target := list(rule.Properties["Targets"])[0].(map[string]any)
	if rule.Properties["ScheduleExpression"] != "rate(1 minute)" || ref(target["Arn"]) != RotatorFunctionID {
		t.Errorf("rule = %v, want rate(1 minute) → the rotator", rule.Properties)
	}
	_, topic := tpl.one(t, "AWS::SNS::Topic", "Alarms")
	if !strings.Contains(render(topic.Properties["KmsMasterKeyId"]), "alias/aws/sns") {
		t.Errorf("alarm topic KmsMasterKeyId = %v, want alias/aws/sns", topic.Properties["KmsMasterKeyId"])
	}
	_, sub := tpl.one(t, "AWS::SNS::Subscription", "Alarms")
	if sub.Properties["Protocol"] != "email" || sub.Properties["Endpoint"] != "ops@example.com" {
		t.Errorf("subscription = %v", sub.Properties)
	}
	var metrics []string
	for _, id := range tpl.ofType("AWS::CloudWatch::Alarm") {
		p := tpl.Resources[id].Properties
		var dims []string
		for _, d := range list(p["Dimensions"]) {
			dims = append(dims, render(d.(map[string]any)["Value"]))
		}
		metrics = append(metrics, p["Namespace"].(string)+" "+p["MetricName"].(string)+" "+strings.Join(dims, ","))
		if actions := strs(p["AlarmActions"]); len(actions) != 1 || !strings.HasPrefix(actions[0], "${Alarms") {
			t.Errorf("%s actions = %v, want the alarm topic", id, actions)
		}
	}
	slices.Sort(metrics)
	want := []string{
		"AWS/ApiGateway 5XXError " + StageName + "," + "Llmgate", // ApiName, Stage (sorted below)
		"AWS/DynamoDB ReadThrottleEvents ${State1C20CC9A}",
		"AWS/DynamoDB WriteThrottleEvents ${State1C20CC9A}",
		"AWS/Lambda Errors ${AdminFunction}", "AWS/Lambda Errors ${CompletionsFunction}", "AWS/Lambda Errors ${RotatorFunction}",
		"AWS/Lambda Throttles ${AdminFunction}", "AWS/Lambda Throttles ${CompletionsFunction}", "AWS/Lambda Throttles ${RotatorFunction}",
	}
	if len(metrics) != len(want) {
		t.Fatalf("alarms on:\n%s\nwant:\n%s", strings.Join(metrics, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		gotFields, wantFields := strings.Fields(metrics[i]), strings.Fields(want[i])
		if gotFields[0] != wantFields[0] || gotFields[1] != wantFields[1] {
			t.Errorf("alarm %d on %s, want %s", i, metrics[i], want[i])
		}
	}
}

func TestNag_EveryAwsSolutionsFindingIsSuppressedWithAReason(t *testing.T) {
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
