package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/jsii-runtime-go"
)

// newAlarms alarms on API 5xx answers, function errors and throttles, and DynamoDB throttling,
// each summed over 5 minutes. With an email they notify it through an SNS topic.
func newAlarms(scope awscdk.Stack, email string, api awsapigateway.RestApi, table awsdynamodb.TableV2, fns ...awslambda.Function) {
	var action awscloudwatch.IAlarmAction
	if email != "" {
		topic := awssns.NewTopic(scope, jsii.String("Alarms"), &awssns.TopicProps{
			DisplayName: jsii.String("llmgate alarms"),
			EnforceSSL:  jsii.Bool(true),
			MasterKey:   awskms.Alias_FromAliasName(scope, jsii.String("SnsKey"), jsii.String("alias/aws/sns")),
		})
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(email), nil))
		action = awscloudwatchactions.NewSnsAction(topic)
	}
	fiveMinutes := &awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}
	alarm := func(id, description string, metric awscloudwatch.IMetric, threshold float64) {
		a := awscloudwatch.NewAlarm(scope, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		if action != nil {
			a.AddAlarmAction(action)
		}
	}
	alarm("Api5xxAlarm", "llmgate API answered 5xx at least 5 times in 5 minutes", api.MetricServerError(fiveMinutes), 5)
	for _, fn := range fns {
		id := *fn.Node().Id()
		alarm(id+"ErrorsAlarm", "llmgate "+id+" failed invocations", fn.MetricErrors(fiveMinutes), 1)
		alarm(id+"ThrottlesAlarm", "llmgate "+id+" throttled invocations", fn.MetricThrottles(fiveMinutes), 1)
	}
	for _, m := range []string{"ReadThrottleEvents", "WriteThrottleEvents"} {
		alarm("Table"+m+"Alarm", "llmgate state table "+m, awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String("AWS/DynamoDB"),
			MetricName:    jsii.String(m),
			DimensionsMap: &map[string]*string{"TableName": table.TableName()},
			Period:        awscdk.Duration_Minutes(jsii.Number(5)),
			Statistic:     jsii.String("Sum"),
		}), 1)
	}
}
