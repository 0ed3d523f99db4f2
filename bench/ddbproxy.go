package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// ddbProxy is a reverse proxy in front of DynamoDB Local that counts the round trips passing
// through it and the capacity units they consume. It asks DynamoDB for the consumed capacity
// (ReturnConsumedCapacity: TOTAL) when the caller did not, so it can count the units; the
// answer's extra field is one the gateway ignores.
type ddbProxy struct {
	srv *httptest.Server

	mu    sync.Mutex
	calls map[string]int // by operation (X-Amz-Target without the API version)
	units float64        // capacity units consumed
}

// ddbCounts is a snapshot of a ddbProxy's counters.
type ddbCounts struct {
	Calls map[string]int `json:"calls"`
	Units float64        `json:"capacity_units"`
}

// Total returns the number of round trips.
func (c ddbCounts) Total() int {
	n := 0
	for _, v := range c.Calls {
		n += v
	}
	return n
}

// Sub returns the counts since earlier.
func (c ddbCounts) Sub(earlier ddbCounts) ddbCounts {
	d := ddbCounts{Calls: map[string]int{}, Units: c.Units - earlier.Units}
	for k, v := range c.Calls {
		if v-earlier.Calls[k] != 0 {
			d.Calls[k] = v - earlier.Calls[k]
		}
	}
	return d
}

// capacityOps are the operations that accept ReturnConsumedCapacity.
var capacityOps = map[string]bool{
	"GetItem": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true, "Query": true,
	"Scan": true, "BatchGetItem": true, "BatchWriteItem": true, "TransactWriteItems": true,
	"TransactGetItems": true,
}

func startDDBProxy(target string) (*ddbProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse DynamoDB endpoint %q: %w", target, err)
	}
	p := &ddbProxy{calls: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	rp.ModifyResponse = p.countResponse
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := operation(r)
		if capacityOps[op] {
			if err := askForCapacity(r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		p.mu.Lock()
		p.calls[op]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	return p, nil
}

func (p *ddbProxy) URL() string { return p.srv.URL }

func (p *ddbProxy) Close() { p.srv.Close() }

func (p *ddbProxy) Snapshot() ddbCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := ddbCounts{Calls: make(map[string]int, len(p.calls)), Units: p.units}
	for k, v := range p.calls {
		c.Calls[k] = v
	}
	return c
}

func operation(r *http.Request) string {
	t := r.Header.Get("X-Amz-Target")
	if _, op, ok := strings.Cut(t, "."); ok {
		return op
	}
	return "other"
}

// askForCapacity sets ReturnConsumedCapacity: TOTAL on a request that does not set it.
// DynamoDB Local does not check request signatures, so the rewritten body is accepted.
func askForCapacity(r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err == nil {
		if _, set := m["ReturnConsumedCapacity"]; !set {
			m["ReturnConsumedCapacity"] = json.RawMessage(`"TOTAL"`)
			if b, err := json.Marshal(m); err == nil {
				body = b
			}
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// countResponse adds the answer's ConsumedCapacity (one object, or a list for batch and
// transaction operations) to the unit count, and passes the body on unchanged.
func (p *ddbProxy) countResponse(resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read DynamoDB answer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var m struct {
		ConsumedCapacity json.RawMessage
	}
	if json.Unmarshal(body, &m) != nil || len(m.ConsumedCapacity) == 0 {
		return nil
	}
	type capacity struct{ CapacityUnits float64 }
	var one capacity
	var list []capacity
	units := 0.0
	if json.Unmarshal(m.ConsumedCapacity, &list) == nil {
		for _, c := range list {
			units += c.CapacityUnits
		}
	} else if json.Unmarshal(m.ConsumedCapacity, &one) == nil {
		units = one.CapacityUnits
	}
	p.mu.Lock()
	p.units += units
	p.mu.Unlock()
	return nil
}
