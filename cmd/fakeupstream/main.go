// Command fakeupstream serves the in-repo fake upstreams on one loopback port for the
// acceptance tests: Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens), Claude
// on Amazon Bedrock (/model/{id}/invoke and /invoke-with-response-stream) and OpenAI's chat
// completions, completions, embeddings and Responses API. It prints its base
// URL on the first line of stdout and serves until it is killed.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/llmgate/llmgate/internal/fakeanthropic"
	"github.com/llmgate/llmgate/internal/fakeopenai"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "fakeupstream:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ant, oai := fakeanthropic.Start(), fakeopenai.Start(fakeopenai.Options{})
	defer ant.Close()
	defer oai.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/messages") || strings.HasPrefix(r.URL.Path, "/model/") {
			ant.ServeHTTP(w, r)
			return
		}
		oai.Config.Handler.ServeHTTP(w, r)
	}))
}
