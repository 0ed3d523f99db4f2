package store

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A spend log is keyed by llmgate's call id (x-litellm-call-id), which is unique. LiteLLM's
// clients look a log up by the response's "id" instead, which the upstream chooses and may
// repeat, so the settlement also writes a pointer item from that id to the call id:
// pk LOGREF#<response id>, sk "LOGREF". A repeated response id points to the latest call.
const (
	PrefixLogRef = "LOGREF#"
	SortLogRef   = "LOGREF"
)

type logRef struct {
	RequestID string `dynamodbav:"request_id"`
	TTL       int64  `dynamodbav:"ttl,omitempty"`
}

// logRefPut is the unconditional Put of a log's pointer item, nil when the log has no
// response id (or it equals the call id).
func logRefPut(table string, l *SpendLog) (*types.Put, error) {
	if l.ResponseID == "" || l.ResponseID == l.RequestID {
		return nil, nil
	}
	m, err := marshal(logRef{RequestID: l.RequestID, TTL: l.TTL})
	if err != nil {
		return nil, err
	}
	for k, v := range keyOf(PrefixLogRef+l.ResponseID, SortLogRef) {
		m[k] = v
	}
	return &types.Put{TableName: aws.String(table), Item: m}, nil
}

// SpendLogByID reads the spend log of a call by its call id or, failing that, by the id of
// the response it answered. ErrNotFound if there is neither.
func (s *Store) SpendLogByID(ctx context.Context, id string) (*SpendLog, error) {
	l, err := s.GetSpendLog(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return l, err
	}
	var ref logRef
	if err := s.get(ctx, PrefixLogRef+id, SortLogRef, &ref); err != nil {
		return nil, err
	}
	return s.GetSpendLog(ctx, ref.RequestID)
}
