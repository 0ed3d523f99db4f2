package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Decision is custom_key_generate's answer: {"decision": bool, "message": str}.
type Decision struct {
	Decision bool   `json:"decision"`
	Message  string `json:"message"`
}

// KeyDecider asks general_settings.custom_key_generate whether a key may be generated. It
// gets the /key/generate request body as sent. An error means no decision was had, and the
// key is refused (fail closed).
type KeyDecider interface {
	Decide(ctx context.Context, request []byte) (Decision, error)
}

// NewKeyDecider builds the decider for general_settings.custom_key_generate: an https://
// URL (a webhook) or an arn:aws:lambda: function ARN (invoked with the default AWS
// credentials). LiteLLM's Python hook paths cannot run here and are an error; an empty spec
// is no decider.
func NewKeyDecider(ctx context.Context, spec, region string) (KeyDecider, error) {
	switch {
	case spec == "":
		return nil, nil
	case strings.HasPrefix(spec, "https://"):
		return &Webhook{URL: spec, Client: &http.Client{Timeout: 10 * time.Second}}, nil
	case strings.HasPrefix(spec, "arn:aws:lambda:"):
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("custom_key_generate: load AWS config: %w", err)
		}
		return &LambdaDecider{ARN: spec, Client: lambda.NewFromConfig(cfg)}, nil
	}
	return nil, fmt.Errorf("custom_key_generate %q: llmgate cannot run Python hooks; use an https:// webhook or an arn:aws:lambda: function that answers {\"decision\": bool, \"message\": str}", spec)
}

// Webhook POSTs the request JSON to URL and reads the decision from a 200 answer.
type Webhook struct {
	URL    string
	Client *http.Client
}

// Decide implements KeyDecider.
func (wh *Webhook) Decide(ctx context.Context, request []byte) (Decision, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(request))
	if err != nil {
		return Decision{}, fmt.Errorf("custom_key_generate webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := wh.Client.Do(req)
	if err != nil {
		return Decision{}, fmt.Errorf("custom_key_generate webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Decision{}, fmt.Errorf("custom_key_generate webhook: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Decision{}, fmt.Errorf("custom_key_generate webhook answered HTTP %d", resp.StatusCode)
	}
	return parseDecision(body)
}

// LambdaInvoker is the part of the Lambda client the decider uses.
type LambdaInvoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// LambdaDecider invokes a Lambda function with the request JSON as its event.
type LambdaDecider struct {
	ARN    string
	Client LambdaInvoker
}

// Decide implements KeyDecider.
func (ld *LambdaDecider) Decide(ctx context.Context, request []byte) (Decision, error) {
	out, err := ld.Client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(ld.ARN), Payload: request})
	if err != nil {
		return Decision{}, fmt.Errorf("custom_key_generate lambda: %w", err)
	}
	if out.FunctionError != nil {
		return Decision{}, fmt.Errorf("custom_key_generate lambda failed: %s", aws.ToString(out.FunctionError))
	}
	return parseDecision(out.Payload)
}

func parseDecision(b []byte) (Decision, error) {
	var raw struct {
		Decision *bool  `json:"decision"`
		Message  string `json:"message"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Decision == nil {
		return Decision{}, errors.New(`custom_key_generate answer is not {"decision": bool, "message": str}`)
	}
	d := Decision{Decision: *raw.Decision, Message: raw.Message}
	if !d.Decision && d.Message == "" {
		d.Message = "Key generation was refused by custom_key_generate."
	}
	return d, nil
}
