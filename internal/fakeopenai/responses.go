package fakeopenai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ResponsesAnswer is the text the Responses API answers with.
const ResponsesAnswer = "Hello from the fake Responses upstream."

// ResponsesUsage is the usage of every Responses answer.
const ResponsesUsage = `{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":37}`

// responsesRequest is the part of a Responses request the fake reads.
type responsesRequest struct {
	Input json.RawMessage `json:"input"`
	Tools []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
}

// responsesOutput is the output for a request: a function call of the first function tool
// when the input mentions "weather" and no call output came back yet; "The tool said: <output>"
// when one did; ResponsesAnswer otherwise.
func responsesOutput(body []byte) []map[string]any {
	var req responsesRequest
	_ = json.Unmarshal(body, &req)
	var items []map[string]any
	if json.Unmarshal(req.Input, &items) != nil {
		var s string
		_ = json.Unmarshal(req.Input, &s)
		items = []map[string]any{{"type": "message", "role": "user", "content": s}}
	}
	text := ResponsesAnswer
	for _, it := range items {
		if it["type"] == "function_call_output" {
			text = fmt.Sprint("The tool said: ", it["output"])
		}
	}
	if text == ResponsesAnswer && strings.Contains(strings.ToLower(string(req.Input)), "weather") {
		for _, t := range req.Tools {
			if t.Type == "function" {
				return []map[string]any{{"type": "function_call", "id": "fc_fake1", "call_id": "call_fake1", "name": t.Name,
					"arguments": `{"city":"Paris"}`, "status": "completed"}}
			}
		}
	}
	return []map[string]any{{"type": "message", "id": "msg_fake1", "status": "completed", "role": "assistant",
		"content": []map[string]any{{"type": "output_text", "text": text, "annotations": []any{}}}}}
}

func responseObject(model, status string, output []map[string]any, usage string) map[string]any {
	var u any
	if usage != "" {
		u = json.RawMessage(usage)
	}
	return map[string]any{"id": "resp_fake1", "object": "response", "created_at": time.Now().Unix(), "status": status,
		"model": model, "output": output, "usage": u, "error": nil, "incomplete_details": nil, "store": false,
		"parallel_tool_calls": true, "tool_choice": "auto", "tools": []any{}}
}

// responses answers POST /v1/responses; a stream sends OpenAI's semantic events.
func (s *Server) responses(w http.ResponseWriter, model string, stream bool, body []byte) {
	output := responsesOutput(body)
	if !stream {
		data, _ := json.Marshal(responseObject(model, "completed", output, ResponsesUsage))
		s.writeBody(w, data)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	seq := 0
	send := func(ev map[string]any) {
		ev["sequence_number"] = seq
		seq++
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev["type"], data)
		if fl != nil {
			fl.Flush()
		}
	}
	send(map[string]any{"type": "response.created", "response": responseObject(model, "in_progress", []map[string]any{}, "")})
	send(map[string]any{"type": "response.in_progress", "response": responseObject(model, "in_progress", []map[string]any{}, "")})
	for i, it := range output {
		send(map[string]any{"type": "response.output_item.added", "output_index": i, "item": added(it)})
		if it["type"] == "function_call" {
			send(map[string]any{"type": "response.function_call_arguments.delta", "item_id": it["id"], "output_index": i, "delta": it["arguments"]})
			send(map[string]any{"type": "response.function_call_arguments.done", "item_id": it["id"], "output_index": i, "arguments": it["arguments"]})
		} else {
			part := it["content"].([]map[string]any)[0]
			send(map[string]any{"type": "response.content_part.added", "item_id": it["id"], "output_index": i, "content_index": 0,
				"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
			for _, word := range strings.SplitAfter(part["text"].(string), " ") {
				send(map[string]any{"type": "response.output_text.delta", "item_id": it["id"], "output_index": i, "content_index": 0, "delta": word})
			}
			send(map[string]any{"type": "response.output_text.done", "item_id": it["id"], "output_index": i, "content_index": 0, "text": part["text"]})
			send(map[string]any{"type": "response.content_part.done", "item_id": it["id"], "output_index": i, "content_index": 0, "part": part})
		}
		send(map[string]any{"type": "response.output_item.done", "output_index": i, "item": it})
	}
	send(map[string]any{"type": "response.completed", "response": responseObject(model, "completed", output, ResponsesUsage)})
	s.completed.Add(1)
}

// added is an output item as response.output_item.added announces it: in progress, with no
// content or arguments yet.
func added(it map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range it {
		out[k] = v
	}
	out["status"] = "in_progress"
	if it["type"] == "function_call" {
		out["arguments"] = ""
	} else {
		out["content"] = []any{}
	}
	return out
}
