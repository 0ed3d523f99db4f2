// Command admin is the Lambda function behind the management and health routes (/key/*,
// /user/*, /team/*, /spend/*, /health/*): the admin handler, buffered through
// aws-lambda-go-api-proxy.
package main

import (
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/lambdaapp"
	"github.com/llmgate/llmgate/internal/lambdahttp"
)

func main() {
	lambdaapp.Main(func(a *app.App, _ *slog.Logger) {
		lambda.Start(httpadapter.New(lambdahttp.CORS(a.Admin)).ProxyWithContext)
	})
}
