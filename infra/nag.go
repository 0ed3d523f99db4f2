package main

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppressFindings records why each AwsSolutions finding that remains is accepted. The infra
// tests fail on any finding not suppressed here.
func suppressFindings(s *Stack, api awsapigateway.RestApi, p Props, needs configNeeds) {
	suppress := func(c constructs.IConstruct, children bool, id, reason string, appliesTo ...string) {
		sup := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
		if len(appliesTo) > 0 {
			var at []any
			for _, a := range appliesTo {
				at = append(at, a)
			}
			sup.AppliesTo = &at
		}
		cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{sup}, jsii.Bool(children))
	}

	suppress(api, true, "AwsSolutions-APIG4",
		"llmgate authenticates every request itself, as LiteLLM Proxy does: the master key or a virtual key in Authorization (or x-litellm-api-key), checked by the functions against DynamoDB")
	suppress(api, true, "AwsSolutions-COG4",
		"callers are OpenAI SDK clients holding llmgate virtual keys, not Cognito users; the functions authenticate the keys")
	if p.WebACLArn == "" {
		suppress(api, true, "AwsSolutions-APIG3",
			"a WAF web ACL is an account-level choice with its own cost and rules (context webAclArn attaches one); the stage throttles every method and llmgate enforces per-key rpm/tpm limits")
	}
	if p.Tracing {
		for _, fn := range s.functions() {
			suppress(fn.Role(), true, "AwsSolutions-IAM5",
				"X-Ray's PutTraceSegments and PutTelemetryRecords, which Lambda's active tracing grants, support no resource-level permissions", "Resource::*")
		}
	} else {
		const why = "X-Ray is opt-in (context tracing=true): traces cost per request and llmgate's access and function logs share request ids"
		suppress(api, true, "Serverless-APIGWXrayEnabled", why)
		for _, fn := range s.functions() {
			suppress(fn, true, "Serverless-LambdaTracing", why)
		}
	}
	suppress(s.Completions, true, "Serverless-LambdaDLQ",
		"API Gateway invokes the function synchronously and gets its errors; there are no asynchronous events to keep")
	suppress(s.Admin, true, "Serverless-LambdaDLQ",
		"API Gateway invokes the function synchronously and gets its errors; there are no asynchronous events to keep")
	suppress(s.Rotator, true, "Serverless-LambdaDLQ",
		"failed asynchronous runs go to the on-failure destination (the RotatorFailures queue), which supersedes a dead-letter queue")
	suppress(s.failures, true, "AwsSolutions-SQS3",
		"RotatorFailures is itself the dead-letter queue (Scheduler) and on-failure destination (Lambda) of the rotator; its messages are for operators and alarm on arrival")
	suppress(s.failures, true, "Serverless-SQSRedrivePolicy",
		"RotatorFailures is itself the dead-letter queue of the rotator; nothing consumes it, so there is nothing to redrive")
	if topic := s.Node().TryFindChild(jsii.String("Alarms")); topic != nil {
		suppress(topic, true, "Serverless-SNSRedrivePolicy",
			"the only subscription is an operator's email address: SNS retries email delivery itself, and a queue of undelivered alarm emails would be read by nobody")
	}
	suppress(api, true, "AwsSolutions-IAM4",
		"AmazonAPIGatewayPushToCloudWatchLogs is the policy API Gateway's account-level logging role needs to write execution logs to log groups it creates per stage",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")

	for _, sec := range s.createdSecrets {
		suppress(sec, true, "AwsSolutions-SMG4",
			"the master key and provider API keys are not rotatable by a Secrets Manager rotation function: operators rotate them (put-secret-value) and the functions read them at init; virtual keys rotate through llmgate's own auto-rotation")
	}

	// One suppression per role and reason, listing the resources it covers.
	type roleReason struct{ function, reason string }
	covered := map[roleReason][]string{}
	var order []roleReason
	for _, w := range wildcardGrants(p, needs) {
		k := roleReason{w.FunctionID, w.Reason}
		if _, seen := covered[k]; !seen {
			order = append(order, k)
		}
		covered[k] = append(covered[k], "Resource::"+w.Resource)
	}
	for _, k := range order {
		suppress(s.function(k.function).Role(), true, "AwsSolutions-IAM5", k.reason, covered[k]...)
	}
}

// wildcardGrant is a resource with a wildcard that a function's role is granted on purpose.
type wildcardGrant struct {
	FunctionID string // the function whose role holds the grant
	Resource   string // the ARN as cdk-nag writes it: arn:<AWS::Partition>:...
	Reason     string
}

// wildcardGrants lists every wildcard resource the stack grants, with the reason. cdk-nag's
// AwsSolutions-IAM5 findings on these are suppressed, and the IAM test fails on any wildcard
// resource not listed here.
func wildcardGrants(p Props, needs configNeeds) []wildcardGrant {
	storedKeys := fmt.Sprintf("arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:%s*", p.SecretsPrefix)
	const storedKeysWhy = "stored virtual keys are secrets created at run time under the configured prefix (store_virtual_keys, auto-rotation), so their names are known only as the prefix"
	out := []wildcardGrant{
		{AdminFunctionID, storedKeys, storedKeysWhy},
		{RotatorFunctionID, storedKeys, storedKeysWhy},
	}
	for _, m := range needs.Bedrock {
		if geo, base, ok := strings.Cut(m.ID, "."); ok && isGeoPrefix(geo) && !strings.HasPrefix(m.ID, "arn:") {
			out = append(out, wildcardGrant{CompletionsFunctionID, "arn:<AWS::Partition>:bedrock:*::foundation-model/" + base,
				"a cross-region inference profile may serve a call from its foundation model in any region of its geography; the model is named, only the region is open"})
		}
	}
	return out
}
