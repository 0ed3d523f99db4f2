package translate

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"

	"github.com/llmgate/llmgate/internal/openai"
)

// EmbeddingRequest is an OpenAI embeddings request. Input must be text: token-id arrays are
// refused by DecodeEmbeddingRequest, since no translating provider takes them.
type EmbeddingRequest struct {
	Model          string  `json:"model"`
	Input          Strings `json:"input"`
	EncodingFormat string  `json:"encoding_format"` // "float" (default) or "base64"
	Dimensions     *int    `json:"dimensions"`
	User           string  `json:"user"`
	// InputType is LiteLLM's pass-through for Cohere-style models ("search_query", ...).
	InputType string `json:"input_type"`
}

// DecodeEmbeddingRequest decodes and checks an embeddings body. Its errors are 400 *provider.Error.
func DecodeEmbeddingRequest(name string, body []byte) (*EmbeddingRequest, error) {
	var r EmbeddingRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, BadRequest(name, "input must be a string or an array of strings: %v", err)
	}
	if len(r.Input) == 0 {
		return nil, BadRequest(name, "input: at least one string is required")
	}
	switch r.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, BadRequest(name, "encoding_format: want float or base64, got %q", r.EncodingFormat)
	}
	return &r, nil
}

// EmbeddingList is the OpenAI embeddings answer.
type EmbeddingList struct {
	Object string         `json:"object"`
	Data   []Embedding    `json:"data"`
	Model  string         `json:"model"`
	Usage  EmbeddingUsage `json:"usage"`
}

// Embedding is one vector: a []float64, or a base64 string of little-endian float32s when the
// client asked for encoding_format base64.
type Embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// EmbeddingUsage is the usage of an embeddings call.
type EmbeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// EmbeddingResponse builds the OpenAI answer for vectors (in input order) and its usage.
func EmbeddingResponse(model string, vectors [][]float64, promptTokens int, encodingFormat string) ([]byte, openai.Usage, error) {
	list := EmbeddingList{
		Object: "list",
		Data:   make([]Embedding, len(vectors)),
		Model:  model,
		Usage:  EmbeddingUsage{PromptTokens: promptTokens, TotalTokens: promptTokens},
	}
	for i, v := range vectors {
		var e any = v
		if encodingFormat == "base64" {
			e = base64Floats(v)
		}
		list.Data[i] = Embedding{Object: "embedding", Index: i, Embedding: e}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, openai.Usage{}, err
	}
	return b, openai.Usage{PromptTokens: promptTokens, TotalTokens: promptTokens}, nil
}

func base64Floats(v []float64) string {
	buf := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(f)))
	}
	return base64.StdEncoding.EncodeToString(buf)
}
