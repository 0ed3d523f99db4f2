package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// MetricsNamespace is the CloudWatch namespace of the metrics the completions function
// writes in embedded metric format, named as LiteLLM's Prometheus metrics.
const MetricsNamespace = "llmgate"

// functions returns the stack's functions in a fixed order.
func (s *Stack) functions() []awslambda.Function {
	return []awslambda.Function{s.Completions, s.Admin, s.Rotator}
}

// concurrency is fn's ConcurrentExecutions, the maximum over each minute.
func concurrency(fn awslambda.Function) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String("AWS/Lambda"),
		MetricName:    jsii.String("ConcurrentExecutions"),
		DimensionsMap: &map[string]*string{"FunctionName": fn.FunctionName()},
		Period:        awscdk.Duration_Minutes(jsii.Number(1)),
		Statistic:     jsii.String("Maximum"),
	})
}

// tableMetric is a DynamoDB metric of the state table over 5 minutes.
func tableMetric(s *Stack, name, statistic string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String("AWS/DynamoDB"),
		MetricName:    jsii.String(name),
		DimensionsMap: &map[string]*string{"TableName": s.Table.TableName()},
		Period:        fiveMinutes,
		Statistic:     jsii.String(statistic),
	})
}

// newDashboard is one CloudWatch dashboard for the stack: the calls and their outcome
// (API Gateway and llmgate's own metrics), latency, streams in flight, Lambda concurrency and
// throttles, DynamoDB capacity, conflicts and throttles, and the rotator's runs.
func newDashboard(scope awscdk.Stack, api awsapigateway.RestApi, s *Stack) {
	opts := func(stat, label string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: fiveMinutes, Statistic: jsii.String(stat), Label: jsii.String(label)}
	}
	llmgate := func(name, stat string) awscloudwatch.IMetric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(MetricsNamespace), MetricName: jsii.String(name),
			Period: fiveMinutes, Statistic: jsii.String(stat), Label: jsii.String(name + " " + stat),
		})
	}
	byModel := func(name, stat string) awscloudwatch.IMetric {
		return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("SEARCH('{" + MetricsNamespace + ",model} MetricName=\"" + name + "\"', '" + stat + "', 300)"),
			Label:      jsii.String(""),
			Period:     fiveMinutes,
		})
	}
	graph := func(title string, left []awscloudwatch.IMetric, right ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		props := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6)}
		if len(right) > 0 {
			props.Right = &right
		}
		return awscloudwatch.NewGraphWidget(props)
	}
	perFunction := func(metric func(fn awslambda.Function) awscloudwatch.IMetric) []awscloudwatch.IMetric {
		var out []awscloudwatch.IMetric
		for _, fn := range s.functions() {
			out = append(out, metric(fn))
		}
		return out
	}
	minute := &awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")}
	account := func(name string) awscloudwatch.IMetric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/Lambda"), MetricName: jsii.String(name),
			Period: minute.Period, Statistic: minute.Statistic, Label: jsii.String("account " + name),
		})
	}
	streams := concurrency(s.Completions).With(&awscloudwatch.MetricOptions{Label: jsii.String("streams in flight (completions concurrency)")})

	awscloudwatch.NewDashboard(scope, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
		Widgets: &[]*[]awscloudwatch.IWidget{
			{
				graph("API calls and errors", []awscloudwatch.IMetric{
					api.MetricCount(opts("Sum", "calls")), api.MetricClientError(opts("Sum", "4xx")), api.MetricServerError(opts("Sum", "5xx")),
				}),
				graph("API latency (ms)", []awscloudwatch.IMetric{
					api.MetricLatency(opts("p50", "latency p50")), api.MetricLatency(opts("p99", "latency p99")),
					api.MetricIntegrationLatency(opts("p99", "integration latency p99")),
				}),
				graph("Streams in flight and Lambda concurrency", []awscloudwatch.IMetric{
					streams, account("ConcurrentExecutions"), account("UnreservedConcurrentExecutions"),
				}),
			},
			{
				graph("LLM calls (llmgate metrics)", []awscloudwatch.IMetric{
					llmgate("litellm_requests_metric", "Sum"), llmgate("litellm_llm_api_failed_requests_metric", "Sum"),
				}, llmgate("litellm_total_tokens", "Sum")),
				graph("LLM latency (s)", []awscloudwatch.IMetric{
					llmgate("litellm_request_total_latency_metric", "p50"), llmgate("litellm_request_total_latency_metric", "p99"),
					llmgate("litellm_llm_api_latency_metric", "p99"),
				}),
				graph("Spend (USD) and calls by model", []awscloudwatch.IMetric{
					llmgate("litellm_spend_metric", "Sum"),
				}, byModel("litellm_requests_metric", "Sum")),
			},
			{
				graph("Lambda invocations", perFunction(func(fn awslambda.Function) awscloudwatch.IMetric {
					return fn.MetricInvocations(opts("Sum", *fn.Node().Id()))
				})),
				graph("Lambda errors and throttles", perFunction(func(fn awslambda.Function) awscloudwatch.IMetric {
					return fn.MetricErrors(opts("Sum", *fn.Node().Id()+" errors"))
				}), perFunction(func(fn awslambda.Function) awscloudwatch.IMetric {
					return fn.MetricThrottles(opts("Sum", *fn.Node().Id()+" throttles"))
				})...),
				graph("Lambda duration p99 (ms)", perFunction(func(fn awslambda.Function) awscloudwatch.IMetric {
					return fn.MetricDuration(opts("p99", *fn.Node().Id()))
				})),
			},
			{
				graph("DynamoDB consumed capacity", []awscloudwatch.IMetric{
					tableMetric(s, "ConsumedReadCapacityUnits", "Sum"), tableMetric(s, "ConsumedWriteCapacityUnits", "Sum"),
				}),
				graph("DynamoDB conflicts and throttles", []awscloudwatch.IMetric{
					tableMetric(s, "TransactionConflict", "Sum"), tableMetric(s, "ConditionalCheckFailedRequests", "Sum"),
				}, tableMetric(s, "ReadThrottleEvents", "Sum"), tableMetric(s, "WriteThrottleEvents", "Sum")),
				graph("Rotator runs", []awscloudwatch.IMetric{
					s.Rotator.MetricInvocations(opts("Sum", "runs")), s.Rotator.MetricErrors(opts("Sum", "failed")),
					s.failures.MetricApproximateNumberOfMessagesVisible(opts("Maximum", "in the failure queue")),
				}, s.Rotator.MetricDuration(opts("Maximum", "longest run (ms)"))),
			},
		},
	})
}
