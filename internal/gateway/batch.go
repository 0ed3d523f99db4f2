package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// maxBatchModels bounds LiteLLM's batch completion (model "a,b,c"): each model is a call of
// its own, reserved and charged as one.
const maxBatchModels = 10

// batchModels are the models of a batch completion: a non-streamed chat request whose model
// names several, comma-separated. nil for any other request.
func batchModels(c *call) []string {
	if c.kind != provider.Chat || c.req.Stream || !strings.Contains(c.req.Model, ",") {
		return nil
	}
	var models []string
	for m := range strings.SplitSeq(c.req.Model, ",") {
		if m = strings.TrimSpace(m); m != "" {
			models = append(models, m)
		}
	}
	return models
}

// batch answers a batch completion: the request goes to each model at once, as a call of its
// own through the whole pipeline (the key's access, its own reservation and settlement, its
// own log line), and the answer is the list of their answers in the order of the models: a
// chat completion, or the error object of a call that failed.
func (g *Gateway) batch(w http.ResponseWriter, r *http.Request, c *call, models []string) error {
	if len(models) > maxBatchModels {
		return invalidParam("model", fmt.Sprintf("A batch completion names at most %d models, got %d.", maxBatchModels, len(models)))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(c.body, &fields); err != nil {
		return fmt.Errorf("batch completion: %w", err)
	}
	bodies := make([][]byte, len(models))
	for i, m := range models {
		fields["model"] = json.RawMessage(strconv.Quote(m))
		b, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("batch completion: %w", err)
		}
		bodies[i] = b
	}
	answers := make([]json.RawMessage, len(models))
	h := g.llm(c.wire, c.route)
	var wg sync.WaitGroup
	for i := range models {
		wg.Go(func() {
			sub := r.Clone(r.Context())
			sub.Body, sub.ContentLength = io.NopCloser(bytes.NewReader(bodies[i])), int64(len(bodies[i]))
			rec := &bufferedWriter{header: http.Header{}}
			h.ServeHTTP(rec, sub)
			if answers[i] = bytes.TrimSpace(rec.body.Bytes()); len(answers[i]) == 0 {
				answers[i] = json.RawMessage("null")
			}
		})
	}
	wg.Wait()
	openai.WriteJSON(w, http.StatusOK, answers)
	return nil
}

// bufferedWriter keeps a sub-call's answer for the batch's list.
type bufferedWriter struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedWriter) WriteHeader(int)             {}
