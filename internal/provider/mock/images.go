package mock

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// generateImages answers an image generation with n (default 1) one-pixel PNGs whose color
// derives from the SHA-256 of the prompt: base64 in b64_json, or a data: URL in url.
func generateImages(c *provider.Call) (*provider.Response, error) {
	var req struct {
		Prompt         string `json:"prompt"`
		N              int    `json:"n"`
		ResponseFormat string `json:"response_format"`
	}
	if err := json.Unmarshal(c.Body, &req); err != nil {
		return nil, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: "mock: " + err.Error(), Provider: Prefix}
	}
	if req.N > MaxImages {
		return nil, tooLarge("n", fmt.Sprintf("%d images are over the mock's limit of %d", req.N, MaxImages))
	}
	sum := sha256.Sum256([]byte(req.Prompt))
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.NRGBA{R: sum[0], G: sum[1], B: sum[2], A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("mock: encode image: %w", err)
	}
	b64 := base64.StdEncoding.EncodeToString(buf.Bytes())
	type item struct {
		B64JSON string `json:"b64_json,omitempty"`
		URL     string `json:"url,omitempty"`
	}
	data := make([]item, max(req.N, 1))
	for i := range data {
		if req.ResponseFormat == "b64_json" {
			data[i].B64JSON = b64
		} else {
			data[i].URL = "data:image/png;base64," + b64
		}
	}
	body, err := json.Marshal(struct {
		Created int64  `json:"created"`
		Data    []item `json:"data"`
	}{time.Now().Unix(), data})
	if err != nil {
		return nil, fmt.Errorf("mock: encode images: %w", err)
	}
	return &provider.Response{Body: body}, nil
}
