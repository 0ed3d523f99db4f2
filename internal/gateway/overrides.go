package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/router"
)

// Routing headers, as LiteLLM Proxy sends and reads them.
const (
	HeaderTimeout            = "X-Litellm-Timeout" // request: each attempt's timeout; response: the one used
	HeaderAttemptedRetries   = "X-Litellm-Attempted-Retries"
	HeaderMaxRetries         = "X-Litellm-Max-Retries"
	HeaderAttemptedFallbacks = "X-Litellm-Attempted-Fallbacks"
)

// overrides reads the request's own routing settings. Each fallback must be a model the
// caller may use (through its aliases), as the requested model must.
func (g *Gateway) overrides(r *http.Request, req *openai.Request, caller llmcall.Caller) (router.Overrides, error) {
	o := router.Overrides{
		MockFallbacks: req.MockTestingFallbacks,
		MockRateLimit: req.MockTestingRateLimit,
		MockTimeout:   req.MockTimeout,
	}
	if n := req.NumRetries; n != nil {
		if *n < 0 {
			return o, invalidParam("num_retries", fmt.Sprintf("Invalid 'num_retries': %d is below the minimum value 0.", *n))
		}
		o.NumRetries = n
	}
	timeout, field := req.Timeout, "timeout"
	if h := r.Header.Get(HeaderTimeout); h != "" {
		timeout, field = json.RawMessage(strconv.Quote(h)), "x-litellm-timeout"
	}
	if len(timeout) > 0 && !bytes.Equal(timeout, []byte("null")) {
		d, err := seconds(timeout)
		if err != nil {
			return o, invalidParam(field, fmt.Sprintf("Invalid '%s': %v", field, err))
		}
		o.Timeout = d
	}
	names, err := fallbackNames(req.Fallbacks)
	if err != nil {
		return o, err
	}
	for _, name := range names {
		model := name
		if caller != nil {
			if model, err = caller.ResolveModel(name); err != nil {
				return o, err
			}
		}
		rt, ok := g.router.Resolve(model)
		if !ok {
			return o, invalidParam("fallbacks", fmt.Sprintf("Invalid fallback model name passed in fallbacks=%s.", name))
		}
		o.Fallbacks = append(o.Fallbacks, rt.Model)
	}
	return o, nil
}

// fallbackNames reads "fallbacks": a list of model names, or of objects naming a "model"
// (LiteLLM's form with per-fallback parameters, of which only the model is used).
func fallbackNames(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalidParam("fallbacks", "Invalid 'fallbacks': expected a list of model names")
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		var name string
		if json.Unmarshal(it, &name) != nil {
			var obj struct {
				Model string `json:"model"`
			}
			if json.Unmarshal(it, &obj) != nil || obj.Model == "" {
				return nil, invalidParam("fallbacks", `Invalid 'fallbacks': each must be a model name or an object with a "model"`)
			}
			name = obj.Model
		}
		names = append(names, name)
	}
	return names, nil
}

// seconds reads a timeout in seconds: a positive number, or a string holding one.
func seconds(raw json.RawMessage) (time.Duration, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > maxTimeoutSeconds {
		return 0, fmt.Errorf("expected a number of seconds above 0 and at most %d, got %s", maxTimeoutSeconds, raw)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// maxTimeoutSeconds bounds a requested timeout (a day); the router's own deadline still
// bounds the call.
const maxTimeoutSeconds = 86400

func invalidParam(param, msg string) *openai.Error {
	return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, msg).WithParam(param)
}

// routingHeaders tell the client how the router served the call, on success and failure.
func routingHeaders(h http.Header, res router.Result) {
	if res.Attempts == 0 {
		return
	}
	h.Set(HeaderAttemptedRetries, strconv.Itoa(res.Retries))
	h.Set(HeaderMaxRetries, strconv.Itoa(res.MaxRetries))
	h.Set(HeaderAttemptedFallbacks, strconv.Itoa(res.Fallbacks))
	if res.Timeout > 0 {
		h.Set(HeaderTimeout, pySeconds(res.Timeout))
	}
}

// pySeconds writes a duration in seconds as Python prints a float: "1.0", "0.001".
func pySeconds(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
