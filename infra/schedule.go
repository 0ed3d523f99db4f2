package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// newSchedule invokes the rotator on the schedule expression. A missed or failed run is not
// retried: runs are idempotent and the next one picks up whatever is due.
func newSchedule(scope awscdk.Stack, expression string, rotator awslambda.Function) {
	awsevents.NewRule(scope, jsii.String("RotatorSchedule"), &awsevents.RuleProps{
		Description: jsii.String("llmgate rotator"),
		Schedule:    awsevents.Schedule_Expression(jsii.String(expression)),
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(rotator, &awseventstargets.LambdaFunctionProps{
			RetryAttempts: jsii.Number(0),
			MaxEventAge:   awscdk.Duration_Minutes(jsii.Number(5)),
		})},
	})
}
