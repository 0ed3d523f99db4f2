package bedrock

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// converse is what Converse and ConverseStream inputs share.
type converse struct {
	messages   []types.Message
	system     []types.SystemContentBlock
	inference  *types.InferenceConfiguration
	toolConfig *types.ToolConfiguration
}

func (cv *converse) input(model string) *bedrockruntime.ConverseInput {
	return &bedrockruntime.ConverseInput{
		ModelId: aws.String(model), Messages: cv.messages, System: cv.system,
		InferenceConfig: cv.inference, ToolConfig: cv.toolConfig,
	}
}

func (cv *converse) streamInput(model string) *bedrockruntime.ConverseStreamInput {
	return &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(model), Messages: cv.messages, System: cv.system,
		InferenceConfig: cv.inference, ToolConfig: cv.toolConfig,
	}
}

// emptySchema is the input schema of a function declared without parameters.
const emptySchema = `{"type":"object","properties":{}}`

// buildConverse translates an OpenAI chat request. System messages become system blocks;
// tool results become toolResult blocks of a user turn; consecutive turns of one role are
// merged, as Converse requires alternation. tool_choice "none" has no Converse equivalent:
// the tools are still declared, with the model's default choice.
func buildConverse(r *translate.Request, params config.LiteLLMParams) (*converse, error) {
	cv := &converse{}
	for i := range r.Messages {
		m := &r.Messages[i]
		if m.IsSystem() {
			if text := m.Content.Text(); text != "" {
				cv.system = append(cv.system, &types.SystemContentBlockMemberText{Value: text})
			}
			continue
		}
		role, blocks, err := convertMessage(m)
		if err != nil {
			return nil, translate.BadRequest(name, "messages[%d]: %v", i, err)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(cv.messages); n > 0 && cv.messages[n-1].Role == role {
			cv.messages[n-1].Content = append(cv.messages[n-1].Content, blocks...)
			continue
		}
		cv.messages = append(cv.messages, types.Message{Role: role, Content: blocks})
	}
	cv.inference = inferenceConfig(r, params)
	if len(r.Tools) > 0 {
		tc, err := toolConfig(r)
		if err != nil {
			return nil, err
		}
		cv.toolConfig = tc
	}
	return cv, nil
}

func convertMessage(m *translate.Message) (types.ConversationRole, []types.ContentBlock, error) {
	switch m.Role {
	case translate.RoleTool:
		res := types.ToolResultBlock{
			ToolUseId: aws.String(m.ToolCallID),
			Content:   []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: m.Content.Text()}},
		}
		return types.ConversationRoleUser, []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: res}}, nil
	case translate.RoleAssistant:
		var blocks []types.ContentBlock
		if text := m.Content.Text(); text != "" {
			blocks = append(blocks, &types.ContentBlockMemberText{Value: text})
		}
		for _, tc := range m.ToolCalls {
			args, err := tc.Function.ArgumentsObject()
			if err != nil {
				return "", nil, err
			}
			input, err := jsonDocument(args)
			if err != nil {
				return "", nil, err
			}
			blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
				ToolUseId: aws.String(tc.ID), Name: aws.String(tc.Function.Name), Input: input,
			}})
		}
		return types.ConversationRoleAssistant, blocks, nil
	}
	var blocks []types.ContentBlock
	for _, p := range m.Content {
		switch p.Type {
		case translate.PartText:
			if p.Text != "" {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: p.Text})
			}
		case translate.PartImageURL:
			img, err := imageBlock(p.ImageURL.URL)
			if err != nil {
				return "", nil, err
			}
			blocks = append(blocks, &types.ContentBlockMemberImage{Value: img})
		}
	}
	return types.ConversationRoleUser, blocks, nil
}

// imageBlock sends a data: URL's bytes and an s3:// URL as an S3 location; Converse cannot
// fetch http URLs and the gateway does not fetch them for it.
func imageBlock(u string) (types.ImageBlock, error) {
	if uri, ok := strings.CutPrefix(u, "s3://"); ok {
		format, err := imageFormat(uri)
		if err != nil {
			return types.ImageBlock{}, err
		}
		return types.ImageBlock{Format: format, Source: &types.ImageSourceMemberS3Location{Value: types.S3Location{Uri: aws.String(u)}}}, nil
	}
	d, ok := translate.ParseDataURL(u)
	if !ok {
		return types.ImageBlock{}, fmt.Errorf("bedrock takes images as data: or s3:// URLs, not %.40q", u)
	}
	format, err := imageFormat(d.MediaType)
	if err != nil {
		return types.ImageBlock{}, err
	}
	b, err := base64.StdEncoding.DecodeString(d.Base64)
	if err != nil {
		return types.ImageBlock{}, fmt.Errorf("image data: %w", err)
	}
	return types.ImageBlock{Format: format, Source: &types.ImageSourceMemberBytes{Value: b}}, nil
}

// imageFormat reads the format from a media type ("image/png") or a file name ("a/b.png").
func imageFormat(s string) (types.ImageFormat, error) {
	s = strings.ToLower(s)
	for _, f := range []types.ImageFormat{types.ImageFormatPng, types.ImageFormatJpeg, types.ImageFormatGif, types.ImageFormatWebp} {
		if strings.HasSuffix(s, string(f)) {
			return f, nil
		}
	}
	if strings.HasSuffix(s, "jpg") {
		return types.ImageFormatJpeg, nil
	}
	return "", fmt.Errorf("image type %q is not one of png, jpeg, gif, webp", s)
}

func inferenceConfig(r *translate.Request, params config.LiteLLMParams) *types.InferenceConfiguration {
	ic := &types.InferenceConfiguration{StopSequences: r.Stop}
	if n := r.OutputLimit(); n != nil {
		ic.MaxTokens = aws.Int32(int32(*n))
	} else if params.MaxTokens > 0 {
		ic.MaxTokens = aws.Int32(int32(params.MaxTokens))
	}
	if r.Temperature != nil {
		ic.Temperature = aws.Float32(float32(*r.Temperature))
	}
	if r.TopP != nil {
		ic.TopP = aws.Float32(float32(*r.TopP))
	}
	if ic.MaxTokens == nil && ic.Temperature == nil && ic.TopP == nil && len(ic.StopSequences) == 0 {
		return nil
	}
	return ic
}

func toolConfig(r *translate.Request) (*types.ToolConfiguration, error) {
	tc := &types.ToolConfiguration{}
	for i, t := range r.Tools {
		schema := t.Function.Parameters
		if len(schema) == 0 || string(schema) == "null" {
			schema = json.RawMessage(emptySchema)
		}
		doc, err := jsonDocument(schema)
		if err != nil {
			return nil, translate.BadRequest(name, "tools[%d].function.parameters: %v", i, err)
		}
		spec := types.ToolSpecification{Name: aws.String(t.Function.Name), InputSchema: &types.ToolInputSchemaMemberJson{Value: doc}}
		if t.Function.Description != "" {
			spec.Description = aws.String(t.Function.Description)
		}
		tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: spec})
	}
	if c := r.ToolChoice; c != nil {
		switch c.Mode {
		case translate.ToolChoiceAuto:
			tc.ToolChoice = &types.ToolChoiceMemberAuto{}
		case translate.ToolChoiceRequired:
			tc.ToolChoice = &types.ToolChoiceMemberAny{}
		case translate.ToolChoiceFunction:
			tc.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(c.Name)}}
		}
	}
	return tc, nil
}

// jsonDocument turns JSON into a Smithy document (decoded to Go values: the document
// encoder does not take raw JSON).
func jsonDocument(raw json.RawMessage) (document.Interface, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return document.NewLazyDocument(v), nil
}
