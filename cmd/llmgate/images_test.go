package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// imagesConfig: image models priced by the cost map at the fake upstream %[1]s (dall-e-3 per
// size and quality, gpt-image-1 per quality and size, gpt-image-2 token-priced only), one
// priced by model_info, a mock, and a provider that does not generate images.
const imagesConfig = `
model_list:
  - model_name: dall-e-3
    litellm_params: {model: openai/dall-e-3, api_base: %[1]s, api_key: ` + upstreamKey + `}
  - model_name: gpt-image-1
    litellm_params: {model: openai/gpt-image-1, api_base: %[1]s, api_key: ` + upstreamKey + `}
  - model_name: gpt-image-2
    litellm_params: {model: openai/gpt-image-2, api_base: %[1]s, api_key: ` + upstreamKey + `}
  - model_name: house-images
    litellm_params: {model: openai/house-images, api_base: %[1]s, api_key: ` + upstreamKey + `}
    model_info: {output_cost_per_image: 0.05}
  - model_name: mock-images
    litellm_params: {model: mock/images}
  - model_name: claude
    litellm_params: {model: anthropic/claude-3-5-sonnet-20241022, api_key: sk-ant-unused}
general_settings:
  master_key: ` + masterKey + `
`

// Per-image prices of the cost map snapshot.
const (
	dallE3Standard = 3.81469e-08 * 1024 * 1024 // standard/1024-x-1024/dall-e-3
	dallE3HD       = 7.629e-08 * 1024 * 1024   // hd/1024-x-1024/dall-e-3
	gptImageMedium = 0.042                     // medium/1024-x-1024/gpt-image-1
)

// TestImages ports test_openai_endpoints.py's image generation test (a key calls
// /images/generations and /v1/images/generations) and holds image calls to what other
// routes are held to: model access, the reservation (n × the highest price an image can
// be charged), the key's spend and the spend log.
func TestImages(t *testing.T) {
	t.Parallel()
	up := fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(up.Close)
	s := start(t, fmt.Sprintf(imagesConfig, up.BaseURL))
	key := s.admin(t, "POST", "/key/generate", map[string]any{"max_budget": 10,
		"models": []string{"dall-e-3", "gpt-image-1", "gpt-image-2", "house-images", "mock-images", "claude"}})["key"].(string)
	generate := func(key, path string, body map[string]any) (*http.Response, map[string]any, string) {
		t.Helper()
		resp, b := s.request(t, key, "POST", path, body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp, out, string(b)
	}
	cost := func(resp *http.Response) float64 {
		c, err := strconv.ParseFloat(resp.Header.Get("x-litellm-response-cost"), 64)
		if err != nil {
			t.Fatalf("x-litellm-response-cost %q", resp.Header.Get("x-litellm-response-cost"))
		}
		return c
	}
	var spent float64

	t.Run("openai SDK, b64_json, size and quality priced", func(t *testing.T) {
		var raw *http.Response
		c := client(s, key)
		res, err := c.Images.Generate(context.Background(), openai.ImageGenerateParams{
			Model: "dall-e-3", Prompt: "a cute baby sea otter", N: openai.Int(2),
			Size: openai.ImageGenerateParamsSize1024x1024, Quality: openai.ImageGenerateParamsQualityHD,
			ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON,
		}, option.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 {
			t.Fatalf("%d images, want 2", len(res.Data))
		}
		if _, err := png.Decode(base64.NewDecoder(base64.StdEncoding, strings.NewReader(res.Data[0].B64JSON))); err != nil {
			t.Errorf("b64_json is not a PNG: %v", err)
		}
		if got := up.Last(); got.URL != "/v1/images/generations" || !strings.Contains(string(got.Body), `"model":"dall-e-3"`) {
			t.Errorf("upstream got %s %s, want /v1/images/generations for dall-e-3", got.URL, got.Body)
		}
		if c := cost(raw); !near(c, 2*dallE3HD) {
			t.Errorf("cost %v, want two hd 1024x1024 images: %v", c, 2*dallE3HD)
		}
		spent += cost(raw)
	})

	t.Run("both paths, urls, DALL-E defaults", func(t *testing.T) {
		for _, path := range []string{"/images/generations", "/v1/images/generations"} {
			resp, out, body := generate(key, path, map[string]any{"model": "dall-e-3", "prompt": "A cute baby sea otter"})
			data, _ := out["data"].([]any)
			if resp.StatusCode != http.StatusOK || len(data) != 1 || !strings.HasPrefix(data[0].(map[string]any)["url"].(string), "https://") {
				t.Fatalf("%s: %d %s, want one image url", path, resp.StatusCode, body)
			}
			if c := cost(resp); !near(c, dallE3Standard) {
				t.Errorf("%s: cost %v, want one standard 1024x1024 image (OpenAI's defaults): %v", path, c, dallE3Standard)
			}
			if resp.Header.Get("X-Litellm-Call-Id") == "" {
				t.Errorf("%s: no x-litellm-call-id", path)
			}
			spent += cost(resp)
		}
	})

	t.Run("a GPT image model is charged at the quality it reports", func(t *testing.T) {
		resp, _, body := generate(key, "/v1/images/generations", map[string]any{"model": "gpt-image-1", "prompt": "otter"})
		if resp.StatusCode != http.StatusOK || !near(cost(resp), gptImageMedium) {
			t.Fatalf("%d cost %s %s, want the medium 1024x1024 image the upstream rendered: %v", resp.StatusCode, resp.Header.Get("x-litellm-response-cost"), body, gptImageMedium)
		}
		spent += cost(resp)
		logs := spendLogs(t, s, resp.Header.Get("X-Litellm-Call-Id"))
		if logs["call_type"] != "aimage_generation" || !near(logs["spend"].(float64), gptImageMedium) || logs["total_tokens"].(float64) <= 0 {
			t.Errorf("spend log %v, want call_type aimage_generation, the spend and the reported tokens", logs)
		}
	})

	t.Run("model_info prices, mock, the Azure SDK's route", func(t *testing.T) {
		resp, _, body := generate(key, "/v1/images/generations", map[string]any{"model": "house-images", "prompt": "otter", "n": 3, "size": "512x512"})
		if resp.StatusCode != http.StatusOK || !near(cost(resp), 0.15) {
			t.Errorf("house-images: %d cost %v %s, want 3 × 0.05", resp.StatusCode, cost(resp), body)
		}
		spent += cost(resp)
		resp, out, body := generate(key, "/v1/images/generations", map[string]any{"model": "mock-images", "prompt": "otter", "response_format": "b64_json"})
		if data, _ := out["data"].([]any); resp.StatusCode != http.StatusOK || len(data) != 1 || cost(resp) != 0 {
			t.Errorf("mock: %d %s, want one free image", resp.StatusCode, body)
		}
		req, _ := http.NewRequest("POST", s.URL+"/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01", strings.NewReader(`{"prompt":"otter"}`))
		req.Header.Set("api-key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !near(cost(resp), dallE3Standard) {
			t.Errorf("azure route: %d cost %s", resp.StatusCode, resp.Header.Get("x-litellm-response-cost"))
		}
		spent += cost(resp)
	})

	t.Run("key spend is the sum of the calls", func(t *testing.T) {
		info := s.admin(t, "GET", "/key/info?key="+key, nil)["info"].(map[string]any)
		if !near(info["spend"].(float64), spent) {
			t.Errorf("key spend %v, want %v", info["spend"], spent)
		}
	})

	t.Run("bad requests are 400s naming the field", func(t *testing.T) {
		for _, c := range []struct {
			body  map[string]any
			param string
		}{
			{map[string]any{"model": "dall-e-3"}, "prompt"},
			{map[string]any{"model": "dall-e-3", "prompt": ""}, "prompt"},
			{map[string]any{"model": "dall-e-3", "prompt": []string{"x"}}, "prompt"},
			{map[string]any{"model": "dall-e-3", "prompt": "x", "n": 11}, "n"},
			{map[string]any{"model": "dall-e-3", "prompt": "x", "n": 0}, "n"},
			{map[string]any{"model": "dall-e-3", "prompt": "x", "size": "huge"}, "size"},
			{map[string]any{"model": "dall-e-3", "prompt": "x", "size": "100000x100000"}, "size"},
			{map[string]any{"model": "dall-e-3", "prompt": "x", "quality": "ultra"}, "quality"},
			{map[string]any{"model": "dall-e-3", "prompt": "x", "response_format": "jpeg"}, "response_format"},
			{map[string]any{"model": "dall-e-3", "prompt": "x", "stream": true}, "stream"},
		} {
			before := up.Requests()
			resp, out, body := generate(key, "/v1/images/generations", c.body)
			e, _ := out["error"].(map[string]any)
			if resp.StatusCode != http.StatusBadRequest || e == nil || e["param"] != c.param {
				t.Errorf("%v: %d %s, want a 400 on %s", c.body, resp.StatusCode, body, c.param)
			}
			if up.Requests() != before {
				t.Errorf("%v reached the upstream", c.body)
			}
		}
	})

	t.Run("case-duplicate, huge and non-finite fields are 400s before the upstream", func(t *testing.T) {
		for _, raw := range []string{
			`{"model": "dall-e-3", "prompt": "x", "n": 1, "N": 10}`,
			`{"model": "dall-e-3", "prompt": "x", "size": "1024x1024", "Size": "1792x1024"}`,
			`{"model": "dall-e-3", "prompt": "x", "n": 1e308}`,
			`{"model": "dall-e-3", "prompt": "x", "n": -1}`,
			`{"model": "dall-e-3", "prompt": "` + strings.Repeat("x", 10<<20) + `"}`,
		} {
			before := up.Requests()
			resp, b := s.request(t, key, "POST", "/v1/images/generations", json.RawMessage(raw))
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%.80s: %d %s, want a 400 or 413", raw, resp.StatusCode, b)
			}
			if up.Requests() != before {
				t.Errorf("%.80s reached the upstream", raw)
			}
		}
	})

	t.Run("access, unsupported and unpriced deployments", func(t *testing.T) {
		other := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{"gpt-image-1"}})["key"].(string)
		if resp, _, body := generate(other, "/v1/images/generations", map[string]any{"model": "dall-e-3", "prompt": "x"}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "key not allowed to access model") {
			t.Errorf("a model the key may not use: %d %s, want 401", resp.StatusCode, body)
		}
		if resp, _, body := generate(masterKey, "/v1/images/generations", map[string]any{"model": "claude", "prompt": "x"}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not supported") {
			t.Errorf("anthropic deployment: %d %s, want a 400", resp.StatusCode, body)
		}
		for _, model := range []string{"claude", "gpt-image-2"} {
			if resp, _, body := generate(key, "/v1/images/generations", map[string]any{"model": model, "prompt": "x"}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "output_cost_per_image") {
				t.Errorf("%s under a budget: %d %s, want the unpriced refusal naming output_cost_per_image", model, resp.StatusCode, body)
			}
		}
	})

	t.Run("the budget refuses what it cannot pay before the upstream", func(t *testing.T) {
		small := s.admin(t, "POST", "/key/generate", map[string]any{"max_budget": 0.1, "models": []string{"dall-e-3", "gpt-image-1"}})["key"].(string)
		hd := map[string]any{"model": "dall-e-3", "prompt": "x", "quality": "hd", "size": "1024x1024"}
		before := up.Requests()
		for _, body := range []map[string]any{
			{"model": "dall-e-3", "prompt": "x", "quality": "hd", "size": "1024x1024", "n": 2}, // 0.16
			{"model": "gpt-image-1", "prompt": "x"},                                            // left to the model: reserved at high 1536x1024, 0.25
		} {
			if resp, _, b := generate(small, "/v1/images/generations", body); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "budget") {
				t.Errorf("%v on a 0.1 budget: %d %s, want the budget refusal", body, resp.StatusCode, b)
			}
		}
		if up.Requests() != before {
			t.Errorf("a refused call reached the upstream")
		}
		if resp, _, b := generate(small, "/v1/images/generations", hd); resp.StatusCode != http.StatusOK {
			t.Fatalf("one hd image (0.08) on a 0.1 budget: %d %s", resp.StatusCode, b)
		}
		if resp, _, b := generate(small, "/v1/images/generations", hd); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "budget") {
			t.Errorf("a second hd image with 0.02 left: %d %s, want the budget refusal", resp.StatusCode, b)
		}
	})
}

// spendLogs returns the one spend log of the call id.
func spendLogs(t *testing.T, s *server, callID string) map[string]any {
	t.Helper()
	resp, b := s.request(t, masterKey, "GET", "/spend/logs?request_id="+callID, nil)
	var logs []map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &logs) != nil || len(logs) != 1 {
		t.Fatalf("/spend/logs?request_id=%s: %d %s, want one log", callID, resp.StatusCode, b)
	}
	return logs[0]
}

func near(a, b float64) bool { return a-b <= 1e-12+1e-9*b && b-a <= 1e-12+1e-9*b }
