package translate

import (
	"strings"
	"testing"
)

// Upstream error texts lose every key, any prefix or suffix of one, and URLs; the old
// Redact removed only the whole key, so OpenAI's "Incorrect API key provided: sk-up***-key"
// and its URL reached the client.
func TestRedact_RemovesKeysTheirFragmentsAndURLs(t *testing.T) {
	const key = "sk-upstream-secret-4321"
	tests := []struct{ in, want string }{
		{"Incorrect API key provided: sk-upst****4321. You can find your API key at https://platform.openai.com/account/api-keys.",
			"Incorrect API key provided: [redacted] You can find your API key at [url]"},
		{"bad key " + key + " given", "bad key [redacted] given"},
		{"key ending ...4321 refused", "key ending [redacted] refused"},
		{"cut off at sk-upstream-sec", "cut off at [redacted]"},
		{"google said AIzaSyA1234567890abcdef nope", "google said [redacted] nope"},
		{"see http://10.0.0.5:8000/v1/chat?api_key=abc for details", "see [url] for details"},
		{"The model `gpt-4o` does not exist", "The model `gpt-4o` does not exist"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in, key); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := Redact(tt.in, key); strings.Contains(got, "4321") || strings.Contains(got, "://") {
			t.Errorf("Redact(%q) = %q leaks", tt.in, got)
		}
	}
}
