package dynamoproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Usage is what the requests through a proxy consumed, priced as DynamoDB bills it:
//   - a write costs 1 write unit per started KB of the item (the larger of its size before
//     and after), at least 1; a transactional write (Put, Update, Delete or ConditionCheck
//     in TransactWriteItems) costs twice that; a write whose condition failed is billed too;
//   - each index entry added, removed, or whose key or projected attributes changed costs 1
//     write unit per started KB of the entry (its projected attributes + 100 bytes), 2
//     writes when its index key changed (a delete and a put);
//   - a read costs 1 read unit per started 4 KB (half for an eventually consistent read,
//     twice in a transaction); a Query or Scan per 4 KB of all it returns.
//
// Cancelled transactions are priced apart (CancelledWCU: their items at ×2 as they were).
type Usage struct {
	Calls        map[string]int64 // requests by operation, faulted ones included
	Faults       map[Fault]int64  // injected faults
	WCU          float64          // write units billed
	RCU          float64          // read units billed
	CancelledWCU float64          // write units of cancelled transactions' items (see above)
	// Items are the table's items that were written or read with GetItem, by "table pk sk".
	Items map[string]*ItemUsage
	// IndexKeys are the index partitions written, by "table/index pk".
	IndexKeys map[string]*ItemUsage
	// Partitions are the table's partition keys written (all their items), by "table/ pk":
	// a partition of many items written once each (spend logs by day) is as hot as their sum.
	Partitions map[string]*ItemUsage
	// Queries counts Query and Scan requests by index name ("" for the table itself),
	// faulted ones included, priced or not.
	Queries map[string]int64
}

// ItemUsage is what one item (or one index partition key) consumed.
type ItemUsage struct {
	Table string `json:"table"`
	Index string `json:"index,omitempty"`
	PK    string `json:"pk"`
	SK    string `json:"sk,omitempty"`
	// Writes counts the writes that touched it, WCU what they cost.
	Writes int64   `json:"writes"`
	WCU    float64 `json:"wcu"`
	// Bytes is its billed size at the last write: the larger of before and after (index: the
	// entry's, 100 bytes overhead included).
	Bytes int `json:"bytes"`
	// PeakWCU is the most write units it took in one clock second.
	PeakWCU float64 `json:"peak_wcu_per_second"`
	Reads   int64   `json:"reads,omitempty"`
	RCU     float64 `json:"rcu,omitempty"`
	sec     int64
	cur     float64
}

func (u *Usage) reset() {
	*u = Usage{Calls: map[string]int64{}, Faults: map[Fault]int64{}, Items: map[string]*ItemUsage{}, IndexKeys: map[string]*ItemUsage{}, Partitions: map[string]*ItemUsage{}, Queries: map[string]int64{}}
}

// Usage returns a copy of what the proxy has counted.
func (p *Proxy) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.usage
	u.Calls, u.Faults, u.Queries = maps.Clone(u.Calls), maps.Clone(u.Faults), maps.Clone(u.Queries)
	u.Items, u.IndexKeys, u.Partitions = clone(u.Items), clone(u.IndexKeys), clone(u.Partitions)
	return u
}

// clone copies m and its usages.
func clone(m map[string]*ItemUsage) map[string]*ItemUsage {
	out := make(map[string]*ItemUsage, len(m))
	for k, v := range m {
		c := *v
		out[k] = &c
	}
	return out
}

// Reset clears the counts.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.usage.reset()
	p.mu.Unlock()
}

// Sorted returns items by write units, highest first.
func Sorted(m map[string]*ItemUsage) []*ItemUsage {
	out := make([]*ItemUsage, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].WCU != out[j].WCU {
			return out[i].WCU > out[j].WCU
		}
		return out[i].PK+out[i].SK < out[j].PK+out[j].SK
	})
	return out
}

// request is the part of a DynamoDB request the proxy reads.
type request struct {
	TableName      string
	Key            attrs
	Item           attrs
	ConsistentRead bool
	IndexName      string
	TransactItems  []struct {
		Put                                 *txItem
		Update, Delete, ConditionCheck, Get *txItem
	}
	RequestItems map[string]json.RawMessage
}

type txItem struct {
	TableName string
	Key       attrs
	Item      attrs
}

// attrs is an item in DynamoDB's JSON: attribute name → {"S": ...} / {"N": ...} / ...
type attrs = map[string]any

// write is one item a request writes.
type write struct {
	table  string
	key    attrs
	put    attrs // the new item of a Put
	del    bool
	check  bool // a ConditionCheck: priced, nothing written
	tx     bool
	before attrs
}

// writes lists the items a write request touches.
func (p *Proxy) writes(op string, req *request) []*write {
	var ws []*write
	switch op {
	case "PutItem":
		ws = append(ws, &write{table: req.TableName, put: req.Item})
	case "UpdateItem":
		ws = append(ws, &write{table: req.TableName, key: req.Key})
	case "DeleteItem":
		ws = append(ws, &write{table: req.TableName, key: req.Key, del: true})
	case "TransactWriteItems":
		for _, t := range req.TransactItems {
			switch {
			case t.Put != nil:
				ws = append(ws, &write{table: t.Put.TableName, put: t.Put.Item, tx: true})
			case t.Update != nil:
				ws = append(ws, &write{table: t.Update.TableName, key: t.Update.Key, tx: true})
			case t.Delete != nil:
				ws = append(ws, &write{table: t.Delete.TableName, key: t.Delete.Key, del: true, tx: true})
			case t.ConditionCheck != nil:
				ws = append(ws, &write{table: t.ConditionCheck.TableName, key: t.ConditionCheck.Key, check: true, tx: true})
			}
		}
	case "BatchWriteItem":
		for table, raw := range req.RequestItems {
			var rs []struct {
				PutRequest    *struct{ Item attrs }
				DeleteRequest *struct{ Key attrs }
			}
			if json.Unmarshal(raw, &rs) != nil {
				continue
			}
			for _, r := range rs {
				if r.PutRequest != nil {
					ws = append(ws, &write{table: table, put: r.PutRequest.Item})
				} else if r.DeleteRequest != nil {
					ws = append(ws, &write{table: table, key: r.DeleteRequest.Key, del: true})
				}
			}
		}
	}
	return ws
}

// forwardPriced forwards a data-plane request and prices it.
func (p *Proxy) forwardPriced(w http.ResponseWriter, r *http.Request, op string, body []byte, req *request) {
	auth := r.Header.Get("Authorization")
	ws := p.writes(op, req)
	for _, wr := range ws {
		ts, err := p.schema(auth, wr.table)
		if err != nil {
			writeError(w, "com.amazonaws.dynamodb.v20120810#InternalServerError", "dynamoproxy: "+err.Error(), nil)
			return
		}
		if wr.put != nil {
			wr.key = ts.key(wr.put)
		}
		if wr.before, err = p.get(auth, wr.table, wr.key); err != nil {
			writeError(w, "com.amazonaws.dynamodb.v20120810#InternalServerError", "dynamoproxy: "+err.Error(), nil)
			return
		}
	}
	status, header, resp, err := p.forward(r, body)
	if err != nil {
		http.Error(w, "dynamoproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	var answer struct {
		Type      string `json:"__type"`
		Item      attrs
		Items     []attrs
		Responses json.RawMessage
	}
	_ = json.Unmarshal(resp, &answer)
	now := time.Now().Unix()
	switch {
	case status == http.StatusOK && len(ws) > 0:
		afters := make([]attrs, len(ws))
		for i, wr := range ws {
			switch {
			case wr.del:
			case wr.check:
				afters[i] = wr.before
			case wr.put != nil:
				afters[i] = wr.put
			default:
				afters[i], _ = p.get(auth, wr.table, wr.key)
			}
		}
		p.mu.Lock()
		for i, wr := range ws {
			p.priceWrite(now, wr, afters[i])
		}
		p.mu.Unlock()
	case len(ws) > 0 && strings.HasSuffix(answer.Type, "ConditionalCheckFailedException"):
		p.mu.Lock()
		p.priceWrite(now, ws[0], ws[0].before) // a failed condition is billed as a write
		p.mu.Unlock()
	case len(ws) > 0 && strings.HasSuffix(answer.Type, "TransactionCanceledException"):
		p.mu.Lock()
		for _, wr := range ws {
			p.usage.CancelledWCU += 2 * writeUnits(itemSize(wr.before))
		}
		p.mu.Unlock()
	case status == http.StatusOK:
		p.priceRead(now, op, req, &answer.Item, answer.Items, answer.Responses)
	}
	for k, vs := range header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(resp)))
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

// writeUnits is what a write of an item of size bytes costs outside a transaction.
func writeUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }

// priceWrite adds one written item's cost; p.mu is held.
func (p *Proxy) priceWrite(now int64, wr *write, after attrs) {
	ts := p.tables[wr.table]
	if ts == nil {
		return
	}
	size := max(itemSize(wr.before), itemSize(after))
	units := writeUnits(size)
	if wr.tx {
		units *= 2
	}
	p.usage.WCU += units
	for _, it := range []*ItemUsage{
		p.usage.item(p.usage.Items, wr.table, "", render(wr.key[ts.pk]), render(wr.key[ts.sk])),
		p.usage.item(p.usage.Partitions, wr.table, "", render(wr.key[ts.pk]), ""),
	} {
		it.Writes++
		it.Bytes = size
		it.add(now, units)
	}
	if wr.check {
		return
	}
	for _, ix := range ts.indexes {
		old, new := ix.entry(ts, wr.before), ix.entry(ts, after)
		switch {
		case old == nil && new == nil:
		case old == nil:
			p.priceEntry(now, wr.table, ix, new)
		case new == nil:
			p.priceEntry(now, wr.table, ix, old)
		case !reflect.DeepEqual(old[ix.pk], new[ix.pk]) || (ix.sk != "" && !reflect.DeepEqual(old[ix.sk], new[ix.sk])):
			p.priceEntry(now, wr.table, ix, old)
			p.priceEntry(now, wr.table, ix, new)
		case !reflect.DeepEqual(old, new):
			p.priceEntry(now, wr.table, ix, new)
		}
	}
}

func (p *Proxy) priceEntry(now int64, table string, ix *indexSchema, entry attrs) {
	size := itemSize(entry) + 100
	units := writeUnits(size)
	p.usage.WCU += units
	it := p.usage.item(p.usage.IndexKeys, table, ix.name, render(entry[ix.pk]), "")
	it.Writes++
	it.Bytes = size
	it.add(now, units)
}

func (u *Usage) item(m map[string]*ItemUsage, table, index, pk, sk string) *ItemUsage {
	id := table + "/" + index + " " + pk + " " + sk
	it := m[id]
	if it == nil {
		it = &ItemUsage{Table: table, Index: index, PK: pk, SK: sk}
		m[id] = it
	}
	return it
}

// add counts units at second now and keeps the peak per second.
func (it *ItemUsage) add(now int64, units float64) {
	it.WCU += units
	if it.sec != now {
		it.sec, it.cur = now, 0
	}
	it.cur += units
	it.PeakWCU = max(it.PeakWCU, it.cur)
}

// priceRead adds a read's cost.
func (p *Proxy) priceRead(now int64, op string, req *request, item *attrs, items []attrs, responses json.RawMessage) {
	readUnits := func(size int, consistent bool) float64 {
		u := math.Max(1, math.Ceil(float64(size)/4096))
		if !consistent {
			u /= 2
		}
		return u
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch op {
	case "GetItem":
		units := readUnits(itemSize(*item), req.ConsistentRead)
		p.usage.RCU += units
		if ts := p.tables[req.TableName]; ts != nil {
			it := p.usage.item(p.usage.Items, req.TableName, "", render(req.Key[ts.pk]), render(req.Key[ts.sk]))
			it.Reads++
			it.RCU += units
		}
	case "Query", "Scan":
		total := 0
		for _, it := range items {
			total += itemSize(it)
		}
		p.usage.RCU += readUnits(total, req.ConsistentRead && req.IndexName == "")
	case "BatchGetItem", "TransactGetItems":
		var byTable map[string][]attrs
		var tx []struct{ Item attrs }
		if op == "BatchGetItem" {
			_ = json.Unmarshal(responses, &byTable)
		} else {
			_ = json.Unmarshal(responses, &tx)
		}
		for table, its := range byTable {
			var ka struct{ ConsistentRead bool }
			_ = json.Unmarshal(req.RequestItems[table], &ka)
			for _, it := range its {
				p.usage.RCU += readUnits(itemSize(it), ka.ConsistentRead)
			}
		}
		for _, t := range tx {
			p.usage.RCU += 2 * readUnits(itemSize(t.Item), true)
		}
	}
}

// forward sends the request to DynamoDB Local and returns its answer.
func (p *Proxy) forward(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Accept-Encoding")
	resp, err := p.hc.Do(out)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("forward: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// call sends one request of its own to DynamoDB Local, with the caller's credentials
// (DynamoDB Local keeps one database per access key and region).
func (p *Proxy) call(auth, op string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, p.target.String()+"/", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	req.Header.Set("Authorization", auth)
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", op, resp.StatusCode, rb)
	}
	return json.Unmarshal(rb, out)
}

// get reads an item as it is now (nil if absent).
func (p *Proxy) get(auth, table string, key attrs) (attrs, error) {
	var out struct{ Item attrs }
	err := p.call(auth, "GetItem", map[string]any{"TableName": table, "Key": key, "ConsistentRead": true}, &out)
	return out.Item, err
}

// tableSchema is what pricing needs of a table: its keys and indexes.
type tableSchema struct {
	pk, sk  string
	indexes []*indexSchema
}

type indexSchema struct {
	name, pk, sk string
	all          bool
	include      []string
}

func (t *tableSchema) key(it attrs) attrs {
	k := attrs{t.pk: it[t.pk]}
	if t.sk != "" {
		k[t.sk] = it[t.sk]
	}
	return k
}

// entry is an item's entry in the index (nil when the item is not in it).
func (ix *indexSchema) entry(t *tableSchema, it attrs) attrs {
	if it == nil || it[ix.pk] == nil || (ix.sk != "" && it[ix.sk] == nil) {
		return nil
	}
	if ix.all {
		return it
	}
	e := attrs{}
	for _, a := range append([]string{t.pk, t.sk, ix.pk, ix.sk}, ix.include...) {
		if v, ok := it[a]; ok && a != "" {
			e[a] = v
		}
	}
	return e
}

type keyElement struct{ AttributeName, KeyType string }

func hashRange(ks []keyElement) (string, string) {
	var h, r string
	for _, k := range ks {
		if k.KeyType == "HASH" {
			h = k.AttributeName
		} else {
			r = k.AttributeName
		}
	}
	return h, r
}

// schema describes table once and caches it.
func (p *Proxy) schema(auth, table string) (*tableSchema, error) {
	p.mu.Lock()
	ts := p.tables[table]
	p.mu.Unlock()
	if ts != nil {
		return ts, nil
	}
	var out struct {
		Table struct {
			KeySchema              []keyElement
			GlobalSecondaryIndexes []struct {
				IndexName  string
				KeySchema  []keyElement
				Projection struct {
					ProjectionType   string
					NonKeyAttributes []string
				}
			}
		}
	}
	if err := p.call(auth, "DescribeTable", map[string]string{"TableName": table}, &out); err != nil {
		return nil, err
	}
	ts = &tableSchema{}
	ts.pk, ts.sk = hashRange(out.Table.KeySchema)
	for _, g := range out.Table.GlobalSecondaryIndexes {
		ix := &indexSchema{name: g.IndexName, all: g.Projection.ProjectionType == "ALL", include: g.Projection.NonKeyAttributes}
		ix.pk, ix.sk = hashRange(g.KeySchema)
		ts.indexes = append(ts.indexes, ix)
	}
	p.mu.Lock()
	p.tables[table] = ts
	p.mu.Unlock()
	return ts, nil
}
