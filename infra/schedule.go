package main

import (
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// newSchedule invokes the rotator on the schedule expression with EventBridge Scheduler (the
// successor of scheduled EventBridge rules). Runs are idempotent and the next one picks up
// whatever is due, so a run Scheduler cannot deliver is not retried: it goes to failures.
// (The L1 resource, because the L2 target grants invoke on every version, "<arn>:*".)
func newSchedule(scope awscdk.Stack, expression string, rotator awslambda.Function, failures awssqs.IQueue) {
	role := awsiam.NewRole(scope, jsii.String("RotatorScheduleRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": scope.Account()}},
		}),
		Description: jsii.String("llmgate: EventBridge Scheduler invokes the rotator"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("lambda:InvokeFunction"), Resources: &[]*string{rotator.FunctionArn()},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("sqs:SendMessage"), Resources: &[]*string{failures.QueueArn()},
	}))
	awsscheduler.NewCfnSchedule(scope, jsii.String("RotatorSchedule"), &awsscheduler.CfnScheduleProps{
		Description:        jsii.String("llmgate rotator"),
		ScheduleExpression: jsii.String(expression),
		FlexibleTimeWindow: &awsscheduler.CfnSchedule_FlexibleTimeWindowProperty{Mode: jsii.String("OFF")},
		Target: &awsscheduler.CfnSchedule_TargetProperty{
			Arn:     rotator.FunctionArn(),
			RoleArn: role.RoleArn(),
			RetryPolicy: &awsscheduler.CfnSchedule_RetryPolicyProperty{
				MaximumRetryAttempts:     jsii.Number(0),
				MaximumEventAgeInSeconds: rotatorMaxEventAge(expression).ToSeconds(nil),
			},
			DeadLetterConfig: &awsscheduler.CfnSchedule_DeadLetterConfigProperty{Arn: failures.QueueArn()},
		},
	})
}

// newFailureQueue is where rotator runs that failed (Lambda's on-failure destination) or
// could not be delivered (Scheduler's dead-letter queue) land; an alarm watches it.
func newFailureQueue(scope awscdk.Stack) awssqs.Queue {
	return awssqs.NewQueue(scope, jsii.String("RotatorFailures"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
}

var rateExpr = regexp.MustCompile(`^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$`)

// scheduleInterval is the time between two runs of a rate() expression; ok is false for
// cron() and at() expressions.
func scheduleInterval(expression string) (d time.Duration, ok bool) {
	m := rateExpr.FindStringSubmatch(expression)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0, false
	}
	unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[m[2][0]]
	return time.Duration(n) * unit, true
}

// rotatorMaxEventAge is how long a run may wait (throttled) before it is dropped: one
// interval, since by then the next run is due; 1 minute to 6 hours, Lambda's and
// Scheduler's bounds; 1 hour for cron expressions.
func rotatorMaxEventAge(expression string) awscdk.Duration {
	d, ok := scheduleInterval(expression)
	if !ok {
		d = time.Hour
	}
	d = min(max(d, time.Minute), 6*time.Hour)
	return awscdk.Duration_Seconds(jsii.Number(d.Seconds()))
}
