package main

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/jsii-runtime-go"
)

// StageName is the API stage; the OpenAI base URL is https://<api>/prod/v1.
const StageName = "prod"

// AdminResources are the top-level path segments the admin function serves (the same
// prefixes as app.IsAdminPath; a test checks that they agree). Every other path goes to the
// completions function.
var AdminResources = []string{"key", "user", "team", "spend", "budget", "customer", "end_user", "organization", "global", "health", "ui"}

// HealthCheck is the admin resource whose bare path the completions function serves: GET
// /health calls every deployment, and only the completions function has the router and the
// provider secrets. /health/liveliness, /health/readiness, ... stay the admin function's.
const HealthCheck = "health"

// newAPI builds the REST API: every path to the completions function (streaming integration
// with a 15-minute timeout when p.Streaming), the admin prefixes to the admin function
// (buffered). API Gateway's own errors (throttling, bad body, unknown route, timeouts) are
// answered in OpenAI's error format.
func newAPI(scope awscdk.Stack, p Props, completions, admin awslambda.Function) awsapigateway.RestApi {
	accessLogs := awslogs.NewLogGroup(scope, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     p.LogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	props := &awsapigateway.RestApiProps{
		RestApiName: jsii.String(p.StackName),
		Description: jsii.String("llmgate: OpenAI-compatible LLM gateway"),
		EndpointConfiguration: &awsapigateway.EndpointConfiguration{
			Types: &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		},
		CloudWatchRole: jsii.Bool(true),
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String(StageName),
			ThrottlingRateLimit:  jsii.Number(p.ThrottleRate),
			ThrottlingBurstLimit: jsii.Number(p.ThrottleBurst),
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			MetricsEnabled:       jsii.Bool(true),
			TracingEnabled:       jsii.Bool(p.Tracing),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat:      awsapigateway.AccessLogFormat_Custom(jsii.String(accessLogFormat())),
		},
	}
	if len(p.CorsOrigins) > 0 {
		// API Gateway answers the preflight; the functions add the CORS headers to the
		// answers themselves (lambdahttp.CORS), as a proxy integration must.
		props.DefaultCorsPreflightOptions = &awsapigateway.CorsOptions{
			AllowOrigins: jsii.Strings(p.CorsOrigins...),
			AllowMethods: jsii.Strings("GET", "POST", "DELETE", "OPTIONS"),
			AllowHeaders: jsii.Strings("Authorization", "Content-Type", "x-litellm-api-key", "OpenAI-Organization", "OpenAI-Project"),
			MaxAge:       awscdk.Duration_Hours(jsii.Number(1)),
		}
	}
	if p.DomainName != "" {
		props.DomainName = &awsapigateway.DomainNameOptions{
			DomainName:     jsii.String(p.DomainName),
			Certificate:    awscertificatemanager.Certificate_FromCertificateArn(scope, jsii.String("Certificate"), jsii.String(p.CertificateArn)),
			EndpointType:   awsapigateway.EndpointType_REGIONAL,
			SecurityPolicy: awsapigateway.SecurityPolicy_TLS_1_2,
		}
	}
	api := awsapigateway.NewRestApi(scope, jsii.String("Api"), props)
	if p.WebACLArn != "" {
		awswafv2.NewCfnWebACLAssociation(scope, jsii.String("WebAcl"), &awswafv2.CfnWebACLAssociationProps{
			ResourceArn: api.DeploymentStage().StageArn(),
			WebAclArn:   jsii.String(p.WebACLArn),
		})
	}

	// The LLM routes take JSON bodies: a POST whose JSON body is not an object is refused at
	// the edge. Other methods and the admin routes validate parameters only (the handlers
	// check bodies and answer in OpenAI's format).
	validateBody := api.AddRequestValidator(jsii.String("BodyValidator"), &awsapigateway.RequestValidatorOptions{
		ValidateRequestBody: jsii.Bool(true), ValidateRequestParameters: jsii.Bool(true),
	})
	validateParams := api.AddRequestValidator(jsii.String("ParameterValidator"), &awsapigateway.RequestValidatorOptions{
		ValidateRequestParameters: jsii.Bool(true),
	})
	jsonObject := api.AddModel(jsii.String("JsonObject"), &awsapigateway.ModelOptions{
		ContentType: jsii.String("application/json"),
		Schema: &awsapigateway.JsonSchema{
			Schema: awsapigateway.JsonSchemaVersion_DRAFT4,
			Type:   awsapigateway.JsonSchemaType_OBJECT,
		},
	})

	completionsOpts := &awsapigateway.LambdaIntegrationOptions{
		ScopePermissionToMethod: jsii.Bool(false),
		Timeout:                 awscdk.Duration_Seconds(jsii.Number(29)),
	}
	if p.Streaming {
		completionsOpts.ResponseTransferMode = awsapigateway.ResponseTransferMode_STREAM
		completionsOpts.Timeout = awscdk.Duration_Minutes(jsii.Number(15))
		// The integration invokes with InvokeWithResponseStream, which the default
		// lambda:InvokeFunction permission does not cover.
		completions.AddPermission(jsii.String("ApiInvokeWithResponseStream"), &awslambda.Permission{
			Principal: awsiam.NewServicePrincipal(jsii.String("apigateway.amazonaws.com"), nil),
			Action:    jsii.String("lambda:InvokeWithResponseStream"),
			SourceArn: api.ArnForExecuteApi(jsii.String("*"), jsii.String("/*"), jsii.String(StageName)),
		})
	}
	toCompletions := awsapigateway.NewLambdaIntegration(completions, completionsOpts)
	toAdmin := awsapigateway.NewLambdaIntegration(admin, &awsapigateway.LambdaIntegrationOptions{
		ScopePermissionToMethod: jsii.Bool(false),
		Timeout:                 awscdk.Duration_Seconds(jsii.Number(29)),
	})

	// Authorization is llmgate's own (master key or virtual keys, LiteLLM-compatible),
	// checked by the functions; the methods are open at the API Gateway level.
	methods := func(res awsapigateway.IResource, integ awsapigateway.Integration, bodyChecked bool) {
		res.AddMethod(jsii.String("GET"), integ, &awsapigateway.MethodOptions{
			AuthorizationType: awsapigateway.AuthorizationType_NONE, RequestValidator: validateParams,
		})
		post := &awsapigateway.MethodOptions{AuthorizationType: awsapigateway.AuthorizationType_NONE, RequestValidator: validateParams}
		if bodyChecked {
			post.RequestValidator = validateBody
			post.RequestModels = &map[string]awsapigateway.IModel{"application/json": jsonObject}
		}
		res.AddMethod(jsii.String("POST"), integ, post)
	}
	llmRoutes := api.Root().AddResource(jsii.String("{proxy+}"), nil)
	methods(llmRoutes, toCompletions, true)
	// DELETE /v1/responses/{id} (the Responses API's stored responses) is the LLM routes'
	// one DELETE; it has no body.
	llmRoutes.AddMethod(jsii.String("DELETE"), toCompletions, &awsapigateway.MethodOptions{
		AuthorizationType: awsapigateway.AuthorizationType_NONE, RequestValidator: validateParams,
	})
	for _, name := range AdminResources {
		res := api.Root().AddResource(jsii.String(name), nil)
		if name == HealthCheck {
			methods(res, toCompletions, true)
		} else {
			methods(res, toAdmin, false)
		}
		methods(res.AddResource(jsii.String("{proxy+}"), nil), toAdmin, false)
	}

	openAIErrors(api)
	return api
}

// jsonEscape is the VTL that writes expr's value inside a JSON string: $util.escapeJavaScript
// also escapes ' as \', which JSON does not allow, so that escape is undone.
func jsonEscape(expr string) string {
	return `$util.escapeJavaScript(` + expr + `).replaceAll("\\'","'")`
}

// gatewayErrors are the API Gateway-generated responses rewritten in OpenAI's error format:
// response type, status ("" keeps API Gateway's), OpenAI error type, and message (a VTL
// expression that yields a JSON string).
var gatewayErrors = []struct {
	id, status, typ, message string
	responseType             awsapigateway.ResponseType
}{
	{"Throttled", "429", "rate_limit_error", "$context.error.messageString", awsapigateway.ResponseType_THROTTLED()},
	{"BadRequestBody", "400", "invalid_request_error", `"Invalid request body: ` + jsonEscape("$context.error.validationErrorString") + `"`, awsapigateway.ResponseType_BAD_REQUEST_BODY()},
	{"RequestTooLarge", "413", "invalid_request_error", "$context.error.messageString", awsapigateway.ResponseType_REQUEST_TOO_LARGE()},
	{"UnknownRoute", "404", "not_found_error", `"Route not found: $context.httpMethod ` + jsonEscape("$context.path") + `"`, awsapigateway.ResponseType_MISSING_AUTHENTICATION_TOKEN()},
	{"IntegrationTimeout", "504", "timeout_error", "$context.error.messageString", awsapigateway.ResponseType_INTEGRATION_TIMEOUT()},
	{"Default4xx", "", "invalid_request_error", "$context.error.messageString", awsapigateway.ResponseType_DEFAULT_4XX()},
	{"Default5xx", "", "internal_server_error", "$context.error.messageString", awsapigateway.ResponseType_DEFAULT_5XX()},
}

// accessLogFields are the stage's access log, one JSON object per request: who called what,
// the outcome, the latencies (integration latency, and for streams the time to the first
// byte and the transfer mode), and the ids that join it to the function's log lines
// (requestId is API Gateway's, lambdaRequestId the function invocation's).
var accessLogFields = [][2]string{
	{"requestId", "$context.requestId"},
	{"extendedRequestId", "$context.extendedRequestId"},
	{"lambdaRequestId", "$context.awsEndpointRequestId"},
	{"requestTime", "$context.requestTimeEpoch"},
	{"ip", "$context.identity.sourceIp"},
	{"userAgent", "$context.identity.userAgent"},
	{"httpMethod", "$context.httpMethod"},
	{"resourcePath", "$context.resourcePath"},
	{"path", "$context.path"},
	{"protocol", "$context.protocol"},
	{"status", "$context.status"},
	{"responseLength", "$context.responseLength"},
	{"responseLatency", "$context.responseLatency"},
	{"integrationLatency", "$context.integration.latency"},
	{"integrationStatus", "$context.integration.status"},
	{"integrationError", "$context.integration.error"},
	{"responseTransferMode", "$context.integration.responseTransferMode"},
	{"timeToAllHeaders", "$context.integration.timeToAllHeaders"},
	{"timeToFirstContent", "$context.integration.timeToFirstContent"},
	{"errorType", "$context.error.responseType"},
	{"errorMessage", "$context.error.message"},
	{"wafStatus", "$context.waf.status"},
}

func accessLogFormat() string {
	var b strings.Builder
	b.WriteString("{")
	for i, f := range accessLogFields {
		if i > 0 {
			b.WriteString(",")
		}
		// every value quoted: a variable with no value is written as "-"
		b.WriteString(`"` + f[0] + `":"` + f[1] + `"`)
	}
	b.WriteString("}")
	return b.String()
}

func openAIErrors(api awsapigateway.RestApi) {
	for _, e := range gatewayErrors {
		code := e.status
		if code == "" {
			code = "$context.error.responseType"
		}
		opts := &awsapigateway.GatewayResponseOptions{
			Type: e.responseType,
			Templates: &map[string]*string{
				"application/json": jsii.String(`{"error":{"message":` + e.message + `,"type":"` + e.typ + `","param":null,"code":"` + code + `"}}`),
			},
		}
		if e.status != "" {
			opts.StatusCode = jsii.String(e.status)
		}
		api.AddGatewayResponse(jsii.String(e.id), opts)
	}
}
