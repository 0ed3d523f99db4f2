package viachat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
	"github.com/llmgate/llmgate/internal/responses"
)

// responsesToChat translates a Responses request. instructions become the system message;
// message items become messages (developer as system); function_call items become the
// assistant's tool calls and function_call_output items tool messages. Reasoning items and
// tools other than functions (web_search, namespaces, ...) have no chat equivalent and are
// left out; previous_response_id is refused, since llmgate keeps no responses.
// reasoning.effort is kept and PDF input_file parts become file parts where the deployment
// takes them (acc); text.format becomes response_format.
func responsesToChat(body []byte, acc accepts) (*chatRequest, *responses.Request, error) {
	r, err := responses.DecodeRequest(body)
	if err != nil {
		return nil, nil, badRequest("%v", err)
	}
	if r.PreviousResponseID != "" {
		return nil, nil, badRequest("previous_response_id is not supported for this model: its deployment keeps no responses. Send the whole conversation as input instead.")
	}
	cr := &chatRequest{MaxTokens: r.MaxOutputTokens, Temperature: r.Temperature, TopP: r.TopP, User: r.User, ParallelToolCalls: r.ParallelToolCalls}
	if re := r.Reasoning; re != nil && re.Effort != "" && re.Effort != "none" && acc.reasoning {
		cr.ReasoningEffort = re.Effort
	}
	if cr.ResponseFormat, err = responseFormat(r.Text); err != nil {
		return nil, nil, err
	}
	if r.Instructions != "" {
		cr.Messages = append(cr.Messages, translate.Message{Role: translate.RoleSystem, Content: translate.Content{{Type: translate.PartText, Text: r.Instructions}}})
	}
	for i, it := range r.Input {
		switch it.Type {
		case "", responses.ItemMessage:
			role := it.Role
			if role == translate.RoleDeveloper {
				role = translate.RoleSystem
			}
			parts, err := chatParts(it.Content, acc)
			if err != nil {
				return nil, nil, badRequest("input[%d]: %v", i, err)
			}
			cr.Messages = append(cr.Messages, translate.Message{Role: role, Content: parts})
		case responses.ItemFunctionCall:
			args := "{}"
			if it.Arguments != nil {
				args = *it.Arguments
			}
			tc := translate.ToolCall{ID: it.CallID, Type: "function", Function: translate.FunctionCall{Name: it.Name, Arguments: args}}
			if n := len(cr.Messages); n > 0 && cr.Messages[n-1].Role == translate.RoleAssistant {
				cr.Messages[n-1].ToolCalls = append(cr.Messages[n-1].ToolCalls, tc)
				continue
			}
			cr.Messages = append(cr.Messages, translate.Message{Role: translate.RoleAssistant, ToolCalls: []translate.ToolCall{tc}})
		case responses.ItemFunctionCallOutput:
			cr.Messages = append(cr.Messages, translate.Message{Role: translate.RoleTool, ToolCallID: it.CallID,
				Content: translate.Content{{Type: translate.PartText, Text: outputText(it.Output)}}})
		}
	}
	for _, t := range r.Tools {
		if t.Type == "function" && t.Name != "" {
			cr.Tools = append(cr.Tools, translate.Tool{Type: "function", Function: translate.FunctionDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters}})
		}
	}
	if len(cr.Tools) > 0 && len(r.ToolChoice) > 0 {
		var s string
		var o struct{ Type, Name string }
		switch {
		case json.Unmarshal(r.ToolChoice, &s) == nil:
			cr.ToolChoice = s
		case json.Unmarshal(r.ToolChoice, &o) == nil && o.Type == "function":
			cr.ToolChoice = map[string]any{"type": "function", "function": map[string]string{"name": o.Name}}
		}
	}
	return cr, r, nil
}

// responseFormat is chat's response_format for the request's text.format: json_schema's
// name, schema, strict and description move under "json_schema"; "text" is chat's default.
func responseFormat(text json.RawMessage) (json.RawMessage, error) {
	var t struct {
		Format *struct {
			Type        string          `json:"type"`
			Name        string          `json:"name,omitempty"`
			Description string          `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema,omitempty"`
			Strict      *bool           `json:"strict,omitempty"`
		} `json:"format"`
	}
	if len(text) == 0 || json.Unmarshal(text, &t) != nil || t.Format == nil {
		return nil, nil
	}
	f := t.Format
	switch f.Type {
	case "json_object":
		return json.RawMessage(`{"type":"json_object"}`), nil
	case "json_schema":
		out, err := json.Marshal(map[string]any{"type": "json_schema", "json_schema": map[string]any{
			"name": f.Name, "description": f.Description, "schema": f.Schema, "strict": f.Strict}})
		return out, err
	case "", "text":
		return nil, nil
	}
	return nil, badRequest("text.format: type %q is not supported for this model", f.Type)
}

func chatParts(c responses.Content, acc accepts) (translate.Content, error) {
	var out translate.Content
	for j, p := range c {
		switch p.Type {
		case responses.PartInputText, responses.PartOutputText:
			out = append(out, translate.Part{Type: translate.PartText, Text: p.Text})
		case responses.PartRefusal:
			out = append(out, translate.Part{Type: translate.PartText, Text: p.Refusal})
		case responses.PartInputImage:
			out = append(out, translate.Part{Type: translate.PartImageURL, ImageURL: &translate.ImageURL{URL: p.ImageURL}})
		case responses.PartInputFile:
			if !acc.pdf || (p.FileData == "" && p.FileID == "") {
				return nil, fmt.Errorf("content[%d]: input_file is not supported for this model (files need file_data or file_id and a model that takes PDF input)", j)
			}
			out = append(out, pdfPart(p.FileData, p.FileID, p.Filename))
		default:
			return nil, fmt.Errorf("content[%d]: part type %q is not supported for this model", j, p.Type)
		}
	}
	return out, nil
}

// outputText is a function_call_output's output: a string, or the text of its parts.
func outputText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []responses.Part
	_ = json.Unmarshal(raw, &parts)
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(p.Text)
	}
	return sb.String()
}

// responsesUsage is u in the Responses API's terms.
func responsesUsage(u openai.Usage) *responses.Usage {
	out := &responses.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.InputTokensDetails.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

// newResponse is the response object for r, without output yet.
func newResponse(r *responses.Request, model string) *responses.Response {
	resp := &responses.Response{ID: translate.NewID("resp_"), Object: "response", CreatedAt: time.Now().Unix(), Status: "in_progress",
		Model: model, Output: []responses.Item{}, ParallelToolCalls: r.ParallelToolCalls == nil || *r.ParallelToolCalls,
		ToolChoice: r.ToolChoice, Tools: r.Tools}
	if len(resp.ToolChoice) == 0 {
		resp.ToolChoice = json.RawMessage(`"auto"`)
	}
	if resp.Tools == nil {
		resp.Tools = []responses.Tool{}
	}
	if r.Instructions != "" {
		resp.Instructions = &r.Instructions
	}
	return resp
}

// finishResponse sets the final status from the chat finish_reason, and the usage.
func finishResponse(resp *responses.Response, finish string, u openai.Usage) {
	resp.Status = "completed"
	switch finish {
	case translate.FinishLength:
		resp.Status, resp.IncompleteDetails = "incomplete", &responses.Incomplete{Reason: "max_output_tokens"}
	case translate.FinishContentFilter:
		resp.Status, resp.IncompleteDetails = "incomplete", &responses.Incomplete{Reason: "content_filter"}
	}
	resp.Usage = responsesUsage(u)
}

func messageItem(text string) responses.Item {
	return responses.Item{Type: responses.ItemMessage, ID: translate.NewID("msg_"), Status: "completed", Role: translate.RoleAssistant,
		Content: responses.Content{{Type: responses.PartOutputText, Text: text, Annotations: []any{}}}}
}

func reasoningItem(text string) responses.Item {
	return responses.Item{Type: responses.ItemReasoning, ID: translate.NewID("rs_"), Summary: []responses.SummaryPart{{Type: responses.PartSummaryText, Text: text}}}
}

func callItem(id, name, args string) responses.Item {
	return responses.Item{Type: responses.ItemFunctionCall, ID: translate.NewID("fc_"), Status: "completed", CallID: id, Name: name, Arguments: &args}
}

func (a *adapter) doResponses(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	cr, r, err := responsesToChat(c.Body, acceptsOf(c))
	if err != nil {
		return nil, err
	}
	ans, err := a.do(ctx, c, cr)
	if err != nil {
		return nil, err
	}
	out := newResponse(r, c.Model)
	if ans.reasoning != "" {
		out.Output = append(out.Output, reasoningItem(ans.reasoning))
	}
	if ans.text != "" {
		out.Output = append(out.Output, messageItem(ans.text))
	}
	for _, tc := range ans.calls {
		out.Output = append(out.Output, callItem(tc.ID, tc.Function.Name, tc.Function.Arguments))
	}
	finishResponse(out, ans.finish, ans.usage)
	body, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &provider.Response{Body: body, Usage: ans.usage}, nil
}

func (a *adapter) streamResponses(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	cr, r, err := responsesToChat(c.Body, acceptsOf(c))
	if err != nil {
		return nil, err
	}
	s, err := a.stream(ctx, c, cr)
	if err != nil {
		return nil, err
	}
	rs := &responsesStream{src: chunkSource{s}, resp: newResponse(r, c.Model), open: -1}
	rs.q = &queue{chat: s, fill: rs.fill}
	return rs.q, nil
}

// responsesStream turns chat chunks into Responses events: response.created and
// response.in_progress first; for each run of reasoning, text or one tool call an output
// item with its added, delta and done events; response.completed (with the output and the
// usage) last.
type responsesStream struct {
	q       *queue
	src     chunkSource
	resp    *responses.Response
	started bool
	seq     int
	open    int // output index of the open item, -1 if none
	item    responses.Item
	buf     strings.Builder
	finish  string
}

// event is a Responses event with its sequence number; fields holds the rest.
func (rs *responsesStream) event(typ string, fields map[string]any) {
	fields["type"] = typ
	fields["sequence_number"] = rs.seq
	rs.seq++
	rs.q.push(fields)
}

func (rs *responsesStream) fill() error {
	if !rs.started {
		rs.started = true
		snapshot := *rs.resp
		rs.event(responses.EventCreated, map[string]any{"response": &snapshot})
		rs.event(responses.EventInProgress, map[string]any{"response": &snapshot})
		return nil
	}
	ch, err := rs.src.next()
	if errors.Is(err, io.EOF) {
		rs.closeItem()
		finishResponse(rs.resp, rs.finish, rs.q.chat.Usage())
		typ := responses.EventCompleted
		if rs.resp.Status == "incomplete" {
			typ = responses.EventIncomplete
		}
		rs.event(typ, map[string]any{"response": rs.resp})
		return io.EOF
	}
	if err != nil {
		return err
	}
	if f := dispatch(ch, rs); f != "" {
		rs.finish = f
	}
	return nil
}

func (rs *responsesStream) reasoning(t string) {
	rs.openItem(responses.ItemReasoning, "", "")
	rs.buf.WriteString(t)
	rs.event(responses.EventSummaryTextDelta, map[string]any{"item_id": rs.item.ID, "output_index": rs.open, "summary_index": 0, "delta": t})
}

func (rs *responsesStream) text(t string) {
	rs.openItem(responses.ItemMessage, "", "")
	rs.buf.WriteString(t)
	rs.event(responses.EventOutputTextDelta, map[string]any{"item_id": rs.item.ID, "output_index": rs.open, "content_index": 0, "delta": t, "logprobs": []any{}})
}

func (rs *responsesStream) toolCall(id, name string) {
	rs.openItem(responses.ItemFunctionCall, id, name)
}

func (rs *responsesStream) arguments(args string) {
	if rs.item.Type == responses.ItemFunctionCall {
		rs.buf.WriteString(args)
		rs.event(responses.EventArgumentsDelta, map[string]any{"item_id": rs.item.ID, "output_index": rs.open, "delta": args})
	}
}

// openItem starts an output item of type typ unless one is open (function calls always
// start their own); an item of another type is closed first.
func (rs *responsesStream) openItem(typ, callID, name string) {
	if rs.open >= 0 && rs.item.Type == typ && typ != responses.ItemFunctionCall {
		return
	}
	rs.closeItem()
	rs.open = len(rs.resp.Output)
	rs.resp.Output = append(rs.resp.Output, responses.Item{}) // its place; filled when done
	rs.buf.Reset()
	switch typ {
	case responses.ItemReasoning:
		rs.item = reasoningItem("")
		rs.event(responses.EventOutputItemAdded, map[string]any{"output_index": rs.open,
			"item": map[string]any{"type": rs.item.Type, "id": rs.item.ID, "summary": []any{}}})
		rs.event(responses.EventSummaryPartAdded, map[string]any{"item_id": rs.item.ID, "output_index": rs.open, "summary_index": 0,
			"part": responses.SummaryPart{Type: responses.PartSummaryText}})
	case responses.ItemMessage:
		rs.item = messageItem("")
		// Clients parse the added item: it must carry its (empty) content.
		rs.event(responses.EventOutputItemAdded, map[string]any{"output_index": rs.open, "item": map[string]any{
			"type": rs.item.Type, "id": rs.item.ID, "status": "in_progress", "role": rs.item.Role, "content": []any{}}})
		rs.event(responses.EventContentPartAdded, map[string]any{"item_id": rs.item.ID, "output_index": rs.open, "content_index": 0,
			"part": responses.Part{Type: responses.PartOutputText, Annotations: []any{}}})
	case responses.ItemFunctionCall:
		rs.item = callItem(callID, name, "")
		rs.item.Status = "in_progress"
		rs.event(responses.EventOutputItemAdded, map[string]any{"output_index": rs.open, "item": rs.item})
	}
}

// closeItem sends the open item's done events and puts it in the response's output.
func (rs *responsesStream) closeItem() {
	if rs.open < 0 {
		return
	}
	text := rs.buf.String()
	base := func() map[string]any { return map[string]any{"item_id": rs.item.ID, "output_index": rs.open} }
	var done responses.Item
	switch rs.item.Type {
	case responses.ItemReasoning:
		done = reasoningItem(text)
		part := done.Summary[0]
		ev := base()
		ev["summary_index"], ev["text"] = 0, text
		rs.event(responses.EventSummaryTextDone, ev)
		ev = base()
		ev["summary_index"], ev["part"] = 0, part
		rs.event(responses.EventSummaryPartDone, ev)
	case responses.ItemMessage:
		done = messageItem(text)
		ev := base()
		ev["content_index"], ev["text"], ev["logprobs"] = 0, text, []any{}
		rs.event(responses.EventOutputTextDone, ev)
		ev = base()
		ev["content_index"], ev["part"] = 0, done.Content[0]
		rs.event(responses.EventContentPartDone, ev)
	case responses.ItemFunctionCall:
		if text == "" {
			text = "{}"
		}
		done = callItem(rs.item.CallID, rs.item.Name, text)
		ev := base()
		ev["arguments"] = text
		rs.event(responses.EventArgumentsDone, ev)
	}
	done.ID = rs.item.ID
	rs.resp.Output[rs.open] = done
	rs.event(responses.EventOutputItemDone, map[string]any{"output_index": rs.open, "item": done})
	rs.open = -1
	rs.item = responses.Item{}
}
