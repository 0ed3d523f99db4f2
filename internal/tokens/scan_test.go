package tokens

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestScan_RefusesWhatTwoDecodersCouldReadDifferently(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"duplicate key", `{"max_tokens":1,"max_tokens":4000}`, `duplicate key "max_tokens"`},
		{"keys differing in case", `{"max_tokens":4000,"MAX_TOKENS":1}`, `duplicate key "MAX_TOKENS" (also spelled "max_tokens")`},
		{"Kelvin sign folds to k", "{\"k\":1,\"\u212a\":2}", "duplicate key"},
		{"nested duplicate", `{"messages":[{"role":"user","content":"a","Content":"b"}]}`, `in messages[0]`},
		{"number beyond float64", `{"max_tokens":1e400}`, "out of range"},
		{"trailing data", `{"a":1} {"b":2}`, "invalid character"},
		{"invalid JSON", `{"a":`, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Scan([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Scan(%s) = %v, want an error with %q", tt.body, err, tt.wantErr)
			}
		})
	}
	var dup *DuplicateKeyError
	if _, err := Scan([]byte(`{"Messages":[],"messages":[]}`)); !errors.As(err, &dup) || dup.Other != "messages" {
		t.Errorf("err = %#v, want a *DuplicateKeyError naming the second spelling", err)
	}
	var se *json.SyntaxError
	if _, err := Scan([]byte(`[1,]`)); !errors.As(err, &se) {
		t.Errorf("err = %#v, want a *json.SyntaxError", err)
	}
}

func TestScan_MeasuresTheBillablePrompt(t *testing.T) {
	img := `"data:image/png;base64,` + strings.Repeat("A", 1000) + `"`
	data := strings.Repeat("A", 500)
	// Image data is left out with its colon.
	without := func(body string, n int) int { return len(body) - n - 1 }
	chat := `{"messages":[{"content":[{"type":"image_url","image_url":{"url":` + img + `,"detail":"high"}}]}]}`
	responses := `{"input":[{"type":"input_image","image_url":` + img + `}]}`
	anthropic := `{"messages":[{"content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + data + `"}}]}]}`
	tests := []struct {
		name, body string
		want       Prompt
		wantKeys   string
	}{
		{"text", `{"model":"m","messages":[{"role":"user","content":"héllo"}]}`, Prompt{TextBytes: 61}, "model,messages"},
		{"chat image part", chat, Prompt{TextBytes: without(chat, len(img)), Images: 1}, "messages"},
		{"responses input_image", responses, Prompt{TextBytes: without(responses, len(img)), Images: 1}, "input"},
		{"anthropic base64 image", anthropic, Prompt{TextBytes: without(anthropic, len(data)+2), Images: 1}, "messages"},
		{"a document's data is text-priced", `{"messages":[{"content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"AAAA"}}]}]}`,
			Prompt{TextBytes: 120}, "messages"},
		{"tools", `{"tools":[{"type":"function"}]}`, Prompt{TextBytes: 31, Tools: true}, "tools"},
		{"functions", `{"functions":[]}`, Prompt{TextBytes: 16, Tools: true}, "functions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Scan([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got.Prompt != tt.want || strings.Join(got.Keys, ",") != tt.wantKeys {
				t.Errorf("Scan = %+v, want %+v with keys %s (body %d bytes)", got, tt.want, tt.wantKeys, len(tt.body))
			}
		})
	}
}

func TestBillable_Output(t *testing.T) {
	tests := []struct {
		name                         string
		b                            Billable
		deployment, model, ctxWindow int
		wantPer, wantTotal           int
	}{
		{"the request's max_tokens", Billable{MaxOutput: 50, Choices: 3}, 10, 100, 1000, 50, 150},
		{"else litellm_params.max_tokens", Billable{}, 10, 100, 1000, 10, 10},
		{"else the model's output limit", Billable{Choices: 2}, 0, 100, 1000, 100, 200},
		{"else its context window", Billable{}, 0, 0, 1000, 1000, 1000},
		{"else UnknownOutputLimit", Billable{}, 0, 0, 0, UnknownOutputLimit, UnknownOutputLimit},
		{"embeddings write nothing", Billable{NoOutput: true, MaxOutput: 5}, 0, 100, 0, 0, 0},
		{"saturates", Billable{MaxOutput: 1 << 62, Choices: 8}, 0, 0, 0, 1 << 62, int(^uint(0) >> 1)},
	}
	for _, tt := range tests {
		per, total := tt.b.Output(tt.deployment, tt.model, tt.ctxWindow)
		if per != tt.wantPer || total != tt.wantTotal {
			t.Errorf("%s: Output = %d, %d, want %d, %d", tt.name, per, total, tt.wantPer, tt.wantTotal)
		}
	}
}

// TestScan_DeepBodiesCostLinearMemory: a key holder's 10 MB of "[[[[..." or of objects
// nested under long names must be refused (or read) in memory linear in its size; spelling
// out each level's path up front made it quadratic (a 10 MB body: killed out of memory).
func TestScan_DeepBodiesCostLinearMemory(t *testing.T) {
	name := strings.Repeat("k", 200)
	tests := []struct {
		name    string
		body    string
		wantErr error
	}{
		{"10 MB of brackets", strings.Repeat("[", 5<<20) + strings.Repeat("]", 5<<20), ErrTooDeep},
		{"one level too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ErrTooDeep},
		{"objects under long names at the limit", strings.Repeat(`{"`+name+`":`, MaxDepth-1) + "1" + strings.Repeat("}", MaxDepth-1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Scan([]byte(tt.body))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Scan = %v, want %v", err, tt.wantErr)
			}
			// The decoder's buffer holds the body (8x leaves room for its growth), and the
			// stacks of MaxDepth levels take some 2 MiB.
			if got, limit := after.TotalAlloc-before.TotalAlloc, 8*uint64(len(tt.body))+2<<20; got > limit {
				t.Errorf("Scan of %d bytes allocated %d bytes, want at most %d", len(tt.body), got, limit)
			}
		})
	}
	var num *NumberError
	deep := strings.Repeat(`{"a":[`, 3) + "1e999" + strings.Repeat("]}", 3)
	if _, err := Scan([]byte(deep)); !errors.As(err, &num) || num.Path != "a[0].a[0].a[0]" {
		t.Errorf("err = %#v, want a *NumberError at a[0].a[0].a[0]", err)
	}
}

// FuzzScan holds Scan to encoding/json: it accepts only valid JSON, refuses valid JSON only
// for a duplicate key, an out-of-range number or a nesting too deep, and reports the
// top-level keys in order and a text size within the body.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"a":1,"A":2}`, `{"n":1e400}`, `[[[]]]`, `{"image_url":{"url":"data:x"}}`,
		`{"source":{"media_type":"image/png","data":"AAAA"}}`, "{\"\u212a\":1,\"k\":2}", `{"a":{"a":{"a":{}}}}`,
		`"x"`, `1 2`, `{"a":`, "\xff", `{"tools":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Scan(body)
		valid := json.Valid(body)
		if err != nil {
			var dup *DuplicateKeyError
			var num *NumberError
			if valid && !errors.As(err, &dup) && !errors.As(err, &num) && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("Scan refused valid JSON %q: %v", body, err)
			}
			return
		}
		if !valid {
			t.Fatalf("Scan accepted invalid JSON %q", body)
		}
		if got.Prompt.TextBytes < 0 || got.Prompt.TextBytes > len(body) {
			t.Fatalf("TextBytes = %d for a %d-byte body", got.Prompt.TextBytes, len(body))
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) == nil && top != nil {
			if len(got.Keys) != len(top) {
				t.Fatalf("Keys = %q, the body has %d top-level keys", got.Keys, len(top))
			}
			for _, k := range got.Keys {
				if _, ok := top[k]; !ok {
					t.Fatalf("Keys = %q: %q is not a top-level key of %q", got.Keys, k, body)
				}
			}
		}
	})
}
