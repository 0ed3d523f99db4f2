// Package gateway is the http.Handler for the OpenAI-compatible LLM routes.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/anthropic"
	"github.com/llmgate/llmgate/internal/callid"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/metrics"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/responseid"
	"github.com/llmgate/llmgate/internal/responses"
	"github.com/llmgate/llmgate/internal/router"
	"github.com/llmgate/llmgate/internal/tokens"
)

// Response headers, as LiteLLM Proxy sends them.
const (
	HeaderCallID       = "X-Litellm-Call-Id"
	HeaderResponseCost = "X-Litellm-Response-Cost"
	HeaderModelID      = "X-Litellm-Model-Id"
	HeaderModelAPIBase = "X-Litellm-Model-Api-Base"
	HeaderDuration     = "X-Litellm-Response-Duration-Ms"
)

// settleTimeout bounds the settle write after a call, which outlives the client's request.
const settleTimeout = 10 * time.Second

// Options are the gateway's dependencies. Router is required; a nil Authenticator turns
// auth off (every model allowed) and a nil Limiter applies no budgets or limits.
type Options struct {
	Config        *config.Config
	Logger        *slog.Logger
	Router        *router.Router
	Authenticator llmcall.Authenticator
	Limiter       llmcall.Limiter
	// Metrics is told of every LLM call once it is answered and settled; nil records none.
	Metrics metrics.Recorder
}

// Gateway serves the LLM routes.
type Gateway struct {
	mux     *http.ServeMux
	router  *router.Router
	auth    llmcall.Authenticator
	limiter llmcall.Limiter
	metrics metrics.Recorder
	log     *slog.Logger
	maxBody int64
	// clientMockTesting is llmgate_settings.allow_client_mock_testing.
	clientMockTesting bool
	// ids seals the Responses API's response ids (see stored.go).
	ids *responseid.Codec
	// fallbackAccess is general_settings.enforce_fallback_model_access (default on).
	fallbackAccess bool
}

// New returns the gateway handler.
func New(o Options) (*Gateway, error) {
	if o.Router == nil {
		return nil, errors.New("gateway: a router is required")
	}
	g := &Gateway{
		mux:            http.NewServeMux(),
		router:         o.Router,
		auth:           o.Authenticator,
		limiter:        o.Limiter,
		metrics:        o.Metrics,
		log:            o.Logger,
		maxBody:        config.DefaultMaxRequestBodyBytes,
		fallbackAccess: o.Config == nil || o.Config.GeneralSettings.EnforceFallbackModelAccess == nil || *o.Config.GeneralSettings.EnforceFallbackModelAccess,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.metrics == nil {
		g.metrics = metrics.Nop{}
	}
	if o.Config != nil && o.Config.Settings.MaxRequestBodyBytes > 0 {
		g.maxBody = o.Config.Settings.MaxRequestBodyBytes
	}
	secret := ""
	if o.Config != nil {
		g.clientMockTesting = o.Config.Settings.AllowClientMockTesting
		secret = o.Config.GeneralSettings.MasterKey
	}
	g.ids = responseid.New(secret)
	for _, rt := range []struct {
		path string
		wire *wire
	}{
		{"/chat/completions", openAIWire(provider.Chat)},
		{"/completions", openAIWire(provider.Completion)},
		{"/embeddings", openAIWire(provider.Embedding)},
		{"/moderations", openAIWire(provider.Moderation)},
		{"/images/generations", imagesWire()},
		{"/messages", messagesWire(provider.Messages)},
		{"/messages/count_tokens", messagesWire(provider.CountTokens)},
		{"/responses", responsesWire()},
	} {
		h := g.llm(rt.wire, rt.path)
		g.mux.Handle("POST /v1"+rt.path, h)
		g.mux.Handle("POST "+rt.path, h)
		if k := rt.wire.kind; k == provider.Chat || k == provider.Completion || k == provider.Embedding || k == provider.ImageGeneration {
			// The Azure OpenAI SDKs' routes: the deployment in the path is the model.
			g.mux.Handle("POST /openai/deployments/{deployment}"+rt.path, h)
		}
	}
	for _, v := range []string{"/v1", ""} {
		g.mux.Handle("GET "+v+"/responses/{id}", g.storedResponse(http.MethodGet, ""))
		g.mux.Handle("DELETE "+v+"/responses/{id}", g.storedResponse(http.MethodDelete, ""))
		g.mux.Handle("GET "+v+"/responses/{id}/input_items", g.storedResponse(http.MethodGet, provider.StoredInputItems))
		g.mux.Handle("POST "+v+"/responses/{id}/cancel", g.storedResponse(http.MethodPost, provider.StoredCancel))
	}
	for _, p := range []string{"GET /v1/models", "GET /models"} {
		g.mux.HandleFunc(p, g.models)
	}
	for _, p := range []string{"GET /model/info", "GET /v1/model/info", "GET /v2/model/info"} {
		g.mux.HandleFunc(p, g.modelInfo)
	}
	g.mux.HandleFunc("GET /model_group/info", g.modelGroupInfo)
	g.mux.HandleFunc("GET /health", g.health)
	// Any other route or method gets OpenAI's 404 in OpenAI's error format.
	g.mux.HandleFunc("/", openai.InvalidURL)
	return g, nil
}

// ServeHTTP serves the LLM routes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// call is one LLM request on its way through the gateway: what the log line, the response
// headers and the settle need.
type call struct {
	id     string
	route  string
	kind   provider.Kind
	wire   *wire
	start  time.Time
	caller llmcall.Caller
	// routed is when the call was handed to the router (zero if it never was).
	routed time.Time
	req    openai.Request
	body   []byte
	// prompt is the billable prompt, as the strict parse measured it; bound what the call
	// was reserved at.
	prompt tokens.Prompt
	bound  pricing.Bound
	model  string // model group after aliases
	// responseID is the id of the answer as the client got it (the upstream's made llmgate's:
	// responseid), which LiteLLM's clients look the spend log up by. A Responses call's
	// sealed id (~370 characters) is not kept: it would take its spend log, and the log's
	// by_key copy, past 1 KB (2 write units each), and it finds the log without being kept.
	responseID string
	// seal turns a Responses call's upstream ids into the ids the client sees.
	seal   *sealing
	result router.Result
	res    llmcall.Reservation // nil until admitted
	usage  openai.Usage
	// estimated is true when usage was estimated, not reported: a stream that ended early.
	estimated bool
	// overrun is true when the reported usage cost more than the reservation.
	overrun bool
	cost    float64
	status  int
	errType string
	// errMsg says why the call failed or was refused (the error's message).
	errMsg string
}

func (g *Gateway) llm(wf *wire, route string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := &call{id: callid.New(start), route: route, kind: wf.kind, wire: wf, start: start, status: http.StatusOK}
		w.Header().Set(HeaderCallID, c.id)
		defer g.logCall(r.Context(), c)
		defer g.record(c)
		defer func() {
			// The settle runs whatever happened after the reservation, a panic included: it
			// would otherwise hold the budget until the reservation expires.
			p := recover()
			if p != nil {
				c.fail(errors.New("the handler panicked"))
			}
			if c.res != nil {
				if p == nil { // the answer is complete: send it before the settle write
					_ = http.NewResponseController(w).Flush()
				}
				g.settle(r.Context(), c.res, c)
			}
			if p != nil {
				panic(p)
			}
		}()
		if err := g.serveLLM(w, r, c); err != nil {
			c.fail(err)
			wf.writeError(w, err)
		}
	})
}

// serveLLM runs a call: authenticate, read, resolve, reserve, route. An error it returns
// has not been written to w yet. The reservation it makes, if any, is c.res, to be settled.
func (g *Gateway) serveLLM(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx := r.Context()
	caller, err := g.caller(r)
	if err != nil {
		return err
	}
	c.caller = caller
	if err := g.readBody(w, r, c); err != nil {
		return err
	}
	if d := r.PathValue("deployment"); d != "" {
		c.req.Model = d
	}
	if c.req.Model == "" {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, "you must provide a model parameter").WithParam("model")
	}
	if models := batchModels(c); models != nil {
		return g.batch(w, r, c, models)
	}
	c.model = c.req.Model
	if caller != nil {
		if c.model, err = caller.ResolveModel(c.req.Model); err != nil {
			return err
		}
	}
	rt, ok := g.router.Resolve(c.model)
	if !ok {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf(
			"%s: Invalid model name passed in model=%s. Call `/v1/models` to view available models for your key.", c.route, c.req.Model)).WithParam("model")
	}
	c.model = rt.Model
	if rt.Overrides, err = g.overrides(r, &c.req, caller); err != nil {
		return err
	}
	if c.kind == provider.Responses {
		if rt, err = g.continued(c, rt); err != nil {
			return err
		}
	}
	if caller != nil && g.fallbackAccess {
		rt.MayUse = caller.MayRoute
	}

	ch := g.charge(c, rt, c.billable())
	if g.limiter != nil && c.kind != provider.CountTokens { // counting tokens costs nothing
		if c.res, err = g.limiter.Reserve(ctx, caller, ch); err != nil {
			return err
		}
		for k, vs := range c.res.Header() {
			w.Header()[k] = vs
		}
		if t := c.res.MaxTokens(); t > 0 {
			if err := c.clamp(t); err != nil {
				return err
			}
			g.charge(c, rt, c.billable()) // the bound of the clamped call
		}
	}

	pc := provider.Call{Kind: c.kind, Body: c.body, Request: &c.req, Header: c.wire.passHeaders(r),
		MockTesting: caller == nil || caller.IsProxyAdmin() || g.clientMockTesting}
	c.routed = time.Now()
	if c.req.Stream && !c.kind.InputOnly() && c.kind != provider.CountTokens {
		return g.stream(w, r, c, rt, pc)
	}
	resp, result, err := g.router.Do(ctx, rt, pc)
	c.result = result
	routingHeaders(w.Header(), result)
	if err != nil {
		return err
	}
	if c.kind == provider.Responses {
		resp.Body = g.sealIDs(c.sealing(), resp.Body, "")
	} else {
		resp.Body = c.ownID(resp.Body, "id")
	}
	if c.kind == provider.ImageGeneration {
		c.accountImages(resp.Body, result.Price, resp.Usage)
	} else {
		g.account(ctx, c, resp.Usage, reported(resp.Usage), result.Price)
	}
	h := w.Header()
	g.deploymentHeaders(h, c)
	h.Set(HeaderResponseCost, strconv.FormatFloat(c.cost, 'g', -1, 64))
	h.Set(HeaderDuration, durationMS(time.Since(c.start)))
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Body)
	return nil
}

// readBody reads and parses the request body within the size limit.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, c *call) error {
	tooLarge := func() error { // made only when needed: formatting it showed in every call's profile
		return openai.Errorf(http.StatusRequestEntityTooLarge, openai.TypeInvalidRequest,
			fmt.Sprintf("Request body is too large: the limit is %d bytes", g.maxBody))
	}
	if r.ContentLength > g.maxBody {
		return tooLarge()
	}
	size := r.ContentLength
	if size < 0 {
		size = 512
	}
	buf := make([]byte, 0, size+1) // +1: io.ReadAll's final read sees EOF without growing
	body, err := readAll(http.MaxBytesReader(w, r.Body, g.maxBody), buf)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge()
		}
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, "could not read the request body")
	}
	c.body = body
	if !utf8.Valid(body) {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			"We could not parse the JSON body of your request: it is not valid UTF-8.")
	}
	// One strict parse decides what the call is priced at; the body goes upstream as it is,
	// so nothing a decoder could read differently may pass.
	sc, err := tokens.Scan(body)
	var dup *tokens.DuplicateKeyError
	var num *tokens.NumberError
	switch {
	case errors.As(err, &dup):
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			"We could not parse the JSON body of your request: "+dup.Error()+".").WithParam(dup.Other)
	case errors.As(err, &num):
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			"We could not parse the JSON body of your request: "+num.Error()+".")
	case errors.Is(err, tokens.ErrTooDeep):
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			"We could not parse the JSON body of your request: "+err.Error()+".")
	}
	if perr := c.wire.parse(body, &c.req); perr != nil { // invalid JSON, in the format's words
		return perr
	}
	if err != nil {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			"We could not parse the JSON body of your request. The API expects a JSON payload: "+jsonProblem(err))
	}
	c.prompt = sc.Prompt
	return exactKeys(sc.Keys)
}

// requestFields are the JSON names of the top-level fields the gateway's formats decode.
var requestFields = func() []string {
	var names []string
	for _, t := range []reflect.Type{reflect.TypeFor[openai.Request](), reflect.TypeFor[anthropic.Request](), reflect.TypeFor[responses.Request]()} {
		for f := range t.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				names = append(names, name)
			}
		}
	}
	return names
}()

// exactKeys refuses a top-level key that matches a field the gateway reads only when case
// is ignored ("MAX_TOKENS"): encoding/json would read it, the upstream would not.
func exactKeys(keys []string) error {
	for _, k := range keys {
		for _, f := range requestFields {
			if k != f && strings.EqualFold(k, f) {
				return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
					fmt.Sprintf("Unrecognized request argument %q: parameter names are case-sensitive; did you mean %q?", k, f)).WithParam(k)
			}
		}
	}
	return nil
}

// Bounds on what a request can size, so no request makes the gateway (or the mock
// provider) allocate without limit; each is above what any model accepts.
const (
	MaxChoices      = 128       // n (OpenAI's own limit)
	MaxBestOf       = 20        // best_of (OpenAI's own limit)
	MaxDimensions   = 16384     // dimensions of an embedding
	MaxOutputTokens = 1_000_000 // max_tokens, max_completion_tokens, max_output_tokens
	// MaxMockResponseBytes bounds the request's mock_response text.
	MaxMockResponseBytes = 64 << 10
	// MaxModelNameBytes bounds the requested model name (wildcard groups pass it on).
	MaxModelNameBytes = 512
	// MaxInputItems bounds the items of an embeddings or moderations input array (OpenAI's
	// own limit), MaxInputBytes its whole JSON (above OpenAI's 300,000 tokens per request).
	MaxInputItems = 2048
	MaxInputBytes = 4 << 20
)

// validCounts refuses counts outside their bounds: negative token limits, a choice count
// below one, and anything above the bounds. maxTokensField is the format's name for
// max_tokens (max_output_tokens in the Responses API).
func validCounts(r *openai.Request, maxTokensField string) error {
	for _, f := range []struct {
		name     string
		v        *int
		min, max int
	}{
		{maxTokensField, r.MaxTokens, 0, MaxOutputTokens},
		{"max_completion_tokens", r.MaxCompTokens, 0, MaxOutputTokens},
		{"n", r.N, 1, MaxChoices},
		{"best_of", r.BestOf, 1, MaxBestOf},
		{"dimensions", r.Dimensions, 1, MaxDimensions},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < f.min {
			return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
				fmt.Sprintf("Invalid '%s': %d is below the minimum value %d.", f.name, *f.v, f.min)).WithParam(f.name)
		}
		if *f.v > f.max {
			return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
				fmt.Sprintf("Invalid '%s': %d is above the maximum value %d.", f.name, *f.v, f.max)).WithParam(f.name)
		}
	}
	if len(r.Model) > MaxModelNameBytes {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			fmt.Sprintf("Invalid 'model': %d bytes is above the maximum of %d.", len(r.Model), MaxModelNameBytes)).WithParam("model")
	}
	if len(r.Input) > MaxInputBytes {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			fmt.Sprintf("Invalid 'input': %d bytes is above the maximum of %d.", len(r.Input), MaxInputBytes)).WithParam("input")
	}
	if in := gjson.ParseBytes(r.Input); in.IsArray() {
		n := 0
		in.ForEach(func(_, _ gjson.Result) bool { n++; return n <= MaxInputItems })
		if n > MaxInputItems {
			return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
				fmt.Sprintf("Invalid 'input': more than %d items.", MaxInputItems)).WithParam("input")
		}
	}
	if m := r.MockResponse; m != nil && len(*m) > MaxMockResponseBytes {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			fmt.Sprintf("Invalid 'mock_response': %d bytes is above the maximum of %d.", len(*m), MaxMockResponseBytes)).WithParam("mock_response")
	}
	return nil
}

// readAll is io.ReadAll into buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// jsonProblem says what is wrong with a body without echoing it.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s, not %s", te.Field, te.Type, te.Value)
	}
	return "invalid JSON"
}

// billable is what the call can be billed for, as tokens.Billable describes it.
func (c *call) billable() tokens.Billable {
	b := tokens.Billable{Prompt: c.prompt, MaxOutput: requestedMaxTokens(&c.req), NoOutput: c.kind.InputOnly()}
	for _, n := range []*int{c.req.N, c.req.BestOf} {
		if n != nil {
			b.Choices = max(b.Choices, *n)
		}
	}
	return b
}

// charge is the call's reservation for the limiter: pricing.ReservationBound of what it
// can be billed for (pricing.ImageBound for images), over every deployment it can reach.
func (g *Gateway) charge(c *call, rt router.Route, b tokens.Billable) llmcall.Charge {
	if c.kind == provider.ImageGeneration {
		c.bound = pricing.ImageBound(c.imageCall(), g.router.Targets(rt))
	} else {
		c.bound = pricing.ReservationBound(b, g.router.Targets(rt))
	}
	return llmcall.Charge{
		RequestID:          c.id,
		Route:              c.route,
		Model:              rt.Model,
		Cost:               c.bound.Cost,
		PromptTokens:       c.bound.PromptTokens,
		MaxTokens:          c.bound.MaxTokens,
		Tokens:             c.bound.Tokens,
		OutputCostPerToken: c.bound.OutputPrice,
		Free:               c.bound.Free,
		Unpriced:           c.bound.Unpriced,
		Stream:             c.req.Stream,
		Tags:               tags(c.req.Metadata),
		EndUser:            c.req.User,
	}
}

func requestedMaxTokens(r *openai.Request) int {
	for _, m := range []*int{r.MaxCompTokens, r.MaxTokens} {
		if m != nil && *m > 0 {
			return *m
		}
	}
	return 0
}

func tags(metadata json.RawMessage) []string {
	if len(metadata) == 0 {
		return nil
	}
	var m struct {
		Tags []string `json:"tags"`
	}
	_ = json.Unmarshal(metadata, &m)
	return m.Tags
}

// clamp lowers the request's completion-token limit to limit (0: leave it), in the body the
// provider forwards as well as in the parsed request.
func (c *call) clamp(limit int) error {
	if limit <= 0 || c.kind.InputOnly() {
		return nil
	}
	if cur := requestedMaxTokens(&c.req); cur > 0 && cur <= limit {
		return nil
	}
	field := "max_tokens"
	if c.wire.outputField != "" {
		field = c.wire.outputField
		c.req.MaxTokens = &limit
	} else if c.req.MaxCompTokens != nil {
		field = "max_completion_tokens"
		c.req.MaxCompTokens = &limit
	} else {
		c.req.MaxTokens = &limit
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(c.body, &fields); err != nil {
		return fmt.Errorf("clamp %s: %w", field, err)
	}
	fields[field] = json.RawMessage(strconv.Itoa(limit))
	body, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("clamp %s: %w", field, err)
	}
	c.body = body
	return nil
}

// reported reports whether an upstream said what a call used: providers leave usage zero
// when the answer had none.
func reported(u openai.Usage) bool { return u != (openai.Usage{}) }

// account sets what the call is charged: its reported usage priced at the deployment that
// answered. An answer without usage, or with a usage no call within the bound can have
// (a negative count, a count above the call's token bound), is charged the reservation.
// A valid usage that costs more than the reservation is charged as it is, and logged as a
// budget_overrun: the bound missed a case, and spend must still say the truth.
func (g *Gateway) account(ctx context.Context, c *call, u openai.Usage, reported bool, price pricing.Price) {
	c.usage, c.cost, c.estimated, c.overrun = u, price.Cost(u), false, false
	switch {
	case !reported:
	case !validUsage(u, c.bound.Tokens):
		g.log.LogAttrs(ctx, slog.LevelError, "upstream usage out of range: the call is charged its reservation",
			slog.String("request_id", c.id), slog.String("deployment", deploymentID(c.result.Deployment)),
			slog.Int("prompt_tokens", u.PromptTokens), slog.Int("completion_tokens", u.CompletionTokens),
			slog.Int("bound_tokens", c.bound.Tokens))
	default:
		if c.cost > c.bound.Cost && !c.bound.Free {
			g.log.LogAttrs(ctx, slog.LevelError, "budget_overrun: the call cost more than its reservation",
				slog.String("request_id", c.id), slog.String("deployment", deploymentID(c.result.Deployment)),
				slog.Float64("cost", c.cost), slog.Float64("reserved", c.bound.Cost),
				slog.Int("prompt_tokens", u.PromptTokens), slog.Int("completion_tokens", u.CompletionTokens))
			c.overrun = true
		}
		return
	}
	c.estimated = true
	c.cost = c.bound.Cost
	c.usage = openai.Usage{PromptTokens: c.bound.PromptTokens, CompletionTokens: c.bound.Tokens - c.bound.PromptTokens, TotalTokens: c.bound.Tokens}
}

// validUsage reports whether u is a usage a call bounded at most tokens can have.
func validUsage(u openai.Usage, most int) bool {
	counts := []int{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.CacheCreationInputTokens, u.CacheCreation1hInputTokens}
	if u.PromptTokensDetails != nil {
		counts = append(counts, u.PromptTokensDetails.CachedTokens)
	}
	for _, n := range counts {
		if n < 0 || n > most {
			return false
		}
	}
	return true
}

// settle reports the call's outcome to its reservation, once, with a context the client's
// disconnect does not cancel.
func (g *Gateway) settle(ctx context.Context, res llmcall.Reservation, c *call) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	o := llmcall.Outcome{
		Model:      c.model,
		ResponseID: c.responseID,
		Usage:      c.usage,
		Cost:       c.cost,
		Success:    c.status == http.StatusOK && c.errType == "",
		Status:     c.status,
		ErrorType:  c.errType,
		Start:      c.start,
		End:        time.Now(),
	}
	if d := c.result.Deployment; d != nil {
		o.Deployment = d.ID
		o.Provider, _ = provider.Split(c.result.Upstream)
		o.APIBase = d.APIBase()
	}
	if c.result.Model != "" {
		o.Model = c.result.Model
	}
	if err := res.Settle(ctx, o); err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "settle failed", slog.String("request_id", c.id), slog.String("error", err.Error()))
	}
}

// ownID gives the answer or stream event obj the call's own id (responseid.For) in place of
// the upstream's id at path, so the id a client holds names the call and finds its spend
// log: no index of upstream ids is written on every call. Every event of a stream gets the
// same id. obj is returned as it is if it has no id there.
func (c *call) ownID(obj []byte, path string) []byte {
	v := gjson.GetBytes(obj, path)
	if v.Type != gjson.String || v.Str == "" || v.Index == 0 {
		return obj
	}
	if c.responseID == "" {
		c.responseID = responseid.For(v.Str, c.id)
	}
	// The id replaces the value gjson found, where it found it: no second parse of every
	// stream event. It needs no escaping (lowercase letters, '-', '_' and hex digits).
	out := make([]byte, 0, len(obj)-len(v.Raw)+len(c.responseID)+2)
	out = append(out, obj[:v.Index]...)
	out = append(append(append(out, '"'), c.responseID...), '"')
	return append(out, obj[v.Index+len(v.Raw):]...)
}

// fail records the error a call ended with.
func (c *call) fail(err error) {
	var oe *openai.Error
	switch {
	case errors.As(err, &oe):
		c.status, c.errType, c.errMsg = oe.Status, oe.Type, oe.Message
	case errors.Is(err, context.Canceled):
		c.status, c.errType, c.errMsg = statusClientClosed, "client_closed", "the client went away"
	default:
		c.status, c.errType, c.errMsg = http.StatusInternalServerError, openai.TypeServer, err.Error()
	}
}

// maxLoggedError bounds the error message in a request log line: a refusal can quote what
// the caller sent (a duplicate key's name).
const maxLoggedError = 512

// statusClientClosed is the status logged (never sent) when the client went away.
const statusClientClosed = 499

func (g *Gateway) deploymentHeaders(h http.Header, c *call) {
	if d := c.result.Deployment; d != nil {
		h.Set(HeaderModelID, d.ID)
		if b := d.APIBase(); b != "" {
			h.Set(HeaderModelAPIBase, b)
		}
	}
}

func durationMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// logCall writes the request's log line: never a key or message content.
func (g *Gateway) logCall(ctx context.Context, c *call) {
	level := slog.LevelInfo
	if c.status >= 500 {
		level = slog.LevelWarn
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", c.id),
		slog.String("route", c.route),
		slog.String("model", c.model),
		slog.String("deployment", deploymentID(c.result.Deployment)),
		slog.Int("status", c.status),
		slog.Float64("duration_ms", float64(time.Since(c.start))/float64(time.Millisecond)),
		slog.Bool("stream", c.req.Stream),
		slog.Int("prompt_tokens", c.usage.PromptTokens),
		slog.Int("completion_tokens", c.usage.CompletionTokens),
		slog.Bool("usage_estimated", c.estimated),
		slog.Float64("cost", c.cost),
		slog.Int("attempts", c.result.Attempts),
		slog.String("error_type", c.errType),
		slog.String("error", prefix(c.errMsg, maxLoggedError)),
	}
	g.log.LogAttrs(ctx, level, "llm request", attrs[:]...)
}

// record tells the metrics what the call did.
func (g *Gateway) record(c *call) {
	end := time.Now()
	m := metrics.Call{
		RequestedModel:   c.req.Model,
		Model:            c.model,
		Status:           c.status,
		ErrorType:        c.errType,
		UpstreamFailed:   c.result.Attempts > 0 && c.status != statusClientClosed && (c.status != http.StatusOK || c.errType != ""),
		Overrun:          c.overrun,
		PromptTokens:     c.usage.PromptTokens,
		CompletionTokens: c.usage.CompletionTokens,
		Cost:             c.cost,
		Total:            end.Sub(c.start),
	}
	if c.result.Model != "" {
		m.Model = c.result.Model
	}
	if c.result.Deployment != nil && !c.routed.IsZero() {
		m.LLM = end.Sub(c.routed)
	}
	if id, ok := c.caller.(metrics.Identified); ok {
		m.Who = id.MetricsWho()
	}
	g.metrics.Call(m)
}

func deploymentID(d *router.Deployment) string {
	if d == nil {
		return ""
	}
	return d.ID
}
