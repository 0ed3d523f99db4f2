package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

func TestEmbed_TitanMakesOneCallPerInput(t *testing.T) {
	const model = "amazon.titan-embed-text-v2:0"
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ InputText string }
		json.NewDecoder(r.Body).Decode(&in)
		// The vector encodes the input's length, so the test can check the order.
		providertest.JSON(200, fmt.Sprintf(`{"embedding":[%d,0.5],"inputTextTokenCount":%d}`, len(in.InputText), len(in.InputText)))(w, r)
	})
	resp, err := new(Provider).Do(context.Background(), testCall(provider.Embedding, up, model, `{"input":["a","bb","ccc"],"dimensions":256}`))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	var bodies []string
	for _, r := range up.Requests() {
		if r.Path != "/model/"+model+"/invoke" {
			t.Errorf("path = %s, want /model/%s/invoke", r.Path, model)
		}
		bodies = append(bodies, string(r.Body))
	}
	sort.Strings(bodies)
	want := []string{`{"inputText":"a","dimensions":256}`, `{"inputText":"bb","dimensions":256}`, `{"inputText":"ccc","dimensions":256}`}
	if fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Errorf("request bodies = %v, want %v", bodies, want)
	}
	var got struct {
		Data []struct {
			Index     int
			Embedding []float64
		}
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatal(err)
	}
	for i, d := range got.Data {
		if d.Index != i || d.Embedding[0] != float64(i+1) {
			t.Errorf("data[%d] = %+v, want index %d with the embedding of input %d", i, d, i, i)
		}
	}
	if len(got.Data) != 3 || got.Usage.PromptTokens != 6 || resp.Usage.PromptTokens != 6 {
		t.Errorf("%d vectors, usage %d / %+v, want 3 vectors and the 6 tokens Titan counted", len(got.Data), got.Usage.PromptTokens, resp.Usage)
	}
}

func TestEmbed_TitanFailureFailsTheCall(t *testing.T) {
	var calls atomic.Int32
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			errorAnswer(429, "ThrottlingException", "slow down")(w, r)
			return
		}
		providertest.JSON(200, `{"embedding":[1],"inputTextTokenCount":1}`)(w, r)
	})
	_, err := new(Provider).Do(context.Background(), testCall(provider.Embedding, up, "amazon.titan-embed-text-v1", `{"input":["a","b","c","d","e"]}`))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != 429 {
		t.Fatalf("err = %v, want the 429 of the failed call", err)
	}
}

func TestEmbed_Cohere(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		answer     string
		header     string // X-Amzn-Bedrock-Input-Token-Count
		wantReq    string
		wantTokens int
	}{
		{
			name:   "texts in one batch with the default input_type and the header's token count",
			body:   `{"input":["hello","world"]}`,
			answer: `{"id":"e1","embeddings":[[0.1,0.2],[0.3,0.4]],"response_type":"embeddings_floats","texts":["hello","world"]}`,
			header: "9", wantReq: `{"texts":["hello","world"],"input_type":"search_document"}`, wantTokens: 9,
		},
		{
			name:    "input_type passes through, embeddings by type are read, usage is estimated without a count",
			body:    `{"input":"hello world!","input_type":"search_query"}`,
			answer:  `{"id":"e2","embeddings":{"float":[[0.5,0.6]]},"response_type":"embeddings_by_type"}`,
			wantReq: `{"texts":["hello world!"],"input_type":"search_query"}`, wantTokens: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", tt.header)
				}
				providertest.JSON(200, tt.answer)(w, r)
			})
			resp, err := new(Provider).Do(context.Background(), testCall(provider.Embedding, up, "cohere.embed-english-v3", tt.body))
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			providertest.JSONEqual(t, up.Last(t).Body, []byte(tt.wantReq))
			if resp.Usage.PromptTokens != tt.wantTokens {
				t.Errorf("prompt tokens = %d, want %d", resp.Usage.PromptTokens, tt.wantTokens)
			}
			if !strings.Contains(string(resp.Body), `"object":"embedding"`) {
				t.Errorf("body %s is not an embedding list", resp.Body)
			}
		})
	}
}

func TestEmbed_CohereBatchesOf96(t *testing.T) {
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Texts []string }
		json.NewDecoder(r.Body).Decode(&in)
		vs := make([]string, len(in.Texts))
		for i := range vs {
			vs[i] = "[1]"
		}
		providertest.JSON(200, `{"embeddings":[`+strings.Join(vs, ",")+`]}`)(w, r)
	})
	inputs := make([]string, 100)
	for i := range inputs {
		inputs[i] = "x"
	}
	body, _ := json.Marshal(map[string]any{"input": inputs})
	resp, err := new(Provider).Do(context.Background(), testCall(provider.Embedding, up, "cohere.embed-multilingual-v3", string(body)))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if n := len(up.Requests()); n != 2 {
		t.Errorf("%d calls, want 2 (96 + 4 texts)", n)
	}
	var got struct{ Data []json.RawMessage }
	json.Unmarshal(resp.Body, &got)
	if len(got.Data) != 100 {
		t.Errorf("%d vectors, want 100", len(got.Data))
	}
}

func TestEmbed_RefusesOtherModels(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{}`))
	_, err := new(Provider).Do(context.Background(), testCall(provider.Embedding, up, "meta.llama3-8b-instruct-v1:0", `{"input":"x"}`))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
		t.Fatalf("err = %v, want a 400 *provider.Error", err)
	}
}
