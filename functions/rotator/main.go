// Command rotator is the Lambda function the EventBridge schedule invokes: one idempotent
// pass of budget resets, key rotation, revoked-key cleanup and stale-reservation settling.
package main

import (
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/lambdaapp"
)

func main() {
	lambdaapp.Main(func(a *app.App, _ *slog.Logger) {
		lambda.Start(handler(a.Rotator))
	})
}
