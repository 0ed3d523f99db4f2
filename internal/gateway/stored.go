package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/responseid"
	"github.com/llmgate/llmgate/internal/router"
)

// Responses API ids. An upstream keeps a response where it was made, so every response id
// llmgate answers with is sealed with the deployment that made it and the key and team
// that own it (package responseid): a GET, DELETE or previous_response_id on it goes to
// that deployment, for its owners only. Deployments that translate the API to chat keep
// nothing; their ids are sealed too, so a lookup gets a clear 400 instead of a 404.

// mayRead reports whether caller may use a response made as ref says: auth off, a proxy
// admin, the key that made it or a key of its team.
func mayRead(caller llmcall.Caller, ref responseid.Ref) bool {
	if caller == nil || caller.IsProxyAdmin() {
		return true
	}
	o, ok := caller.(llmcall.Owner)
	if !ok {
		return false
	}
	return ref.ReadableBy(o.Owner())
}

// owner is the key hash and team the caller's responses are sealed with.
func owner(caller llmcall.Caller) (key, team string) {
	if o, ok := caller.(llmcall.Owner); ok {
		return o.Owner()
	}
	return "", ""
}

// continued pins a Responses call that continues a stored response (previous_response_id)
// to the deployment that made it, and gives that upstream its own id back. An id llmgate
// did not give out, or gave another tenant, is answered as OpenAI answers an unknown one.
func (g *Gateway) continued(c *call, rt router.Route) (router.Route, error) {
	prev := gjson.GetBytes(c.body, "previous_response_id")
	if prev.Type != gjson.String || prev.Str == "" {
		return rt, nil
	}
	ref, ok := g.ids.Open(prev.Str)
	if !ok || !mayRead(c.caller, ref) {
		return rt, openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf(
			"Previous response with id '%s' not found. (previous_response_id must be a response id llmgate gave this key or its team.)", prev.Str)).WithParam("previous_response_id")
	}
	pinned, ok := rt.Pin(ref.Deployment)
	if !ok {
		return rt, openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf(
			"previous_response_id: the response with id '%s' was made by another model than %s; continue it with the same model.", prev.Str, c.req.Model)).WithParam("previous_response_id")
	}
	body, err := sjson.SetBytes(c.body, "previous_response_id", ref.ID)
	if err != nil {
		return rt, fmt.Errorf("set previous_response_id: %w", err)
	}
	c.body = body
	// The answer names the previous response by the id the client sent.
	key, team := owner(c.caller)
	c.seal = &sealing{owner: responseid.Ref{Deployment: ref.Deployment, Key: key, Team: team, Call: c.id}, done: map[string]string{ref.ID: prev.Str}}
	return pinned, nil
}

// sealing is how one call's upstream ids become sealed ids: each with the deployment, key,
// team and call of owner, the same sealed id for an upstream id each time.
type sealing struct {
	owner responseid.Ref // ID unused
	done  map[string]string
}

// sealing returns the call's sealing once it has reached a deployment (nil before).
func (c *call) sealing() *sealing {
	if c.seal == nil && c.result.Deployment != nil {
		key, team := owner(c.caller)
		c.seal = &sealing{owner: responseid.Ref{Deployment: c.result.Deployment.ID, Key: key, Team: team, Call: c.id}, done: map[string]string{}}
	}
	return c.seal
}

// sealIDs replaces the upstream's ids in the response object at path of obj ("" for an
// answer, "response" for a stream event) with sealed ones.
func (g *Gateway) sealIDs(s *sealing, obj []byte, path string) []byte {
	if s == nil {
		return obj
	}
	prefix := ""
	if path != "" {
		prefix = path + "."
	}
	for _, field := range [...]string{"id", "previous_response_id"} {
		v := gjson.GetBytes(obj, prefix+field)
		if v.Type != gjson.String || v.Str == "" {
			continue
		}
		sealed, ok := s.done[v.Str]
		if !ok {
			ref := s.owner
			ref.ID = v.Str
			sealed = g.ids.Seal(ref)
			s.done[v.Str] = sealed
		}
		if out, err := sjson.SetBytes(obj, prefix+field, sealed); err == nil {
			obj = out
		}
	}
	return obj
}

// storedResponse serves GET and DELETE /v1/responses/{id}, GET
// /v1/responses/{id}/input_items and POST /v1/responses/{id}/cancel (part) on the
// deployment that made the response, for the key or team that made it. Unknown, foreign and
// tampered ids get the same 404. Nothing is generated, so no budget or limit is taken (a
// background response was charged when it was made; cancelling it refunds nothing).
func (g *Gateway) storedResponse(method, part string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start, status := time.Now(), http.StatusOK
		id := r.PathValue("id")
		var dep string
		defer func() {
			g.log.LogAttrs(r.Context(), slog.LevelInfo, "stored response request", slog.String("route", r.Pattern),
				slog.String("deployment", dep), slog.Int("status", status),
				slog.Float64("duration_ms", float64(time.Since(start))/float64(time.Millisecond)))
		}()
		body, result, err := g.serveStored(r, id, method, part)
		if d := result.Deployment; d != nil {
			dep = d.ID
		}
		routingHeaders(w.Header(), result)
		if err != nil {
			status = openai.AsError(err).Status
			openai.WriteError(w, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}

func (g *Gateway) serveStored(r *http.Request, id, method, part string) ([]byte, router.Result, error) {
	caller, err := g.caller(r)
	if err != nil {
		return nil, router.Result{}, err
	}
	notFound := openai.Errorf(http.StatusNotFound, openai.TypeInvalidRequest, fmt.Sprintf("Response with id '%s' not found.", id))
	ref, ok := g.ids.Open(id)
	if !ok || !mayRead(caller, ref) {
		return nil, router.Result{}, notFound
	}
	rt, ok := g.router.Pinned(ref.Deployment)
	if !ok {
		return nil, router.Result{}, openai.Errorf(http.StatusNotFound, openai.TypeInvalidRequest, fmt.Sprintf(
			"Response with id '%s' not found: the deployment that made it is no longer configured.", id))
	}
	if caller != nil {
		if _, err := caller.ResolveModel(rt.Model); err != nil {
			return nil, router.Result{}, err
		}
	}
	pc := provider.Call{Kind: provider.StoredResponse, Stored: &provider.Stored{Method: method, ID: ref.ID, Part: part, Query: r.URL.RawQuery}}
	resp, result, err := g.router.Do(r.Context(), rt, pc)
	if err != nil {
		var oe *openai.Error
		if errors.As(err, &oe) && oe.Status == http.StatusNotFound {
			return nil, result, notFound // the upstream's message names its own id
		}
		return nil, result, err
	}
	if part == provider.StoredInputItems {
		return resp.Body, result, nil
	}
	// The ids in the answer (the response, or what DELETE says of it) are sealed for the
	// response's owner, whoever reads it.
	return g.sealIDs(&sealing{owner: ref, done: map[string]string{ref.ID: id}}, resp.Body, ""), result, nil
}
