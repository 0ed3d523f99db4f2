package bedrock

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
	"github.com/llmgate/llmgate/internal/tokens"
)

const (
	// cohereBatch is the most texts Cohere's Bedrock models embed in one call.
	cohereBatch = 96
	// titanParallel bounds concurrent Titan calls (Titan embeds one text per call).
	titanParallel = 4
	// tokenCountHeader is where Bedrock reports an InvokeModel call's input tokens.
	tokenCountHeader = "X-Amzn-Bedrock-Input-Token-Count"
)

// embed answers an embeddings call with InvokeModel: Titan text models take one input per
// call (made titanParallel at a time); Cohere models take batches of texts with input_type
// (default search_document). Usage is what Bedrock reports (Titan's inputTextTokenCount,
// else the token-count header), else estimated from the text (tokens.EstimateText).
func (p *Provider) embed(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	r, err := translate.DecodeEmbeddingRequest(name, c.Body)
	if err != nil {
		return nil, err
	}
	model := modelID(c.Model)
	var call func(context.Context, *bedrockruntime.Client, string, *translate.EmbeddingRequest) ([][]float64, int, error)
	switch {
	case strings.Contains(model, "titan-embed-text"):
		call = titan
	case strings.Contains(model, "cohere.embed"):
		call = cohere
	default:
		return nil, translate.BadRequest(name, "embeddings are supported for amazon.titan-embed-text-* and cohere.embed-* models, not %q", model)
	}
	client, err := p.client(ctx, c.Params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, c.Timeout)
	defer cancel()
	vectors, count, err := call(ctx, client, model, r)
	if err != nil {
		return nil, err
	}
	if count == 0 {
		for _, text := range r.Input {
			count += tokens.EstimateText(text)
		}
	}
	body, u, err := translate.EmbeddingResponse(c.Model, vectors, count, r.EncodingFormat)
	if err != nil {
		return nil, err
	}
	return &provider.Response{Body: body, Usage: u}, nil
}

// invoke calls InvokeModel with a JSON body, decodes the JSON answer into out and returns
// the input token count Bedrock reported in its header (0 if none).
func invoke(ctx context.Context, client *bedrockruntime.Client, model string, in, out any) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, translate.BadRequest(name, "encode request: %v", err)
	}
	resp, err := client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId: aws.String(model), Body: body,
		ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
	})
	if err != nil {
		return 0, apiError(err)
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return 0, translate.HTTPError(name, http.StatusBadGateway, nil, fmt.Sprintf("%s: unreadable answer from %s: %v", name, model, err))
	}
	count := 0
	if raw, ok := awsmiddleware.GetRawResponse(resp.ResultMetadata).(*smithyhttp.Response); ok {
		count, _ = strconv.Atoi(raw.Header.Get(tokenCountHeader))
	}
	return count, nil
}

type titanRequest struct {
	InputText  string `json:"inputText"`
	Dimensions *int   `json:"dimensions,omitempty"` // v2 only
}

type titanResponse struct {
	Embedding           []float64 `json:"embedding"`
	InputTextTokenCount int       `json:"inputTextTokenCount"`
}

func titan(ctx context.Context, client *bedrockruntime.Client, model string, r *translate.EmbeddingRequest) ([][]float64, int, error) {
	vectors := make([][]float64, len(r.Input))
	counts := make([]int, len(r.Input))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		failure  error
	)
	sem := make(chan struct{}, titanParallel)
	for i, text := range r.Input {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var resp titanResponse
			if _, err := invoke(ctx, client, model, titanRequest{InputText: text, Dimensions: r.Dimensions}, &resp); err != nil {
				failOnce.Do(func() { failure = err; cancel() }) // the first failure fails the call
				return
			}
			vectors[i], counts[i] = resp.Embedding, resp.InputTextTokenCount
		}()
	}
	wg.Wait()
	if failure != nil {
		return nil, 0, failure
	}
	count := 0
	for _, n := range counts {
		count += n
	}
	return vectors, count, nil
}

type cohereRequest struct {
	Texts     []string `json:"texts"`
	InputType string   `json:"input_type"`
}

// cohereResponse's embeddings are a list of vectors, or {"float": [...]} when the model
// answers by embedding type (embed v4).
type cohereResponse struct {
	Embeddings json.RawMessage `json:"embeddings"`
}

func (cr *cohereResponse) vectors() ([][]float64, error) {
	var list [][]float64
	if err := json.Unmarshal(cr.Embeddings, &list); err == nil {
		return list, nil
	}
	var byType struct {
		Float [][]float64 `json:"float"`
	}
	if err := json.Unmarshal(cr.Embeddings, &byType); err != nil {
		return nil, err
	}
	return byType.Float, nil
}

func cohere(ctx context.Context, client *bedrockruntime.Client, model string, r *translate.EmbeddingRequest) ([][]float64, int, error) {
	inputType := r.InputType
	if inputType == "" {
		inputType = "search_document"
	}
	var vectors [][]float64
	count := 0
	for start := 0; start < len(r.Input); start += cohereBatch {
		texts := r.Input[start:min(start+cohereBatch, len(r.Input))]
		var resp cohereResponse
		n, err := invoke(ctx, client, model, cohereRequest{Texts: texts, InputType: inputType}, &resp)
		if err != nil {
			return nil, 0, err
		}
		vs, err := resp.vectors()
		if err != nil || len(vs) != len(texts) {
			return nil, 0, translate.HTTPError(name, http.StatusBadGateway, nil,
				fmt.Sprintf("%s: %s answered %d embeddings for %d texts", name, model, len(vs), len(texts)))
		}
		vectors = append(vectors, vs...)
		count += n
	}
	return vectors, count, nil
}
