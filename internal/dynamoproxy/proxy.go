// Package dynamoproxy is a DynamoDB endpoint for tests and the bench that behaves like AWS's
// where DynamoDB Local does not: a reverse proxy in front of DynamoDB Local that injects the
// errors AWS returns under contention and load (TransactionConflict, ProvisionedThroughput-
// Exceeded, Throttling) at a set rate or on a schedule, and prices every request as DynamoDB
// bills it (1 KB write units, 4 KB read units, transactions ×2, index entries extra), per
// item and per index key, so a run reports each item's write units per second and what a
// call consumes.
//
// DynamoDB Local runs transactions one at a time and has no throughput limits, so without
// this no test sees a conflict or a throttle; and it under-reports transactions' capacity.
package dynamoproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is an error the proxy answers instead of forwarding a request. Nothing reaches
// DynamoDB Local, so nothing is written: a client that retries loses nothing and repeats
// nothing.
type Fault string

// Faults, as AWS returns them.
const (
	// Conflict is a transaction conflict: a TransactionCanceledException whose cancellation
	// reasons name TransactionConflict on one item (None on the others) for
	// TransactWriteItems and TransactGetItems, a TransactionConflictException for a
	// single-item write (an item another transaction is writing). Reads do not conflict.
	Conflict Fault = "TransactionConflict"
	// Throughput is ProvisionedThroughputExceededException: a partition's or the table's
	// throughput was exceeded (on-demand tables return it for a hot partition too).
	Throughput Fault = "ProvisionedThroughputExceeded"
	// Throttling is ThrottlingException: request rate too high.
	Throttling Fault = "Throttling"
)

// AllFaults are the faults injected when Options.Faults is empty.
var AllFaults = []Fault{Conflict, Throughput, Throttling}

// dataOps are the operations that read or write items; only they get faults and are priced.
var dataOps = map[string]bool{
	"GetItem": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true, "Query": true,
	"Scan": true, "BatchGetItem": true, "BatchWriteItem": true, "TransactWriteItems": true,
	"TransactGetItems": true,
}

// writeOps are the operations that write items.
var writeOps = map[string]bool{
	"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true,
}

// Options configure a Proxy.
type Options struct {
	// Target is the DynamoDB Local URL the proxy forwards to.
	Target string
	// Rate is the fraction of data-plane calls (reads and writes of items) answered with a
	// fault, from 0 to 1. SetRate changes it while the proxy runs.
	Rate float64
	// Every, when above 0, injects a fault into every Every-th data-plane call instead of at
	// random (a schedule: deterministic tests).
	Every int
	// Faults are the faults to inject, chosen at random among those that apply to the call;
	// empty means AllFaults.
	Faults []Fault
	// WritesOnly limits faults to the operations that write.
	WritesOnly bool
	// Seed seeds the random choices (0: a fixed default, so runs repeat).
	Seed uint64
	// Price prices every request as DynamoDB bills it; see Usage. It reads each written
	// item before and after the write (directly from DynamoDB Local, uncounted and never
	// faulted), so it costs DynamoDB Local three calls per written item.
	Price bool
}

// Proxy is a running proxy. Point a DynamoDB client's BaseEndpoint at URL.
type Proxy struct {
	o      Options
	target *url.URL
	srv    *httptest.Server
	rp     *httputil.ReverseProxy
	hc     *http.Client

	mu     sync.Mutex
	rnd    *rand.Rand
	rate   float64
	n      int64 // data-plane calls seen
	usage  Usage
	tables map[string]*tableSchema // by table name, from DescribeTable
}

// Start starts a proxy on a loopback port; Close stops it.
func Start(o Options) (*Proxy, error) {
	u, err := url.Parse(o.Target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("dynamoproxy: bad target %q", o.Target)
	}
	if len(o.Faults) == 0 {
		o.Faults = AllFaults
	}
	seed := o.Seed
	if seed == 0 {
		seed = 15
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	p := &Proxy{
		o: o, target: u, rate: o.Rate,
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		hc:     &http.Client{Transport: tr, Timeout: 30 * time.Second},
		tables: map[string]*tableSchema{},
	}
	p.usage.reset()
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.Transport = tr
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p, nil
}

// URL is the proxy's endpoint.
func (p *Proxy) URL() string { return p.srv.URL }

// Close stops the proxy.
func (p *Proxy) Close() {
	p.srv.Close()
	p.hc.CloseIdleConnections()
}

// SetRate changes the fraction of data-plane calls that get a fault (0 stops faults).
func (p *Proxy) SetRate(r float64) {
	p.mu.Lock()
	p.rate = r
	p.mu.Unlock()
}

func operation(r *http.Request) string {
	if _, op, ok := strings.Cut(r.Header.Get("X-Amz-Target"), "."); ok {
		return op
	}
	return "other"
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	op := operation(r)
	if !dataOps[op] {
		p.count(op, "")
		p.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, "com.amazon.coral.validate#ValidationException", "dynamoproxy: request is not JSON: "+err.Error(), nil)
		return
	}
	if op == "Query" || op == "Scan" {
		p.mu.Lock()
		p.usage.Queries[req.IndexName]++
		p.mu.Unlock()
	}
	if f, ok := p.fault(op, &req); ok {
		p.count(op, f)
		p.answerFault(w, op, f, &req)
		return
	}
	p.count(op, "")
	if !p.o.Price {
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.rp.ServeHTTP(w, r)
		return
	}
	p.forwardPriced(w, r, op, body, &req)
}

func (p *Proxy) count(op string, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.usage.Calls[op]++
	if f != "" {
		p.usage.Faults[f]++
	}
}

// fault decides whether this call gets a fault, and which.
func (p *Proxy) fault(op string, req *request) (Fault, bool) {
	if p.o.WritesOnly && !writeOps[op] {
		return "", false
	}
	var allowed []Fault
	for _, f := range p.o.Faults {
		if f == Conflict && op != "TransactWriteItems" && op != "TransactGetItems" && !writeOps[op] {
			continue // reads do not conflict
		}
		if f == Conflict && op == "BatchWriteItem" {
			continue // a batch answers per item, never with a conflict
		}
		allowed = append(allowed, f)
	}
	if len(allowed) == 0 {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	hit := false
	if p.o.Every > 0 {
		hit = p.n%int64(p.o.Every) == 0
	} else {
		hit = p.rate > 0 && p.rnd.Float64() < p.rate
	}
	if !hit {
		return "", false
	}
	return allowed[p.rnd.IntN(len(allowed))], true
}

// answerFault writes the error AWS would return.
func (p *Proxy) answerFault(w http.ResponseWriter, op string, f Fault, req *request) {
	switch f {
	case Conflict:
		if n := len(req.TransactItems); n > 0 {
			p.mu.Lock()
			at := p.rnd.IntN(n)
			p.mu.Unlock()
			reasons := make([]map[string]string, n)
			codes := make([]string, n)
			for i := range reasons {
				reasons[i], codes[i] = map[string]string{"Code": "None"}, "None"
			}
			reasons[at] = map[string]string{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
			codes[at] = "TransactionConflict"
			writeError(w, "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
				"Transaction cancelled, please refer cancellation reasons for specific reasons ["+strings.Join(codes, ", ")+"]",
				map[string]any{"CancellationReasons": reasons})
			return
		}
		writeError(w, "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
			"Transaction is ongoing for the item", nil)
	case Throughput:
		writeError(w, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
			"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.", nil)
	default:
		writeError(w, "com.amazon.coral.availability#ThrottlingException", "Rate of requests exceeds the allowed throughput.", nil)
	}
}

// writeError writes a DynamoDB JSON error (HTTP 400, as DynamoDB answers these).
func writeError(w http.ResponseWriter, typ, msg string, extra map[string]any) {
	m := map[string]any{"__type": typ, "message": msg}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(b)
}
