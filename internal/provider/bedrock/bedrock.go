// Package bedrock calls Amazon Bedrock through aws-sdk-go-v2's bedrockruntime: Converse and
// ConverseStream for OpenAI-format chat requests, InvokeModel for Titan and Cohere
// embeddings, and answers in OpenAI's format; Anthropic Messages calls to Claude models go
// in Anthropic's own format over InvokeModel and InvokeModelWithResponseStream.
//
// Credentials come from litellm_params aws_access_key_id / aws_secret_access_key /
// aws_session_token when set, else from the SDK's default chain (in Lambda, the function's
// role). The region is aws_region_name, else the SDK's (AWS_REGION). api_base, when set,
// is the endpoint (a VPC endpoint, or a fake one in tests). The SDK does not retry: the
// router does.
package bedrock

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

const name = "bedrock"

// Provider calls Bedrock. The zero value is ready to use; it caches one SDK client per
// region, endpoint and credentials.
type Provider struct {
	// HTTPClient sends the SDK's requests; nil means the SDK's default.
	HTTPClient aws.HTTPClient

	mu      sync.Mutex
	clients map[clientKey]*bedrockruntime.Client
}

var _ provider.Provider = (*Provider)(nil)

type clientKey struct {
	region, endpoint                 string
	accessKey, secretKey, sessionTok string
}

// client returns the cached client for the deployment's region, endpoint and credentials.
func (p *Provider) client(ctx context.Context, params config.LiteLLMParams) (*bedrockruntime.Client, error) {
	k := clientKey{
		region: params.AWSRegionName, endpoint: params.APIBase,
		accessKey: params.AWSAccessKeyID, secretKey: params.AWSSecretAccessKey, sessionTok: params.AWSSessionToken,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[k]; ok {
		return c, nil
	}
	var opts []func(*awsconfig.LoadOptions) error
	if k.region != "" {
		opts = append(opts, awsconfig.WithRegion(k.region))
	}
	if k.accessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(k.accessKey, k.secretKey, k.sessionTok)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, configError("load AWS config: " + err.Error())
	}
	if cfg.Region == "" {
		return nil, configError("no AWS region: set litellm_params.aws_region_name or AWS_REGION")
	}
	c := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		if k.endpoint != "" {
			o.BaseEndpoint = aws.String(k.endpoint)
		}
		hc := p.HTTPClient
		if hc == nil {
			hc = awshttp.NewBuildableClient()
		}
		o.HTTPClient = boundedEvents{readOnlyBodies{hc}}
		o.Retryer = aws.NopRetryer{}
	})
	if p.clients == nil {
		p.clients = map[clientKey]*bedrockruntime.Client{}
	}
	p.clients[k] = c
	return c, nil
}

// readOnlyBodies sends the SDK's requests with their bodies' WriteTo hidden. smithy-go
// closes a request's body once the answer's headers are in, and its closed body answers
// WriteTo with io.EOF; net/http's last read of a body (checking for bytes beyond its
// Content-Length) takes that for a failed write when the headers came first, and closes the
// connection under the answer being read: a stream then fails with "use of closed network
// connection" (seen ~1 in 100 streams on a loaded machine). Read after close is a clean EOF.
type readOnlyBodies struct{ aws.HTTPClient }

func (c readOnlyBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return c.HTTPClient.Do(r)
}

// configError is a deployment misconfiguration: another deployment may work.
func configError(msg string) *provider.Error {
	return &provider.Error{
		Status: http.StatusInternalServerError, Type: openai.TypeServer, Provider: name, Retryable: true,
		Message: name + ": " + msg,
	}
}

// modelID strips LiteLLM's "converse/" and "invoke/" route prefixes
// ("bedrock/converse/<model id>"). Chat is always served by Converse; the route matters to
// Messages calls (see Native).
func modelID(model string) string {
	if id, ok := strings.CutPrefix(model, "converse/"); ok {
		return id
	}
	return strings.TrimPrefix(model, "invoke/")
}

// withTimeout bounds ctx by the call's timeout, if any.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// apiError classifies an SDK error. Bedrock's exceptions carry their kind in their code;
// the HTTP status decides for codes not listed. ValidationExceptions about input length are
// context window errors.
func apiError(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return translate.TransportError(name, err)
	}
	msg := name + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
	status := http.StatusInternalServerError
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 400 {
		status = re.HTTPStatusCode()
	}
	switch ae.ErrorCode() {
	case "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException":
		status = http.StatusTooManyRequests
	case "ModelTimeoutException":
		status = http.StatusRequestTimeout
	case "ServiceUnavailableException", "ModelNotReadyException":
		status = http.StatusServiceUnavailable
	case "InternalServerException", "ModelErrorException", "ModelStreamErrorException":
		status = http.StatusInternalServerError
	case "AccessDeniedException":
		status = http.StatusForbidden
	case "UnrecognizedClientException", "ExpiredTokenException":
		status = http.StatusUnauthorized
	case "ResourceNotFoundException":
		status = http.StatusNotFound
	case "ValidationException":
		status = http.StatusBadRequest
		if isContextWindow(ae.ErrorMessage()) {
			return translate.ContextWindowError(name, msg)
		}
	}
	return translate.HTTPError(name, status, nil, msg)
}

func isContextWindow(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "too long") || strings.Contains(m, "context window") ||
		strings.Contains(m, "exceed context limit") || strings.Contains(m, "maximum context length")
}
