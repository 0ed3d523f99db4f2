package viachat

import (
	"context"

	"github.com/llmgate/llmgate/internal/provider"
)

func (a *adapter) doResponses(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	return nil, badRequest("not yet")
}

func (a *adapter) streamResponses(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	return nil, badRequest("not yet")
}
