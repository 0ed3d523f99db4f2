package gemini

import (
	"encoding/json"
	"fmt"
	"mime"
	"path"
	"strings"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// generateRequest is the body of models/{model}:generateContent and :streamGenerateContent.
type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Tools             []tools           `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

// part is a content part, in requests and answers.
type part struct {
	Text             string            `json:"text,omitempty"`
	Thought          bool              `json:"thought,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FileData         *fileData         `json:"fileData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
	// ThoughtSignature accompanies a thinking model's function call and must come back with it.
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

// thoughtSeparator joins a tool call id and the call's thought signature, as LiteLLM does, so
// the signature survives the client's round trip in tool_calls[].id.
const thoughtSeparator = "__thought__"

type blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"` // base64
}

type fileData struct {
	MimeType string `json:"mimeType"`
	FileURI  string `json:"fileUri"`
}

type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type functionResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type tools struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
}

// functionDeclaration sends OpenAI's parameters as parametersJsonSchema, which takes JSON
// Schema as is (the older "parameters" field takes only an OpenAPI subset).
type functionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
}

type functionCallingConfig struct {
	Mode                 string   `json:"mode"` // AUTO, ANY, NONE
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

type generationConfig struct {
	MaxOutputTokens    *int            `json:"maxOutputTokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	StopSequences      []string        `json:"stopSequences,omitempty"`
	CandidateCount     *int            `json:"candidateCount,omitempty"`
	ResponseMimeType   string          `json:"responseMimeType,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
}

// Gemini roles.
const (
	roleUser  = "user"
	roleModel = "model"
)

// buildRequest translates an OpenAI chat request. System messages become systemInstruction;
// assistant turns are "model" turns; tool results are functionResponse parts of a user turn,
// named after the call they answer; consecutive turns of one role are merged.
func buildRequest(r *translate.Request, params config.LiteLLMParams) (*generateRequest, error) {
	out := &generateRequest{}
	callNames := map[string]string{} // tool call id → function name
	for i := range r.Messages {
		m := &r.Messages[i]
		if m.IsSystem() {
			if text := m.Content.Text(); text != "" {
				if out.SystemInstruction == nil {
					out.SystemInstruction = &content{}
				}
				out.SystemInstruction.Parts = append(out.SystemInstruction.Parts, part{Text: text})
			}
			continue
		}
		role, parts, err := convertMessage(m, callNames)
		if err != nil {
			return nil, translate.BadRequest(name, "messages[%d]: %v", i, err)
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, parts...)
			continue
		}
		out.Contents = append(out.Contents, content{Role: role, Parts: parts})
	}
	if len(r.Tools) > 0 {
		decls := make([]functionDeclaration, len(r.Tools))
		for i, t := range r.Tools {
			decls[i] = functionDeclaration{Name: t.Function.Name, Description: t.Function.Description}
			if p := t.Function.Parameters; len(p) > 0 && string(p) != "null" {
				decls[i].ParametersJSONSchema = p
			}
		}
		out.Tools = []tools{{FunctionDeclarations: decls}}
		out.ToolConfig = convertToolChoice(r.ToolChoice)
	}
	out.GenerationConfig = convertGenerationConfig(r, params)
	return out, nil
}

func convertMessage(m *translate.Message, callNames map[string]string) (role string, parts []part, err error) {
	switch m.Role {
	case translate.RoleAssistant:
		if text := m.Content.Text(); text != "" {
			parts = append(parts, part{Text: text})
		}
		for _, tc := range m.ToolCalls {
			args, err := tc.Function.ArgumentsObject()
			if err != nil {
				return "", nil, err
			}
			callNames[tc.ID] = tc.Function.Name
			_, sig, _ := strings.Cut(tc.ID, thoughtSeparator)
			parts = append(parts, part{FunctionCall: &functionCall{Name: tc.Function.Name, Args: args}, ThoughtSignature: sig})
		}
		return roleModel, parts, nil
	case translate.RoleTool:
		fn := callNames[m.ToolCallID]
		if fn == "" {
			fn = m.Name
		}
		if fn == "" {
			return "", nil, fmt.Errorf("tool_call_id %q answers no earlier assistant tool call", m.ToolCallID)
		}
		resp, err := json.Marshal(map[string]string{"content": m.Content.Text()})
		if err != nil {
			return "", nil, err
		}
		return roleUser, []part{{FunctionResponse: &functionResponse{Name: fn, Response: resp}}}, nil
	}
	for _, p := range m.Content {
		switch p.Type {
		case translate.PartText:
			if p.Text != "" {
				parts = append(parts, part{Text: p.Text})
			}
		case translate.PartImageURL:
			ip, err := imagePart(p.ImageURL.URL)
			if err != nil {
				return "", nil, err
			}
			parts = append(parts, ip)
		}
	}
	return roleUser, parts, nil
}

// imagePart sends a data: URL inline and any other URL as fileData, whose mimeType Gemini
// requires: it is taken from the URL's extension.
func imagePart(u string) (part, error) {
	if d, ok := translate.ParseDataURL(u); ok {
		return part{InlineData: &blob{MimeType: d.MediaType, Data: d.Base64}}, nil
	}
	p := u
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	mt := mime.TypeByExtension(strings.ToLower(path.Ext(p)))
	if mt == "" {
		return part{}, fmt.Errorf("cannot tell the media type of image %q: send it as a data: URL", u)
	}
	mt, _, _ = strings.Cut(mt, ";")
	return part{FileData: &fileData{MimeType: mt, FileURI: u}}, nil
}

func convertToolChoice(tc *translate.ToolChoice) *toolConfig {
	if tc == nil {
		return nil
	}
	var c functionCallingConfig
	switch tc.Mode {
	case translate.ToolChoiceNone:
		c.Mode = "NONE"
	case translate.ToolChoiceRequired:
		c.Mode = "ANY"
	case translate.ToolChoiceFunction:
		c.Mode, c.AllowedFunctionNames = "ANY", []string{tc.Name}
	default:
		c.Mode = "AUTO"
	}
	return &toolConfig{FunctionCallingConfig: c}
}

func convertGenerationConfig(r *translate.Request, params config.LiteLLMParams) *generationConfig {
	g := generationConfig{
		MaxOutputTokens: r.OutputLimit(),
		Temperature:     r.Temperature,
		TopP:            r.TopP,
		StopSequences:   r.Stop,
	}
	if g.MaxOutputTokens == nil && params.MaxTokens > 0 {
		n := params.MaxTokens
		g.MaxOutputTokens = &n
	}
	if r.N != nil && *r.N > 1 {
		g.CandidateCount = r.N
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
			g.ResponseMimeType = "application/json"
		case "json_schema":
			g.ResponseMimeType = "application/json"
			if rf.JSONSchema != nil {
				g.ResponseJSONSchema = rf.JSONSchema.Schema
			}
		}
	}
	return &g
}
