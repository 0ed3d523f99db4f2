package pricing

import (
	"cmp"
	"strconv"
	"strings"

	"github.com/llmgate/llmgate/internal/config"
)

// MaxImageSide bounds the width and height of a requested image size: above what any image
// model renders. A per-pixel price of a call that leaves the size to the upstream is
// reserved at a MaxImageSide × MaxImageSide image.
const MaxImageSide = 4096

// ImageQualities are the quality values of OpenAI's image API (DALL·E: standard, hd; GPT
// image models: low, medium, high; auto lets the model pick).
var ImageQualities = []string{"standard", "hd", "low", "medium", "high", "auto"}

// ParseImageSize reads an image size as OpenAI writes it ("1024x1792": width x height),
// each side 1..MaxImageSide.
func ParseImageSize(size string) (width, height int, ok bool) {
	ws, hs, found := strings.Cut(size, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !found || err1 != nil || err2 != nil || w < 1 || h < 1 || w > MaxImageSide || h > MaxImageSide {
		return 0, 0, false
	}
	return w, h, true
}

// ImagePrices is what a deployment charges per generated image.
type ImagePrices struct {
	// Sized are the cost map's prices per size and quality, LiteLLM's
	// "[<provider>/][<quality>/]<W>-x-<H>/<model>" entries.
	Sized []SizedImage
	// PerPixel (per pixel of each image) or else PerImage is the price of an image no Sized
	// entry prices: the model's own entry, or model_info's input_cost_per_pixel and
	// output_cost_per_image. Flat says one of them is set (0 is a price).
	PerPixel, PerImage float64
	Flat               bool
}

// SizedImage is the price of one image of a size ("1024x1792") and quality ("" for any).
type SizedImage struct {
	Size, Quality string
	Cost          float64
}

// ImageCall is what an image generation request asks for: N images of Size and Quality
// ("" unset; "auto" lets the model pick).
type ImageCall struct {
	N             int
	Size, Quality string
}

// ImageBound is the reservation of an image generation call: N × the highest price per
// image it can be charged on any of targets (ImagesCost never charges more). Targets with
// no image price are Unpriced.
func ImageBound(c ImageCall, targets []Target) Bound {
	var bd Bound
	per := 0.0
	for _, t := range targets {
		cost, ok := t.Price.Images.cost(c.Size, c.Quality)
		if !ok {
			bd.Unpriced = append(bd.Unpriced, t.Model)
		}
		per = max(per, cost)
	}
	bd.Cost = float64(max(c.N, 1)) * per
	return bd
}

// ImagesCost is what a call c costs on p when the upstream returned images images and
// reported the size and quality it rendered ("" when it did not): the reported size and
// quality stand for what c left unset or to the model, and an image never costs more than
// c's own size and quality can (what the call was reserved at). At most c.N images are
// charged.
func (p ImagePrices) ImagesCost(c ImageCall, images int, size, quality string) float64 {
	per, ok := p.cost(c.Size, c.Quality)
	if !ok {
		return 0
	}
	if size == "" || (c.Size != "" && c.Size != "auto") {
		size = c.Size
	}
	if quality == "" || (c.Quality != "" && c.Quality != "auto") {
		quality = c.Quality
	}
	if rendered, ok := p.cost(size, quality); ok {
		per = min(per, rendered)
	}
	return float64(min(images, max(c.N, 1))) * per
}

// cost is the highest price of one image of size and quality ("" or "auto": any the model
// can pick); ok is false when p has no price for it.
//
// Unset values take OpenAI's defaults for DALL·E models (1024x1024, standard), which are
// the models whose map entries name no GPT-image quality (low, medium, high); a GPT image
// model's defaults are auto, priced at the highest size and quality.
func (p ImagePrices) cost(size, quality string) (float64, bool) {
	if p.dallE() {
		size, quality = cmp.Or(size, "1024x1024"), cmp.Or(quality, "standard")
	}
	anySize, anyQuality := size == "" || size == "auto", quality == "" || quality == "auto"
	best, found := 0.0, false
	for _, s := range p.Sized {
		if (anySize || s.Size == size) && (anyQuality || s.Quality == "" || s.Quality == quality) {
			best, found = max(best, s.Cost), true
		}
	}
	switch {
	case found:
		return best, true
	case !p.Flat:
		return 0, false
	case p.PerPixel > 0:
		w, h, ok := ParseImageSize(size)
		if !ok {
			w, h = MaxImageSide, MaxImageSide
		}
		return p.PerPixel * float64(w) * float64(h), true
	}
	return p.PerImage, true
}

// dallE reports whether p's sized prices are a DALL·E model's: some, none with a GPT-image
// quality.
func (p ImagePrices) dallE() bool {
	for _, s := range p.Sized {
		if s.Quality == "low" || s.Quality == "medium" || s.Quality == "high" {
			return false
		}
	}
	return len(p.Sized) > 0
}

// imagePrices are the image prices of a deployment whose cost map entry is e (found) under
// the name model: model_info's own prices if it sets any, else the map's sized entries for
// the model and its entry's per-pixel or per-image price.
func (p *Pricer) imagePrices(mi config.ModelInfo, e Entry, found bool, model string) ImagePrices {
	if mi.InputCostPerPixel != nil || mi.OutputCostPerImage != nil {
		ip := ImagePrices{Flat: true}
		if mi.InputCostPerPixel != nil {
			ip.PerPixel = *mi.InputCostPerPixel
		}
		if mi.OutputCostPerImage != nil {
			ip.PerImage = *mi.OutputCostPerImage
		}
		return ip
	}
	ip, _ := find(p.costs.images, model)
	out := ImagePrices{Sized: ip}
	if !found {
		return out
	}
	out.Flat = e.hasPixel || e.hasOutputImage || e.hasInputImage
	out.PerPixel = e.InputCostPerPixel
	out.PerImage = e.OutputCostPerImage
	if !e.hasOutputImage {
		out.PerImage = e.InputCostPerImage
	}
	return out
}

// addSizedImage indexes a "[<provider>/][<quality>/]<W>-x-<H>/<model>" entry's price per image:
// its per-image price (OpenAI's published one, where the map has both), else
// input_cost_per_pixel × W × H.
func (m *CostMap) addSizedImage(key string, e Entry) {
	parts := strings.Split(key, "/")
	at := -1
	for i, s := range parts {
		if _, _, ok := ParseImageSize(strings.ReplaceAll(s, "-x-", "x")); ok && strings.Contains(s, "-x-") {
			at = i
			break
		}
	}
	if at < 0 || at > 2 || at == len(parts)-1 {
		return
	}
	size := strings.ReplaceAll(parts[at], "-x-", "x")
	prefix, quality := "", ""
	switch at {
	case 1:
		if isQuality(parts[0]) {
			quality = parts[0]
		} else {
			prefix = parts[0] + "/"
		}
	case 2:
		if !isQuality(parts[1]) {
			return
		}
		prefix, quality = parts[0]+"/", parts[1]
	}
	w, h, _ := ParseImageSize(size)
	var cost float64
	switch {
	case e.hasInputImage:
		cost = e.InputCostPerImage
	case e.hasOutputImage:
		cost = e.OutputCostPerImage
	case e.hasPixel:
		cost = e.InputCostPerPixel * float64(w) * float64(h)
	default:
		return
	}
	name := prefix + strings.Join(parts[at+1:], "/")
	m.images[name] = append(m.images[name], SizedImage{Size: size, Quality: quality, Cost: cost})
}

func isQuality(s string) bool {
	for _, q := range ImageQualities {
		if s == q && s != "auto" {
			return true
		}
	}
	return false
}
