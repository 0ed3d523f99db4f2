package fakeopenai

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ResponsesAnswer is the text the Responses API answers with.
const ResponsesAnswer = "Hello from the fake Responses upstream."

// ResponsesUsage is the usage of every Responses answer.
const ResponsesUsage = `{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":37}`

// responsesRequest is the part of a Responses request the fake reads.
type responsesRequest struct {
	Input              json.RawMessage `json:"input"`
	Store              *bool           `json:"store"`
	Background         bool            `json:"background"`
	PreviousResponseID string          `json:"previous_response_id"`
	Tools              []struct {
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
	items := inputList(req.Input)
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

// inputItems are a request's input as the stored response lists them, each with an id.
func inputItems(body []byte) []map[string]any {
	var req responsesRequest
	_ = json.Unmarshal(body, &req)
	items := inputList(req.Input)
	for i, it := range items {
		if it["type"] == nil {
			it["type"] = "message"
		}
		it["id"] = fmt.Sprintf("item_%d", i)
	}
	return items
}

// inputList is a request's input as items: a string is one user message.
func inputList(input json.RawMessage) []map[string]any {
	var items []map[string]any
	if json.Unmarshal(input, &items) != nil {
		var s string
		_ = json.Unmarshal(input, &s)
		items = []map[string]any{{"type": "message", "role": "user", "content": []map[string]any{{"type": "input_text", "text": s}}}}
	}
	return items
}

// stored is what the fake keeps of a response made with store (OpenAI's default).
type stored struct {
	object map[string]any
	input  []map[string]any
}

// responseStore holds the responses a Server made, by id.
type responseStore struct {
	mu   sync.Mutex
	byID map[string]stored
}

func (rs *responseStore) get(id string) (stored, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st, ok := rs.byID[id]
	return st, ok
}

func (rs *responseStore) put(id string, st stored) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byID == nil {
		rs.byID = map[string]stored{}
	}
	rs.byID[id] = st
}

func (rs *responseStore) remove(id string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_, ok := rs.byID[id]
	delete(rs.byID, id)
	return ok
}

func newResponseID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "resp_" + hex.EncodeToString(b)
}

func responseObject(id, model, status string, output []map[string]any, usage string) map[string]any {
	var u any
	if usage != "" {
		u = json.RawMessage(usage)
	}
	return map[string]any{"id": id, "object": "response", "created_at": time.Now().Unix(), "status": status,
		"model": model, "output": output, "usage": u, "error": nil, "incomplete_details": nil, "store": false,
		"parallel_tool_calls": true, "tool_choice": "auto", "tools": []any{}}
}

// responses answers POST /v1/responses; a stream sends OpenAI's semantic events. Unless
// the request says store: false the response is kept for GET, DELETE and input_items, and
// a previous_response_id must name a response kept here. A background response (not
// streamed) is answered "queued" and stays queued until it is cancelled: the fake never
// runs it.
func (s *Server) responses(w http.ResponseWriter, model string, stream bool, body []byte) {
	var req responsesRequest
	_ = json.Unmarshal(body, &req)
	if p := req.PreviousResponseID; p != "" {
		if _, ok := s.kept.get(p); !ok {
			writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("Previous response with id '%s' not found.", p))
			return
		}
	}
	id := newResponseID()
	if req.Background && !stream {
		queued := responseObject(id, model, "queued", []map[string]any{}, "")
		queued["background"], queued["store"] = true, true
		s.kept.put(id, stored{object: queued, input: inputItems(body)})
		data, _ := json.Marshal(queued)
		s.writeBody(w, data)
		return
	}
	output := responsesOutput(body)
	final := responseObject(id, model, "completed", output, ResponsesUsage)
	if p := req.PreviousResponseID; p != "" {
		final["previous_response_id"] = p
	}
	if req.Store == nil || *req.Store {
		final["store"] = true
		s.kept.put(id, stored{object: final, input: inputItems(body)})
	}
	if !stream {
		data, _ := json.Marshal(final)
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
	send(map[string]any{"type": "response.created", "response": responseObject(id, model, "in_progress", []map[string]any{}, "")})
	send(map[string]any{"type": "response.in_progress", "response": responseObject(id, model, "in_progress", []map[string]any{}, "")})
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
	send(map[string]any{"type": "response.completed", "response": final})
	s.completed.Add(1)
}

// storedResponse answers GET and DELETE /v1/responses/{id}, GET
// /v1/responses/{id}/input_items (limit and order honoured) and POST
// /v1/responses/{id}/cancel as OpenAI does.
func (s *Server) storedResponse(w http.ResponseWriter, r *http.Request, rest string) {
	id, sub, _ := strings.Cut(rest, "/")
	st, ok := s.kept.get(id)
	switch {
	case !ok || (sub != "" && sub != "input_items" && sub != "cancel") ||
		(sub == "input_items" && r.Method != http.MethodGet) || (sub == "cancel" && r.Method != http.MethodPost):
		writeError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("Response with id '%s' not found.", id))
	case sub == "cancel":
		s.cancel(w, id, st)
	case r.Method == http.MethodDelete:
		s.kept.remove(id)
		data, _ := json.Marshal(map[string]any{"id": id, "object": "response", "deleted": true})
		s.writeBody(w, data)
	case r.Method != http.MethodGet:
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method not allowed")
	case sub == "":
		data, _ := json.Marshal(st.object)
		s.writeBody(w, data)
	default:
		items := st.input
		if r.URL.Query().Get("order") != "asc" { // OpenAI lists newest first by default
			items = make([]map[string]any, len(st.input))
			for i, it := range st.input {
				items[len(items)-1-i] = it
			}
		}
		var limit int
		if _, err := fmt.Sscan(r.URL.Query().Get("limit"), &limit); err == nil && limit >= 0 && limit < len(items) {
			items = items[:limit]
		}
		list := map[string]any{"object": "list", "data": items, "has_more": len(items) < len(st.input), "first_id": nil, "last_id": nil}
		if len(items) > 0 {
			list["first_id"], list["last_id"] = items[0]["id"], items[len(items)-1]["id"]
		}
		data, _ := json.Marshal(list)
		s.writeBody(w, data)
	}
}

// cancel cancels a background response that is queued or in progress, and answers the
// response; one already finished is answered as it is. Only background responses can be
// cancelled.
func (s *Server) cancel(w http.ResponseWriter, id string, st stored) {
	if st.object["background"] != true {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "Only responses created with background=true can be cancelled.")
		return
	}
	if status := st.object["status"]; status == "queued" || status == "in_progress" {
		cancelled := make(map[string]any, len(st.object))
		for k, v := range st.object {
			cancelled[k] = v
		}
		cancelled["status"] = "cancelled"
		st.object = cancelled
		s.kept.put(id, st)
	}
	data, _ := json.Marshal(st.object)
	s.writeBody(w, data)
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
