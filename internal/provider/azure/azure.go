// Package azure calls Azure OpenAI. "azure/<deployment>" is sent to
// {api_base}/openai/deployments/{deployment}/chat/completions?api-version={api_version}
// (or /completions, /embeddings, /images/generations; Responses calls to {api_base}/openai/responses) with the key in the api-key header; request bodies,
// streams, usage and errors are handled as openaicompat handles them.
package azure

import (
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"strings"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/openaicompat"
)

// DefaultAPIVersion is the api-version used when neither litellm_params.api_version nor
// AZURE_API_VERSION is set: the newest generally available (non-preview) version of the
// Azure OpenAI data-plane inference API, and the first GA one with stream_options.
const DefaultAPIVersion = "2024-10-21"

// responsesSince is the first api-version that serves the Responses API.
const responsesSince = "2025-03-01-preview"

// streamOptionsSince is the first api-version that accepts stream_options (a preview);
// older versions answer 400 to it.
const streamOptionsSince = "2024-09-01"

// Environment variables read when litellm_params leaves the value empty, as LiteLLM does.
const (
	EnvAPIKey     = "AZURE_API_KEY"
	EnvAPIBase    = "AZURE_API_BASE"
	EnvAPIVersion = "AZURE_API_VERSION"
)

// New returns the Azure OpenAI provider, sending requests with hc.
func New(hc *http.Client) *openaicompat.Client {
	return openaicompat.NewWithResolver("azure", hc, Resolve).WithResponses()
}

// Resolve returns the endpoint of call c: its deployment URL with the api-version, and the
// api-key header. Azure AD tokens are not supported.
func Resolve(c *provider.Call) (openaicompat.Endpoint, error) {
	path, err := openaicompat.Path(c.Kind)
	if err != nil {
		return openaicompat.Endpoint{}, err
	}
	if c.Model == "" {
		return openaicompat.Endpoint{}, fmt.Errorf("azure: no deployment name (litellm_params.model: azure/<deployment>)")
	}
	base := param(c.Params.APIBase, EnvAPIBase)
	if base == "" {
		return openaicompat.Endpoint{}, fmt.Errorf("azure: api_base is required (litellm_params.api_base or %s)", EnvAPIBase)
	}
	key := param(c.Params.APIKey, EnvAPIKey)
	if key == "" {
		return openaicompat.Endpoint{}, fmt.Errorf("azure: no API key: set litellm_params.api_key or %s", EnvAPIKey)
	}
	version := param(c.Params.APIVersion, EnvAPIVersion)
	if version == "" {
		version = DefaultAPIVersion
	}
	// LiteLLM configs give the resource URL, sometimes with "/openai" already on it.
	base = strings.TrimSuffix(strings.TrimRight(base, "/"), "/openai")
	h := make(http.Header, 1+len(c.Params.Headers)+len(c.Params.ExtraHeaders))
	h.Set("Api-Key", key)
	openaicompat.AddHeaders(h, c)
	url := base + "/openai/deployments/" + neturl.PathEscape(c.Model) + path + "?api-version=" + neturl.QueryEscape(version)
	if c.Kind == provider.Responses || c.Kind == provider.StoredResponse {
		// The Responses API is not per deployment: the body's model names the deployment.
		if version < responsesSince {
			version = responsesSince
		}
		url = base + "/openai/responses?api-version=" + neturl.QueryEscape(version)
	}
	return openaicompat.Endpoint{
		URL:           url,
		Header:        h,
		Secret:        key,
		StreamOptions: acceptsStreamOptions(version),
	}, nil
}

// acceptsStreamOptions reports whether an api-version accepts stream_options: dated
// versions from 2024-09-01 on, and undated ones ("preview", "latest").
func acceptsStreamOptions(version string) bool {
	if len(version) < len("2006-01-02") || version[4] != '-' || version[7] != '-' {
		return true
	}
	return version[:10] >= streamOptionsSince
}

func param(v, env string) string {
	if v != "" {
		return v
	}
	return os.Getenv(env)
}
