// Command rotator is the Lambda function the EventBridge schedule invokes: one idempotent
// pass of budget resets, key rotation, revoked-key cleanup and stale-reservation settling.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/llmgate/llmgate/internal/lambdaapp"
)

func main() {
	log := lambdaapp.Logger()
	a, err := lambdaapp.New(context.Background(), log)
	if err != nil {
		log.Error("init failed", "error", err)
		os.Exit(1)
	}
	lambda.Start(handler(a.Rotator, log))
}
