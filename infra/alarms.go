package main

import (
	"math"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/jsii-runtime-go"
)

var fiveMinutes = awscdk.Duration_Minutes(jsii.Number(5))

// newAlarms alarms on API 5xx answers, function errors and throttles, DynamoDB throttling,
// the account's concurrency, a capped completions function nearing its cap, a rotator that
// stopped running and rotator runs that failed. With an email they notify it through an
// SNS topic.
func newAlarms(scope awscdk.Stack, p Props, api awsapigateway.RestApi, s *Stack) {
	var action awscloudwatch.IAlarmAction
	if p.AlarmEmail != "" {
		action = awscloudwatchactions.NewSnsAction(newAlarmTopic(scope, p.AlarmEmail))
	}
	type spec struct {
		id, description string
		metric          awscloudwatch.IMetric
		threshold       float64
		below           bool // alarm when the metric is under the threshold, or missing
	}
	sum5 := &awscloudwatch.MetricOptions{Period: fiveMinutes, Statistic: jsii.String("Sum")}
	specs := []spec{{"Api5xxAlarm", "llmgate API answered 5xx at least 5 times in 5 minutes", api.MetricServerError(sum5), 5, false}}
	for _, fn := range s.functions() {
		id := *fn.Node().Id()
		specs = append(specs,
			spec{id + "ErrorsAlarm", "llmgate " + id + " failed invocations", fn.MetricErrors(sum5), 1, false},
			spec{id + "ThrottlesAlarm", "llmgate " + id + " throttled invocations", fn.MetricThrottles(sum5), 1, false})
	}
	for _, m := range []string{"ReadThrottleEvents", "WriteThrottleEvents"} {
		specs = append(specs, spec{"Table" + m + "Alarm", "llmgate state table " + m, tableMetric(s, m, "Sum"), 1, false})
	}
	specs = append(specs, spec{"ConcurrencyAlarm",
		"Lambda concurrent executions in this account and region near the quota: streams hold one each for the whole LLM call",
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/Lambda"), MetricName: jsii.String("ConcurrentExecutions"),
			Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum"),
		}), p.ConcurrencyAlarm, false})
	if p.ReservedCompletions > 0 {
		specs = append(specs, spec{"CompletionsCapAlarm", "llmgate completions function at 90% of its reserved concurrency (open streams)",
			concurrency(s.Completions), math.Ceil(0.9 * p.ReservedCompletions), false})
	}
	specs = append(specs,
		spec{"RotatorStoppedAlarm", "llmgate rotator did not run (budget resets, key rotation and reservation settling stop with it)",
			s.Rotator.MetricInvocations(&awscloudwatch.MetricOptions{Period: rotatorWindow(p.Schedule), Statistic: jsii.String("Sum")}), 1, true},
		spec{"RotatorFailuresAlarm", "llmgate rotator runs failed or were not delivered (messages in the RotatorFailures queue)",
			s.failures.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: fiveMinutes, Statistic: jsii.String("Maximum")}), 1, false})

	for _, sp := range specs {
		props := &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(sp.description),
			Metric:             sp.metric,
			Threshold:          jsii.Number(sp.threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}
		if sp.below {
			// No invocations report no data: missing data is the failure.
			props.ComparisonOperator = awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD
			props.TreatMissingData = awscloudwatch.TreatMissingData_BREACHING
		}
		a := awscloudwatch.NewAlarm(scope, jsii.String(sp.id), props)
		if action != nil {
			a.AddAlarmAction(action)
			if sp.below {
				a.AddOkAction(action)
			}
		}
	}
}

// rotatorWindow is the period in which at least one rotator run is expected: two intervals
// of a rate() schedule, at least 5 minutes; a day for cron expressions (CloudWatch's
// longest alarm period).
func rotatorWindow(expression string) awscdk.Duration {
	d, ok := scheduleInterval(expression)
	if !ok {
		d = 24 * time.Hour
	}
	d = min(max(2*d, 5*time.Minute), 24*time.Hour)
	return awscdk.Duration_Seconds(jsii.Number(d.Seconds()))
}

// newAlarmTopic is the topic alarms notify. CloudWatch can publish to an encrypted topic
// only if the key's policy lets it use the key, which the AWS-managed alias/aws/sns key's
// does not ("Enable compatibility between event sources from AWS services and encrypted
// topics", SNS developer guide): the topic gets its own key granting cloudwatch.amazonaws.com
// kms:GenerateDataKey* and kms:Decrypt. EnforceSSL's topic policy holds only a Deny, so it
// also needs an Allow for CloudWatch to publish, limited to this account's alarms.
func newAlarmTopic(scope awscdk.Stack, email string) awssns.Topic {
	key := awskms.NewKey(scope, jsii.String("AlarmsKey"), &awskms.KeyProps{
		Description:       jsii.String("llmgate alarm topic (CloudWatch may use it to publish)"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
	})
	cloudwatch := awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublishToTheEncryptedTopic"),
		Principals: &[]awsiam.IPrincipal{cloudwatch},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), nil)
	topic := awssns.NewTopic(scope, jsii.String("Alarms"), &awssns.TopicProps{
		DisplayName: jsii.String("llmgate alarms"),
		EnforceSSL:  jsii.Bool(true),
		MasterKey:   key,
	})
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{cloudwatch},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{topic.TopicArn()},
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": scope.Account()},
			"ArnLike": map[string]any{"aws:SourceArn": awscdk.Stack_Of(scope).FormatArn(&awscdk.ArnComponents{
				Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"), ResourceName: jsii.String("*"),
				ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
			})},
		},
	}))
	topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(email), nil))
	return topic
}
