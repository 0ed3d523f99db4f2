// Command floor is the bench's reference proxy: the least an HTTP hop through a separate Go
// process can cost on this machine. It forwards every request to -upstream with the
// standard library's reverse proxy, flushing streamed answers as they arrive, and does
// nothing else (no parsing, no auth, no routing), so what llmgate adds beyond it is
// llmgate's own work.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
)

func main() {
	port := flag.Int("port", 0, "port to listen on (127.0.0.1)")
	upstream := flag.String("upstream", "", "base URL of the upstream")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		log.Fatalf("floor: -upstream %q: want an absolute URL", *upstream)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 128 // as llmgate's provider client
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(u) },
		Transport:     t,
		FlushInterval: -1,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/", rp)
	log.Fatal(http.ListenAndServe(net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)), mux))
}
