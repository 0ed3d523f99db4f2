package main

import "github.com/llmgate/llmgate/internal/dynamoproxy"

// ddbProxy counts the DynamoDB round trips of a target: internal/dynamoproxy in front of
// DynamoDB Local, without faults or pricing (pricing reads each written item before and
// after the write, which would slow the throughput runs); the capacity section prices.
type ddbProxy struct{ *dynamoproxy.Proxy }

// ddbCounts is a snapshot of a ddbProxy's round trips by operation.
type ddbCounts struct {
	Calls map[string]int64 `json:"calls"`
}

// Total returns the number of round trips.
func (c ddbCounts) Total() int64 {
	var n int64
	for _, v := range c.Calls {
		n += v
	}
	return n
}

// Sub returns the counts since earlier.
func (c ddbCounts) Sub(earlier ddbCounts) ddbCounts {
	d := ddbCounts{Calls: map[string]int64{}}
	for k, v := range c.Calls {
		if v-earlier.Calls[k] != 0 {
			d.Calls[k] = v - earlier.Calls[k]
		}
	}
	return d
}

func (p *ddbProxy) Snapshot() ddbCounts { return ddbCounts{Calls: p.Usage().Calls} }
