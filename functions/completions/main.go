// Command completions is the Lambda function behind the LLM routes (/v1/chat/completions,
// /v1/embeddings, /v1/models, ...): the gateway handler, streamed through API Gateway's REST
// response streaming, or buffered when LLMGATE_LAMBDA_BUFFERED is set (sam local).
package main

import (
	"log/slog"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/lambdaapp"
	"github.com/llmgate/llmgate/internal/lambdahttp"
)

func main() {
	lambdaapp.Main(func(a *app.App, log *slog.Logger) {
		lambdahttp.Start(lambdahttp.CORS(a.Gateway), log)
	})
}
