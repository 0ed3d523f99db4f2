package pricing

import (
	"testing"

	"github.com/llmgate/llmgate/internal/config"
)

func TestImagePrices_FromTheCostMapAndModelInfo(t *testing.T) {
	p := NewWithMap(Embedded(), nil)
	dep := func(model string, mi config.ModelInfo) ImagePrices {
		return p.Price(config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: model}, ModelInfo: mi}, model).Images
	}
	tests := []struct {
		name, model   string
		mi            config.ModelInfo
		size, quality string
		want          float64
		wantOK        bool
	}{
		{"dall-e-3 defaults: standard 1024x1024", "openai/dall-e-3", config.ModelInfo{}, "", "", 3.81469e-08 * 1024 * 1024, true},
		{"dall-e-3 hd 1024x1792", "openai/dall-e-3", config.ModelInfo{}, "1024x1792", "hd", 6.539e-08 * 1024 * 1792, true},
		{"dall-e-3 any quality at 1024x1024 is at most hd", "dall-e-3", config.ModelInfo{}, "1024x1024", "auto", 7.629e-08 * 1024 * 1024, true},
		{"dall-e-2 256x256 (no quality in the map)", "openai/dall-e-2", config.ModelInfo{}, "256x256", "", 2.4414e-07 * 256 * 256, true},
		{"azure's own entries", "azure/dall-e-3", config.ModelInfo{}, "1024x1024", "hd", 7.629e-08 * 1024 * 1024, true},
		{"gpt-image-1 left to the model: its highest size and quality", "openai/gpt-image-1", config.ModelInfo{}, "", "", 0.25, true},
		{"gpt-image-1 high 1024x1024", "openai/gpt-image-1", config.ModelInfo{}, "1024x1024", "high", 0.167, true},
		{"gpt-image-1 low at any size", "openai/gpt-image-1", config.ModelInfo{}, "auto", "low", 0.016, true},
		{"a token-priced image model without per-image prices is unpriced", "openai/gpt-image-2", config.ModelInfo{}, "1024x1024", "high", 0, false},
		{"a chat model is unpriced for images", "openai/gpt-4o", config.ModelInfo{}, "", "", 0, false},
		{"model_info per image replaces the map", "openai/dall-e-3", config.ModelInfo{OutputCostPerImage: ptr(0.5)}, "1024x1792", "hd", 0.5, true},
		{"model_info per pixel", "openai/my-images", config.ModelInfo{InputCostPerPixel: ptr(1e-8)}, "512x512", "", 1e-8 * 512 * 512, true},
		{"per pixel left to the model: the largest size", "openai/my-images", config.ModelInfo{InputCostPerPixel: ptr(1e-8)}, "auto", "", 1e-8 * MaxImageSide * MaxImageSide, true},
		{"model_info 0 is a price", "openai/my-images", config.ModelInfo{OutputCostPerImage: ptr(0.0)}, "", "", 0, true},
		{"mock images are free", "mock/images", config.ModelInfo{}, "1024x1024", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := dep(tt.model, tt.mi).cost(tt.size, tt.quality)
			if ok != tt.wantOK || !near(got, tt.want) {
				t.Errorf("cost(%q, %q) = %v, %v; want %v, %v", tt.size, tt.quality, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestImagesCost_NeverAboveTheBound: whatever the upstream reports it rendered and however
// many images it returns, a call is charged at most its reservation, and what it reports
// narrows what the request left open.
func TestImagesCost_NeverAboveTheBound(t *testing.T) {
	p := NewWithMap(Embedded(), nil)
	var targets []Target
	for _, m := range []string{"openai/dall-e-3", "openai/dall-e-2", "openai/gpt-image-1", "azure/dall-e-3", "openai/gpt-image-1.5"} {
		targets = append(targets, Target{Model: m, Price: p.Price(config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: m}}, m)})
	}
	sizes := []string{"", "auto", "256x256", "1024x1024", "1024x1536", "1536x1024", "1792x1024", "1024x1792"}
	qualities := append([]string{""}, ImageQualities...)
	for _, tg := range targets {
		for _, size := range sizes {
			for _, q := range qualities {
				c := ImageCall{N: 2, Size: size, Quality: q}
				bound := ImageBound(c, []Target{tg}).Cost
				for _, rs := range sizes {
					for _, rq := range qualities {
						for _, images := range []int{0, 1, 2, 5} {
							if got := tg.Price.Images.ImagesCost(c, images, rs, rq); got > bound+1e-12 {
								t.Fatalf("%s %+v: %d images reported %q %q cost %v, above the bound %v", tg.Model, c, images, rs, rq, got, bound)
							}
						}
					}
				}
			}
		}
	}
	gptImage := targets[2].Price.Images
	if got := gptImage.ImagesCost(ImageCall{N: 1}, 1, "1024x1024", "low"); !near(got, 0.011) {
		t.Errorf("gpt-image-1 left to the model, rendered low 1024x1024: %v, want 0.011", got)
	}
	if got := gptImage.ImagesCost(ImageCall{N: 1, Quality: "high"}, 1, "1024x1024", "low"); !near(got, 0.167) {
		t.Errorf("asked high, reported low: %v, want the asked 0.167", got)
	}
	if b := ImageBound(ImageCall{N: 3, Size: "1024x1024", Quality: "hd"}, append(targets[:1:1], Target{Model: "openai/gpt-image-2", Price: p.Price(config.Deployment{}, "openai/gpt-image-2")})); !near(b.Cost, 3*7.629e-08*1024*1024) || len(b.Unpriced) != 1 || b.Unpriced[0] != "openai/gpt-image-2" {
		t.Errorf("bound %+v, want 3 hd images of dall-e-3 and gpt-image-2 unpriced", b)
	}
}
