package bedrock

import (
	"net/http"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/fakebedrock"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

// The fake Bedrock endpoint speaks the real wire format (see fakebedrock): restJson1 bodies,
// errors typed by the X-Amzn-ErrorType header, and stream answers in the
// application/vnd.amazon.eventstream binary framing.

// event is one ConverseStream event: type "messageStart", ... or, with exception set, a
// modeled exception such as "throttlingException".
type event struct {
	typ       string
	payload   string
	exception bool
}

// frame is e in fakebedrock's terms.
func (e event) frame() fakebedrock.Event {
	return fakebedrock.Event{Type: e.typ, Payload: []byte(e.payload), Exception: e.exception}
}

// encodeEvents frames events as Bedrock does.
func encodeEvents(events ...event) []byte {
	var b []byte
	for _, e := range events {
		b = append(b, e.frame().Encode()...)
	}
	return b
}

// streamAnswer answers a ConverseStream call with events, flushing each frame.
func streamAnswer(events ...event) http.HandlerFunc {
	frames := make([]fakebedrock.Event, len(events))
	for i, e := range events {
		frames[i] = e.frame()
	}
	return func(w http.ResponseWriter, _ *http.Request) { fakebedrock.Stream(w, frames...) }
}

// errorAnswer answers with a Bedrock error of the given type.
func errorAnswer(status int, errType, message string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { fakebedrock.WriteError(w, status, errType, message) }
}

// testCall is a call to the fake endpoint with static credentials in us-west-2.
func testCall(kind provider.Kind, up *providertest.Upstream, model, body string) *provider.Call {
	return callTo(kind, up.URL, model, body)
}

// callTo is a call to the Bedrock endpoint at url with static credentials in us-west-2.
func callTo(kind provider.Kind, url, model, body string) *provider.Call {
	return &provider.Call{
		Kind:  kind,
		Body:  []byte(body),
		Model: model,
		Params: config.LiteLLMParams{
			APIBase: url, AWSRegionName: "us-west-2",
			AWSAccessKeyID: "AKIDTEST", AWSSecretAccessKey: "secret", AWSSessionToken: "token",
		},
	}
}
