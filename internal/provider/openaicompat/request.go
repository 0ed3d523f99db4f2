package openaicompat

import (
	"errors"

	"github.com/tidwall/gjson"
)

// streamMode says how rewriteBody sets "stream" and "stream_options".
type streamMode int

const (
	noStream        streamMode = iota // "stream" removed, "stream_options" removed
	streamPlain                       // "stream": true, "stream_options" removed
	streamWithUsage                   // "stream": true, "stream_options.include_usage": true
)

// dropped are request fields that belong to LiteLLM Proxy, not to the upstream API. OpenAI
// answers 400 "Unrecognized request argument" to unknown fields and Groq, Mistral and
// Cerebras reject them too, so they are removed. "metadata" is among them: OpenAI accepts
// only string values there (and only with store), while LiteLLM clients send tags and
// other objects in it for the proxy's own use; LiteLLM does not forward it either.
var dropped = map[string]bool{
	"metadata":                      true,
	"litellm_metadata":              true,
	"mock_response":                 true,
	"mock_testing_fallbacks":        true,
	"mock_testing_rate_limit_error": true,
	"mock_timeout":                  true,
	"timeout":                       true,
	"fallbacks":                     true,
	"context_window_fallbacks":      true,
	"num_retries":                   true,
	"tags":                          true,
	"guardrails":                    true,
}

var (
	errInvalidJSON = errors.New("request body is not valid JSON")
	errNotObject   = errors.New("request body is not a JSON object")
)

// rewriteBody copies the request body member by member into a new buffer: "model" first,
// set to model; LiteLLM-only fields dropped; "stream" and "stream_options" set for mode.
// Every other member is copied byte for byte (no decoding), so fields the gateway does not
// know pass through. body is not modified: the router sends it to several deployments.
func rewriteBody(body []byte, model string, mode streamMode) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, errInvalidJSON
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, errNotObject
	}
	out := make([]byte, 0, len(body)+len(model)+48)
	out = append(out, `{"model":`...)
	out = appendString(out, model)
	var opts gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch key := k.Str; {
		case key == "model", key == "stream", dropped[key]:
		case key == "stream_options":
			opts = v
		default:
			out = appendMember(out, k.Raw, v.Raw)
		}
		return true
	})
	switch mode {
	case streamPlain:
		out = append(out, `,"stream":true`...)
	case streamWithUsage:
		out = append(out, `,"stream":true,"stream_options":{"include_usage":true`...)
		if opts.IsObject() { // keep the client's other stream options
			opts.ForEach(func(k, v gjson.Result) bool {
				if k.Str != "include_usage" {
					out = appendMember(out, k.Raw, v.Raw)
				}
				return true
			})
		}
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

// appendMember appends ,"key":value with key and value as raw JSON.
func appendMember(out []byte, key, value string) []byte {
	out = append(out, ',')
	out = append(out, key...)
	out = append(out, ':')
	return append(out, value...)
}

// appendString appends s as a JSON string.
func appendString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
