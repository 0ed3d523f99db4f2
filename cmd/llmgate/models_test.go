package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/llmgate/llmgate/internal/dynamotest"
)

// modelsConfig stores models in DynamoDB; %[1]s is the fake upstream's /v1 and %[2]s the
// refresh interval. The upstream key reaches stored models only as os.environ/MODELS_UPSTREAM_KEY.
const modelsConfig = `
model_list:
  - model_name: config-model
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s
      api_key: ` + upstreamKey + `
    model_info:
      id: config-1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
environment_variables:
  MODELS_UPSTREAM_KEY: ` + upstreamKey + `
general_settings:
  master_key: ` + masterKey + `
  store_model_in_db: true
llmgate_settings:
  model_refresh_interval: %[2]s
`

// TestModels_StoredInDynamoDB ports LiteLLM's tests/test_models.py model management
// (test_add_and_delete_models, test_model_info, test_get_specific_model on a stored model):
// a model added with /model/new is served through a virtual key, priced from its
// model_info under a budget, changed with /model/update and PATCH /model/{id}/update, and
// deleted; a second instance on the same table, whose refresh interval has passed at each
// request, serves every change without being told of it.
func TestModels_StoredInDynamoDB(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	table := dynamotest.TableName(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = dynamotest.Client(t).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	a := launch(t, fmt.Sprintf(modelsConfig, up.URL+"/v1", "1h"), dynamotest.Endpoint(t), table)
	b := launch(t, fmt.Sprintf(modelsConfig, up.URL+"/v1", "1ns"), dynamotest.Endpoint(t), table)

	// Each call reserves about $0.52 (no output limit is known for the stored model) and a
	// call's settle may land after its answer: the budget holds several calls in flight.
	key := a.admin(t, "POST", "/key/generate", map[string]any{"max_budget": 10})["key"].(string)
	chatOn := func(s *server, model string) (int, http.Header, []byte) {
		return chatAs(t, s, key, map[string]any{"model": model})
	}
	newModel := map[string]any{
		"model_name": "db-model",
		"litellm_params": map[string]any{
			"model": "openai/up-ok", "api_base": up.URL + "/v1", "api_key": "os.environ/MODELS_UPSTREAM_KEY",
		},
		"model_info": map[string]any{"id": "db-1", "input_cost_per_token": 0.000002, "output_cost_per_token": 0.000004},
	}

	t.Run("refusals", func(t *testing.T) {
		resp, body := a.request(t, key, "POST", "/model/new", newModel)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("/model/new as a virtual key: %d %s, want 403", resp.StatusCode, body)
		}
		for name, lp := range map[string]map[string]any{
			"literal api_key":       {"model": "openai/up-ok", "api_key": "sk-literal-secret"},
			"literal header secret": {"model": "openai/up-ok", "headers": map[string]any{"Authorization": "Bearer sk-literal-secret"}},
			"master key reference":  {"model": "openai/up-ok", "api_key": "os.environ/LITELLM_MASTER_KEY"},
			"AWS reference":         {"model": "openai/up-ok", "api_key": "os.environ/AWS_SECRET_ACCESS_KEY"},
			"no model":              {"api_base": up.URL},
		} {
			resp, body := a.request(t, masterKey, "POST", "/model/new", map[string]any{"model_name": "bad", "litellm_params": lp})
			if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "sk-literal-secret") {
				t.Errorf("%s: %d %s, want 400 without the secret", name, resp.StatusCode, body)
			}
		}
		for _, path := range []string{"/model/delete", "/model/update"} {
			resp, body := a.request(t, masterKey, "POST", path, map[string]any{"id": "config-1", "model_info": map[string]any{"id": "config-1"}})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "config.yaml") {
				t.Errorf("%s of a config model: %d %s, want 400 naming config.yaml", path, resp.StatusCode, body)
			}
		}
	})

	t.Run("add, call, change, delete", func(t *testing.T) {
		added := a.admin(t, "POST", "/model/new", newModel)
		if added["model_id"] != "db-1" {
			t.Fatalf("/model/new answered %v, want model_id db-1", added)
		}
		// A read the first request of b did (refusals) is stale: b reads again, a was told.
		for _, s := range []*server{a, b} {
			status, h, body := chatOn(s, "db-model")
			if status != http.StatusOK {
				t.Fatalf("db-model on %s: %d %s", s.URL, status, body)
			}
			// 12 prompt and 3 completion tokens at the stored model's prices.
			if cost := h.Get("x-litellm-response-cost"); !costIs(cost, 3.6e-05) {
				t.Errorf("response cost %s, want 3.6e-05 (model_info prices of the stored model)", cost)
			}
			if _, auth := up.last(); auth != "Bearer "+upstreamKey {
				t.Errorf("upstream got Authorization %q, want the referenced key", auth)
			}
		}
		resp, body := b.request(t, masterKey, "GET", "/model/info?litellm_model_id=db-1", nil)
		var info struct {
			Data []struct {
				ModelName string         `json:"model_name"`
				ModelInfo map[string]any `json:"model_info"`
			} `json:"data"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &info) != nil || len(info.Data) != 1 ||
			info.Data[0].ModelName != "db-model" || info.Data[0].ModelInfo["db_model"] != true {
			t.Errorf("/model/info?litellm_model_id=db-1: %d %s, want db-model stored in the db", resp.StatusCode, body)
		}
		if strings.Contains(string(body), upstreamKey) || strings.Contains(string(body), "MODELS_UPSTREAM_KEY") {
			t.Errorf("/model/info shows the upstream key or its reference: %s", body)
		}

		// An unpriced stored model is refused under a budget, as a config one is; pricing it
		// with PATCH lets the call through.
		a.admin(t, "POST", "/model/new", map[string]any{
			"model_name":     "db-unpriced",
			"litellm_params": map[string]any{"model": "openai/up-ok-unpriced", "api_base": up.URL + "/v1", "api_key": "os.environ/MODELS_UPSTREAM_KEY"},
			"model_info":     map[string]any{"id": "db-2"},
		})
		if status, _, body := chatOn(b, "db-unpriced"); status != http.StatusBadRequest || !strings.Contains(string(body), "no known price") {
			t.Errorf("unpriced stored model under a budget: %d %s, want 400 no known price", status, body)
		}
		a.admin(t, "PATCH", "/model/db-2/update", map[string]any{"model_info": map[string]any{"input_cost_per_token": 0, "output_cost_per_token": 0.00001}})
		if status, h, body := chatAs(t, b, key, map[string]any{"model": "db-unpriced", "max_tokens": 10}); status != http.StatusOK || !costIs(h.Get("x-litellm-response-cost"), 3e-05) {
			t.Errorf("priced with PATCH: %d cost %s %s, want 200 and 3e-05", status, h.Get("x-litellm-response-cost"), body)
		}

		// Renamed with /model/update: the old name is gone on b, the new one served.
		updated := a.admin(t, "POST", "/model/update", map[string]any{"model_name": "db-model-renamed", "model_info": map[string]any{"id": "db-1"}})
		if updated["model_name"] != "db-model-renamed" || updated["litellm_params"].(map[string]any)["api_key"] != "os.environ/MODELS_UPSTREAM_KEY" {
			t.Errorf("/model/update answered %v, want the new name and the params kept", updated)
		}
		if status, _, body := chatOn(b, "db-model"); status != http.StatusBadRequest {
			t.Errorf("old name after /model/update: %d %s, want 400", status, body)
		}
		if status, _, body := chatOn(b, "db-model-renamed"); status != http.StatusOK {
			t.Errorf("new name after /model/update: %d %s", status, body)
		}

		if got := a.admin(t, "POST", "/model/delete", map[string]any{"id": "db-1"}); got["message"] != "Model: db-1 deleted successfully" {
			t.Errorf("/model/delete answered %v", got)
		}
		for _, s := range []*server{a, b} {
			if status, _, body := chatOn(s, "db-model-renamed"); status != http.StatusBadRequest || !strings.Contains(string(body), "Invalid model name") {
				t.Errorf("deleted model on %s: %d %s, want 400 invalid model", s.URL, status, body)
			}
		}
		resp, body = a.request(t, masterKey, "POST", "/model/delete", map[string]any{"id": "db-1"})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("second delete: %d %s, want 404", resp.StatusCode, body)
		}
		if status, _, body := chatOn(b, "config-model"); status != http.StatusOK {
			t.Errorf("config model after the stored ones changed: %d %s", status, body)
		}
	})
}

// costIs reports whether a cost header holds want, to float precision.
func costIs(header string, want float64) bool {
	got, err := strconv.ParseFloat(header, 64)
	return err == nil && math.Abs(got-want) < want*1e-9
}
