package viachat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/llmgate/llmgate/internal/anthropic"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
	"github.com/llmgate/llmgate/internal/tokens"
)

// messagesToChat translates a Messages request. System blocks become one system message;
// tool_result blocks become tool messages ahead of the user's other content; thinking blocks
// of earlier turns are dropped (chat has no place for them); tools with an input_schema
// become function tools and server tools (web_search, ...) are refused. thinking becomes
// reasoning_effort, top_k is kept and PDF documents become file parts where the deployment
// takes them (acc); otherwise thinking and top_k are dropped and PDFs refused.
func messagesToChat(body []byte, acc accepts) (*chatRequest, error) {
	r, err := anthropic.DecodeRequest(body)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	cr := &chatRequest{MaxTokens: r.MaxTokens, Temperature: r.Temperature, TopP: r.TopP, Stop: r.StopSequences}
	if t := r.Thinking; t != nil && t.Type == "enabled" && acc.reasoning {
		cr.ReasoningEffort = reasoningEffort(t.BudgetTokens)
	}
	if acc.topK {
		cr.TopK = r.TopK
	}
	if r.Metadata != nil {
		cr.User = r.Metadata.UserID
	}
	if sys := textParts(r.System); len(sys) > 0 {
		cr.Messages = append(cr.Messages, translate.Message{Role: translate.RoleSystem, Content: sys})
	}
	for i, m := range r.Messages {
		msgs, err := messageToChat(m, acc)
		if err != nil {
			return nil, badRequest("messages.%d: %v", i, err)
		}
		cr.Messages = append(cr.Messages, msgs...)
	}
	for i, t := range r.Tools {
		if len(t.InputSchema) == 0 {
			return nil, badRequest("tools.%d: the server tool %q is not supported on this model's deployment", i, t.Type)
		}
		cr.Tools = append(cr.Tools, translate.Tool{Type: "function", Function: translate.FunctionDef{Name: t.Name, Description: t.Description, Parameters: t.InputSchema}})
	}
	if tc := r.ToolChoice; tc != nil && len(cr.Tools) > 0 {
		switch tc.Type {
		case "any":
			cr.ToolChoice = translate.ToolChoiceRequired
		case "tool":
			cr.ToolChoice = map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}}
		case "none":
			cr.ToolChoice = translate.ToolChoiceNone
		default:
			cr.ToolChoice = translate.ToolChoiceAuto
		}
		if tc.DisableParallelToolUse {
			cr.ParallelToolCalls = new(bool)
		}
	}
	return cr, nil
}

func messageToChat(m anthropic.Message, acc accepts) ([]translate.Message, error) {
	var out []translate.Message
	var parts translate.Content
	var calls []translate.ToolCall
	for j, b := range m.Content {
		switch b.Type {
		case anthropic.BlockText:
			if b.Text != "" {
				parts = append(parts, translate.Part{Type: translate.PartText, Text: b.Text, CacheControl: b.CacheControl})
			}
		case anthropic.BlockImage:
			p, err := imagePart(b.Source)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		case anthropic.BlockDocument:
			p, err := documentPart(b, acc)
			if err != nil {
				return nil, fmt.Errorf("content.%d: %w", j, err)
			}
			parts = append(parts, p)
		case anthropic.BlockToolUse:
			args := string(b.Input)
			if args == "" {
				args = "{}"
			}
			calls = append(calls, translate.ToolCall{ID: b.ID, Type: "function", Function: translate.FunctionCall{Name: b.Name, Arguments: args}})
		case anthropic.BlockToolResult:
			text := ""
			if b.Content != nil {
				text = b.Content.Text()
			}
			if b.IsError && text == "" {
				text = "error"
			}
			out = append(out, translate.Message{Role: translate.RoleTool, ToolCallID: b.ToolUseID, Content: translate.Content{{Type: translate.PartText, Text: text}}})
		case anthropic.BlockThinking, anthropic.BlockRedactedThinking:
		default:
			return nil, fmt.Errorf("content.%d: block type %q is not supported on this model's deployment", j, b.Type)
		}
	}
	switch m.Role {
	case translate.RoleSystem:
		if len(parts) > 0 {
			out = append(out, translate.Message{Role: translate.RoleSystem, Content: parts})
		}
		return out, nil
	case translate.RoleUser:
	case translate.RoleAssistant:
		if len(parts) > 0 || len(calls) > 0 {
			out = append(out, translate.Message{Role: translate.RoleAssistant, Content: parts, ToolCalls: calls})
		}
		return out, nil
	default:
		return nil, fmt.Errorf("role: Input should be 'user' or 'assistant', not %q", m.Role)
	}
	if len(parts) > 0 {
		out = append(out, translate.Message{Role: translate.RoleUser, Content: parts})
	}
	return out, nil
}

// documentPart is a document block as a chat part: a text document as text, a base64 PDF
// as a file part where the model takes PDFs.
func documentPart(b anthropic.Block, acc accepts) (translate.Part, error) {
	src := b.Source
	switch {
	case src == nil:
		return translate.Part{}, errors.New("document: source is required")
	case src.Type == "text":
		return translate.Part{Type: translate.PartText, Text: src.Data}, nil
	case src.Type == "base64" && src.MediaType == "application/pdf" && acc.pdf:
		return pdfPart("data:application/pdf;base64,"+src.Data, "", b.Title), nil
	case src.Type == "base64" && src.MediaType == "application/pdf":
		return translate.Part{}, errors.New("PDF documents are not supported on this model's deployment (its model does not take PDF input)")
	}
	return translate.Part{}, fmt.Errorf("documents with a %q source are not supported on this model's deployment", src.Type)
}

func imagePart(src *anthropic.Source) (translate.Part, error) {
	if src == nil {
		return translate.Part{}, errors.New("image: source is required")
	}
	url := src.URL
	if src.Type == "base64" {
		url = "data:" + src.MediaType + ";base64," + src.Data
	}
	if url == "" {
		return translate.Part{}, errors.New("image: source has no data")
	}
	return translate.Part{Type: translate.PartImageURL, ImageURL: &translate.ImageURL{URL: url}}, nil
}

func textParts(c anthropic.Content) translate.Content {
	var out translate.Content
	for _, b := range c {
		if b.Type == anthropic.BlockText && b.Text != "" {
			out = append(out, translate.Part{Type: translate.PartText, Text: b.Text, CacheControl: b.CacheControl})
		}
	}
	return out
}

// stopReason maps a chat finish_reason to a Messages stop_reason.
func stopReason(finish string) string {
	switch finish {
	case translate.FinishLength:
		return anthropic.StopMaxTokens
	case translate.FinishToolCalls, "function_call":
		return anthropic.StopToolUse
	case translate.FinishContentFilter:
		return anthropic.StopRefusal
	}
	return anthropic.StopEndTurn
}

// messagesUsage is u in Anthropic's terms: input_tokens without the cache reads and writes.
func messagesUsage(u openai.Usage) anthropic.Usage {
	cached := 0
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	return anthropic.Usage{
		InputTokens:              max(u.PromptTokens-cached-u.CacheCreationInputTokens, 0),
		OutputTokens:             u.CompletionTokens,
		CacheReadInputTokens:     cached,
		CacheCreationInputTokens: u.CacheCreationInputTokens,
	}
}

// toolInput is a tool call's arguments as a JSON object; arguments that are not one become {}.
func toolInput(args string) json.RawMessage {
	s := strings.TrimSpace(args)
	if s == "" || s[0] != '{' || !json.Valid([]byte(s)) {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}

func (a *adapter) doMessages(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	cr, err := messagesToChat(c.Body, acceptsOf(c))
	if err != nil {
		return nil, err
	}
	ans, err := a.do(ctx, c, cr)
	if err != nil {
		return nil, err
	}
	out := anthropic.Response{ID: translate.NewID("msg_"), Type: "message", Role: translate.RoleAssistant, Model: c.Model, Content: []anthropic.Block{}}
	if ans.reasoning != "" {
		out.Content = append(out.Content, anthropic.Block{Type: anthropic.BlockThinking, Thinking: &ans.reasoning, Signature: new(string)})
	}
	if ans.text != "" {
		out.Content = append(out.Content, anthropic.Block{Type: anthropic.BlockText, Text: ans.text})
	}
	for _, tc := range ans.calls {
		out.Content = append(out.Content, anthropic.Block{Type: anthropic.BlockToolUse, ID: tc.ID, Name: tc.Function.Name, Input: toolInput(tc.Function.Arguments)})
	}
	sr := stopReason(ans.finish)
	out.StopReason = &sr
	out.Usage = messagesUsage(ans.usage)
	body, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &provider.Response{Body: body, Usage: ans.usage}, nil
}

// countTokens estimates a Messages request's input tokens as the gateway prices prompts:
// the translated messages, plus the tools' JSON.
func countTokens(c *provider.Call) (*provider.Response, error) {
	cr, err := messagesToChat(c.Body, acceptsOf(c))
	if err != nil {
		return nil, err
	}
	msgs, err := json.Marshal(cr.Messages)
	if err != nil {
		return nil, err
	}
	n := tokens.EstimatePrompt(&openai.Request{Messages: msgs})
	if len(cr.Tools) > 0 {
		tools, _ := json.Marshal(cr.Tools)
		n += tokens.EstimateBytes(len(tools))
	}
	body, _ := json.Marshal(map[string]int{"input_tokens": n})
	return &provider.Response{Body: body}, nil
}

func (a *adapter) streamMessages(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	cr, err := messagesToChat(c.Body, acceptsOf(c))
	if err != nil {
		return nil, err
	}
	s, err := a.stream(ctx, c, cr)
	if err != nil {
		return nil, err
	}
	ms := &messagesStream{src: chunkSource{s}, id: translate.NewID("msg_"), model: c.Model, block: -1}
	ms.q = &queue{chat: s, fill: ms.fill}
	return ms.q, nil
}

// messagesStream turns chat chunks into Messages events: message_start and ping first, a
// content block per run of text, reasoning or one tool call, then message_delta (stop reason
// and usage) and message_stop.
type messagesStream struct {
	q       *queue
	src     chunkSource
	id      string
	model   string
	started bool
	block   int    // index of the open block, -1 if none
	kind    string // its type
	finish  string
}

func (ms *messagesStream) fill() error {
	if !ms.started {
		ms.started = true
		ms.q.push(anthropic.Event{Type: anthropic.EventMessageStart, Message: &anthropic.Response{
			ID: ms.id, Type: "message", Role: translate.RoleAssistant, Model: ms.model, Content: []anthropic.Block{},
			Usage: messagesUsage(ms.q.chat.Usage()),
		}})
		ms.q.push(anthropic.Event{Type: anthropic.EventPing})
		return nil
	}
	ch, err := ms.src.next()
	if errors.Is(err, io.EOF) {
		ms.closeBlock()
		sr := stopReason(ms.finish)
		u := messagesUsage(ms.q.chat.Usage())
		ms.q.push(anthropic.Event{Type: anthropic.EventMessageDelta, Delta: &anthropic.EventDelta{StopReason: &sr}, Usage: &u})
		ms.q.push(anthropic.Event{Type: anthropic.EventMessageStop})
		return io.EOF
	}
	if err != nil {
		return err
	}
	if f := dispatch(ch, ms); f != "" {
		ms.finish = f
	}
	return nil
}

func (ms *messagesStream) reasoning(t string) {
	ms.open(anthropic.BlockThinking, anthropic.Block{Type: anthropic.BlockThinking, Thinking: new(string), Signature: new(string)})
	ms.delta(anthropic.EventDelta{Type: "thinking_delta", Thinking: &t})
}

func (ms *messagesStream) text(t string) {
	ms.open(anthropic.BlockText, anthropic.Block{Type: anthropic.BlockText})
	ms.delta(anthropic.EventDelta{Type: "text_delta", Text: &t})
}

func (ms *messagesStream) toolCall(id, name string) {
	ms.open(anthropic.BlockToolUse, anthropic.Block{Type: anthropic.BlockToolUse, ID: id, Name: name, Input: json.RawMessage("{}")})
}

func (ms *messagesStream) arguments(args string) {
	if ms.kind == anthropic.BlockToolUse {
		ms.delta(anthropic.EventDelta{Type: "input_json_delta", PartialJSON: &args})
	}
}

// open starts a block of kind unless one is open; a block of another kind is closed first.
func (ms *messagesStream) open(kind string, start anthropic.Block) {
	if ms.block >= 0 && ms.kind == kind && kind != anthropic.BlockToolUse {
		return
	}
	ms.closeBlock()
	ms.block++
	i := ms.block
	ms.kind = kind
	if kind == anthropic.BlockText {
		start.Text = ""
	}
	ms.q.push(struct {
		Type         string          `json:"type"`
		Index        int             `json:"index"`
		ContentBlock json.RawMessage `json:"content_block"`
	}{anthropic.EventContentBlockStart, i, startBlock(start)})
}

// startBlock is a content_block_start's block: with its empty text, thinking or input.
func startBlock(b anthropic.Block) json.RawMessage {
	var data []byte
	switch b.Type {
	case anthropic.BlockText:
		data, _ = json.Marshal(map[string]string{"type": b.Type, "text": ""})
	case anthropic.BlockThinking:
		data, _ = json.Marshal(map[string]string{"type": b.Type, "thinking": "", "signature": ""})
	default:
		data, _ = json.Marshal(b)
	}
	return data
}

func (ms *messagesStream) delta(d anthropic.EventDelta) {
	i := ms.block
	ms.q.push(anthropic.Event{Type: anthropic.EventContentBlockDelta, Index: &i, Delta: &d})
}

func (ms *messagesStream) closeBlock() {
	if ms.block < 0 || ms.kind == "" {
		return
	}
	i := ms.block
	ms.q.push(anthropic.Event{Type: anthropic.EventContentBlockStop, Index: &i})
	ms.kind = ""
}
