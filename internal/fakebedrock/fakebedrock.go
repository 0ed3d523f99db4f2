// Package fakebedrock writes Amazon Bedrock's wire format for the in-repo fake upstreams:
// errors typed by the X-Amzn-ErrorType header with a {"message"} body, and event streams
// in the application/vnd.amazon.eventstream binary framing (aws-sdk-go-v2's own encoder),
// both events and modeled exceptions, as bedrock-runtime sends them.
package fakebedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// ContentType is an event stream's content type.
const ContentType = "application/vnd.amazon.eventstream"

// errorNamespace follows the error type in Bedrock's X-Amzn-ErrorType header.
const errorNamespace = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

// WriteError answers with a Bedrock error of type errType ("ValidationException", ...).
func WriteError(w http.ResponseWriter, status int, errType, message string) {
	w.Header().Set("X-Amzn-ErrorType", errType+errorNamespace)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`, message)
}

// Event is one event-stream message: an event of type Type ("chunk", "messageStart", ...),
// or, with Exception set, a modeled exception ("throttlingException", ...) whose payload is
// {"message": ...}.
type Event struct {
	Type      string
	Payload   []byte
	Exception bool
}

// Chunk is InvokeModelWithResponseStream's event carrying one model event: its JSON, base64
// in "bytes", with "p" padding as Bedrock adds it.
func Chunk(data []byte) Event {
	payload, _ := json.Marshal(struct {
		Bytes []byte `json:"bytes"`
		P     string `json:"p"`
	}{data, "abcdefghijklmnopqrstuvwxyzABCDEF"[:len(data)%32]})
	return Event{Type: "chunk", Payload: payload}
}

// Exception is a modeled exception of type typ with message.
func Exception(typ, message string) Event {
	payload, _ := json.Marshal(map[string]string{"message": message})
	return Event{Type: typ, Payload: payload, Exception: true}
}

// Encode frames e as Bedrock does.
func (e Event) Encode() []byte {
	var msg eventstream.Message
	if e.Exception {
		msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
		msg.Headers.Set(":exception-type", eventstream.StringValue(e.Type))
	} else {
		msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		msg.Headers.Set(":event-type", eventstream.StringValue(e.Type))
	}
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Payload = e.Payload
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, msg); err != nil {
		// Only headers over the format's size limits fail to encode; these are short.
		panic(fmt.Sprintf("fakebedrock: encode event: %v", err))
	}
	return buf.Bytes()
}

// Stream answers 200 with events, flushing each frame as it is written.
func Stream(w http.ResponseWriter, events ...Event) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	for _, e := range events {
		_, _ = w.Write(e.Encode())
		if fl != nil {
			fl.Flush()
		}
	}
}
