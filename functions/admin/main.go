// Command admin is the Lambda function behind the management and health routes (/key/*,
// /user/*, /team/*, /spend/*, /health/*): the admin handler, buffered through
// aws-lambda-go-api-proxy.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/llmgate/llmgate/internal/lambdaapp"
)

func main() {
	log := lambdaapp.Logger()
	a, err := lambdaapp.New(context.Background(), log)
	if err != nil {
		log.Error("init failed", "error", err)
		os.Exit(1)
	}
	lambda.Start(httpadapter.New(a.Admin).ProxyWithContext)
}
