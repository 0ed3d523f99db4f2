package bedrock

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

// The fake Bedrock endpoint speaks the real wire format: restJson1 bodies, errors typed by
// the X-Amzn-ErrorType header, and ConverseStream answers in the
// application/vnd.amazon.eventstream binary framing.

// event is one ConverseStream event: type "messageStart", ... or, with exception set, a
// modeled exception such as "throttlingException".
type event struct {
	typ       string
	payload   string
	exception bool
}

// encodeEvents frames events as Bedrock does.
func encodeEvents(t testing.TB, events ...event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, e := range events {
		var msg eventstream.Message
		if e.exception {
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
			msg.Headers.Set(":exception-type", eventstream.StringValue(e.typ))
		} else {
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
			msg.Headers.Set(":event-type", eventstream.StringValue(e.typ))
		}
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		msg.Payload = []byte(e.payload)
		if err := enc.Encode(&buf, msg); err != nil {
			t.Fatalf("encode event: %v", err)
		}
	}
	return buf.Bytes()
}

// streamAnswer answers a ConverseStream call with events, flushing each frame.
func streamAnswer(t testing.TB, events ...event) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		for _, e := range events {
			w.Write(encodeEvents(t, e))
			w.(http.Flusher).Flush()
		}
	}
}

// errorAnswer answers with a Bedrock error of the given type.
func errorAnswer(status int, errType, message string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Amzn-ErrorType", errType)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q}`, message)
	}
}

// testCall is a call to the fake endpoint with static credentials in us-west-2.
func testCall(kind provider.Kind, up *providertest.Upstream, model, body string) *provider.Call {
	return &provider.Call{
		Kind:  kind,
		Body:  []byte(body),
		Model: model,
		Params: config.LiteLLMParams{
			APIBase: up.URL, AWSRegionName: "us-west-2",
			AWSAccessKeyID: "AKIDTEST", AWSSecretAccessKey: "secret", AWSSessionToken: "token",
		},
	}
}
