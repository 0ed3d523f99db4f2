// Command completions is the Lambda function behind the LLM routes (/v1/chat/completions,
// /v1/embeddings, /v1/models, ...): the gateway handler, streamed through API Gateway's REST
// response streaming, or buffered when LLMGATE_LAMBDA_BUFFERED is set (sam local).
package main

import (
	"context"
	"os"

	"github.com/llmgate/llmgate/internal/lambdaapp"
	"github.com/llmgate/llmgate/internal/lambdahttp"
)

func main() {
	log := lambdaapp.Logger()
	a, err := lambdaapp.New(context.Background(), log)
	if err != nil {
		log.Error("init failed", "error", err)
		os.Exit(1)
	}
	lambdahttp.Start(a.Gateway, log)
}
