package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// cwUnits are the units CloudWatch accepts in an EMF directive.
var cwUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// datum is one metric value CloudWatch extracts from an EMF line.
type datum struct {
	Namespace, Name, Unit string
	Dims                  string // "k=v,k=v" sorted; "" for the empty dimension set
	Value                 float64
}

// extract reads EMF lines as CloudWatch does (the EMF specification): each line a JSON
// object whose _aws member has an integer Timestamp and CloudWatchMetrics directives; each
// directive's dimensions and metrics name root members (dimensions: non-empty strings, at
// most 30 per set; metrics: numbers, at most 100 per directive). It fails the test on any
// line CloudWatch would reject.
func extract(t *testing.T, out []byte) []datum {
	t.Helper()
	var data []datum
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Bytes()
		var root map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&root); err != nil {
			t.Fatalf("not a JSON object: %v: %s", err, line)
		}
		var aws struct {
			Timestamp         *json.Number
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		}
		if err := json.Unmarshal(root["_aws"], &aws); err != nil || aws.Timestamp == nil || len(aws.CloudWatchMetrics) == 0 {
			t.Fatalf("no valid _aws metadata (%v): %s", err, line)
		}
		if _, err := aws.Timestamp.Int64(); err != nil {
			t.Fatalf("Timestamp is not integer milliseconds: %s", line)
		}
		for _, d := range aws.CloudWatchMetrics {
			if d.Namespace == "" || len(d.Metrics) == 0 || len(d.Metrics) > 100 || d.Dimensions == nil {
				t.Fatalf("bad directive: %s", line)
			}
			for _, m := range d.Metrics {
				if m.Name == "" || !cwUnits[m.Unit] {
					t.Fatalf("metric %q has unit %q: %s", m.Name, m.Unit, line)
				}
				var v float64
				if err := json.Unmarshal(root[m.Name], &v); err != nil {
					t.Fatalf("metric %s has no numeric root member: %s", m.Name, line)
				}
				for _, set := range d.Dimensions {
					if len(set) > 30 {
						t.Fatalf("more than 30 dimensions: %s", line)
					}
					var kv []string
					for _, dim := range set {
						var s string
						if err := json.Unmarshal(root[dim], &s); err != nil || s == "" {
							t.Fatalf("dimension %s is not a non-empty string member: %s", dim, line)
						}
						kv = append(kv, dim+"="+s)
					}
					sort.Strings(kv)
					data = append(data, datum{d.Namespace, m.Name, m.Unit, strings.Join(kv, ","), v})
				}
			}
		}
	}
	return data
}

// sum adds the values of name under dims.
func sum(data []datum, name, dims string) (float64, int) {
	var s float64
	n := 0
	for _, d := range data {
		if d.Name == name && d.Dims == dims {
			s += d.Value
			n++
		}
	}
	return s, n
}

func ptr(f float64) *float64 { return &f }

func TestEMF_LinesParseAsCloudWatchReadsThem(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf)
	e.now = func() time.Time { return time.UnixMilli(1_700_000_000_123) }
	who := Who{HashedKey: "abc123", KeyAlias: "ci", Team: "team-a", TeamAlias: "A", User: "u1",
		KeyMaxBudget: ptr(10), KeySpend: 1, TeamMaxBudget: ptr(100), TeamSpend: 40}
	e.Call(Call{Who: who, RequestedModel: "gpt", Model: "gpt-4o", Status: 200, PromptTokens: 10, CompletionTokens: 5,
		Cost: 0.25, Overrun: true, Total: 1500 * time.Millisecond, LLM: time.Second})
	e.Call(Call{Who: who, RequestedModel: "gpt", Model: "gpt-4o", Status: 500, ErrorType: "internal_server_error",
		UpstreamFailed: true, Total: 200 * time.Millisecond})
	// Refused before a model was known: only the service-wide dimension set.
	e.Call(Call{Status: 401, ErrorType: "auth_error", Total: time.Millisecond})
	e.Attempt(Attempt{RequestedModel: "gpt", Model: "gpt-4o", ModelID: "dep-1", UpstreamModel: "openai/gpt-4o",
		Provider: "openai", APIBase: "https://up.example/v1", Status: 429, Failed: true, State: StateOutage})
	e.Attempt(Attempt{RequestedModel: "gpt", Model: "gpt-4o", ModelID: "dep-2", UpstreamModel: "openai/gpt-4o", Provider: "openai"})

	data := extract(t, buf.Bytes())
	for _, d := range data {
		if d.Namespace != "llmgate" {
			t.Fatalf("namespace %q, want llmgate", d.Namespace)
		}
	}
	for _, tc := range []struct {
		name, dims string
		want       float64
		n          int
	}{
		{"litellm_proxy_total_requests_metric", "", 3, 3},
		{"litellm_proxy_total_requests_metric", "model=gpt-4o", 2, 2},
		{"litellm_proxy_failed_requests_metric", "", 2, 3},
		{"litellm_requests_metric", "model=gpt-4o", 1, 2},
		{"litellm_llm_api_failed_requests_metric", "model=gpt-4o", 1, 2},
		{"litellm_spend_metric", "", 0.25, 3},
		{"litellm_total_tokens", "model=gpt-4o", 15, 2},
		{"litellm_input_tokens_metric", "", 10, 3},
		{"litellm_output_tokens_metric", "", 5, 3},
		{"litellm_request_total_latency_metric", "model=gpt-4o", 1.7, 2},
		{"litellm_llm_api_latency_metric", "model=gpt-4o", 1, 2},
		{"litellm_budget_overrun_metric", "model=gpt-4o", 1, 2},
		{"litellm_budget_overrun_metric", "", 1, 3},
		// 100 - 40 - 0.25, then 100 - 40 - 0
		{"litellm_remaining_team_budget_metric", "team=team-a", 59.75 + 60, 2},
		{"litellm_team_max_budget_metric", "team=team-a", 200, 2},
		{"litellm_deployment_total_requests", "model=gpt-4o", 2, 2},
		{"litellm_deployment_failure_responses", "model_id=dep-1", 1, 1},
		{"litellm_deployment_success_responses", "model_id=dep-2", 1, 1},
		{"litellm_deployment_state", "model_id=dep-1", StateOutage, 1},
	} {
		got, n := sum(data, tc.name, tc.dims)
		if math.Abs(got-tc.want) > 1e-9 || n != tc.n {
			t.Errorf("%s{%s} = %v over %d values, want %v over %d", tc.name, tc.dims, got, n, tc.want, tc.n)
		}
	}

	// The caller rides along as properties, never as a dimension; no line holds a key.
	var first map[string]any
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"hashed_api_key": "abc123", "api_key_alias": "ci", "team_alias": "A",
		"user": "u1", "requested_model": "gpt", "status_code": "200"} {
		if first[k] != want {
			t.Errorf("property %s = %v, want %q", k, first[k], want)
		}
	}
	if ts := first["_aws"].(map[string]any)["Timestamp"]; ts != float64(1_700_000_000_123) {
		t.Errorf("Timestamp = %v", ts)
	}
	for _, d := range data {
		if strings.Contains(d.Dims, "hashed_api_key") || strings.Contains(d.Dims, "user") {
			t.Errorf("per-key dimension %s on %s", d.Dims, d.Name)
		}
	}
	names := map[string]bool{}
	for _, d := range data {
		names[d.Name] = true
	}
	for _, name := range slices.Concat(callMetrics, attemptMetrics) {
		if !names[name] {
			t.Errorf("metric %s never written", name)
		}
	}
	if t.Failed() {
		fmt.Println(buf.String())
	}
}
