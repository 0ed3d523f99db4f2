package gemini

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
	"github.com/llmgate/llmgate/internal/tokens"
)

type batchEmbedRequest struct {
	Requests []embedRequest `json:"requests"`
}

type embedRequest struct {
	Model                string  `json:"model"` // "models/{model}"
	Content              content `json:"content"`
	OutputDimensionality *int    `json:"outputDimensionality,omitempty"`
}

type batchEmbedResponse struct {
	Embeddings []struct {
		Values []float64 `json:"values"`
	} `json:"embeddings"`
	UsageMetadata *struct {
		PromptTokenCount int `json:"promptTokenCount"`
	} `json:"usageMetadata"`
}

// embed answers an embeddings call with one batchEmbedContents request. Usage is Gemini's
// promptTokenCount when it reports one, else estimated from the input text (one token per
// four bytes, tokens.EstimateText).
func (p *Provider) embed(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	r, err := translate.DecodeEmbeddingRequest(name, c.Body)
	if err != nil {
		return nil, err
	}
	model := "models/" + strings.TrimPrefix(c.Model, "models/")
	req := batchEmbedRequest{Requests: make([]embedRequest, len(r.Input))}
	for i, text := range r.Input {
		req.Requests[i] = embedRequest{Model: model, Content: content{Parts: []part{{Text: text}}}, OutputDimensionality: r.Dimensions}
	}
	var resp batchEmbedResponse
	if err := p.call(ctx, c, "batchEmbedContents", req, &resp); err != nil {
		return nil, err
	}
	if len(resp.Embeddings) != len(r.Input) {
		return nil, translate.HTTPError(name, http.StatusBadGateway, nil,
			fmt.Sprintf("%s: got %d embeddings for %d inputs", name, len(resp.Embeddings), len(r.Input)))
	}
	vectors := make([][]float64, len(resp.Embeddings))
	for i, e := range resp.Embeddings {
		vectors[i] = e.Values
	}
	count := 0
	if resp.UsageMetadata != nil {
		count = resp.UsageMetadata.PromptTokenCount
	}
	if count == 0 {
		for _, text := range r.Input {
			count += tokens.EstimateText(text)
		}
	}
	body, usage, err := translate.EmbeddingResponse(c.Model, vectors, count, r.EncodingFormat)
	if err != nil {
		return nil, err
	}
	return &provider.Response{Body: body, Usage: usage}, nil
}
