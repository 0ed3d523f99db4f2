package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// A spend log is keyed by llmgate's call id (x-litellm-call-id), which is unique. LiteLLM's
// clients look a log up by the response's "id" instead, which the upstream chooses and may
// repeat: the by_response index finds a log by its response_id. An index entry costs the
// write unit a pointer item would, without a second request on every call's settlement; it
// is read eventually consistent, so a log may be found by its response id a moment after
// its call (LiteLLM writes its logs in batches, later still).

// SpendLogByID reads the spend log of a call by its call id or, failing that, by the id of
// the response it answered (a repeated response id: the latest call's). ErrNotFound if
// there is neither.
func (s *Store) SpendLogByID(ctx context.Context, id string) (*SpendLog, error) {
	l, err := s.GetSpendLog(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return l, err
	}
	res, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(schema.IndexByResponse),
		KeyConditionExpression:    aws.String("response_id = :r"),
		ExpressionAttributeValues: item{":r": &types.AttributeValueMemberS{Value: id}},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return nil, fmt.Errorf("query spend log of response %s: %w", id, err)
	}
	if len(res.Items) == 0 {
		return nil, fmt.Errorf("spend log of %s: %w", id, ErrNotFound)
	}
	pk, _ := res.Items[0][schema.AttrPK].(*types.AttributeValueMemberS)
	sk, _ := res.Items[0][schema.AttrSK].(*types.AttributeValueMemberS)
	if pk == nil || sk == nil {
		return nil, fmt.Errorf("spend log of response %s: index entry without its table key", id)
	}
	var found SpendLog
	if err := s.get(ctx, pk.Value, sk.Value, &found); err != nil {
		return nil, err
	}
	return &found, nil
}
