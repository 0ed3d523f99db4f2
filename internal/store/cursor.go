package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// ErrBadCursor is a list cursor that is not one this store handed out for that list.
var ErrBadCursor = errors.New("bad cursor")

// listCursor is where a cursor-paged list stopped: the index and table keys of the last
// item of the page. It is handed out as base64url JSON; it names no secret (key records are
// listed by their hash).
type listCursor struct {
	Sort string `json:"s"`
	PK   string `json:"p"`
	SK   string `json:"k"`
}

func (c listCursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseCursor(s, sortPrefix string) (listCursor, error) {
	var c listCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.PK == "" || c.SK == "" || !strings.HasPrefix(c.Sort, sortPrefix) {
		return listCursor{}, ErrBadCursor
	}
	return c, nil
}

// queryAfter reads one page of size items of an index partition (items whose gsi_sort
// starts with sortPrefix) after cursor ("" for the first page), decodes them into out and
// returns the cursor of the next page ("" after the last). It reads size+1 index entries and
// the page's items, whatever the partition holds: no count.
func (s *Store) queryAfter(ctx context.Context, index, attr, value, sortPrefix string, desc bool, cursor string, size int, out any) (string, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String("#p = :p AND begins_with(gsi_sort, :s)"),
		ExpressionAttributeNames:  map[string]string{"#p": attr},
		ExpressionAttributeValues: item{":p": &types.AttributeValueMemberS{Value: value}, ":s": &types.AttributeValueMemberS{Value: sortPrefix}},
		ScanIndexForward:          aws.Bool(!desc),
	}
	if cursor != "" {
		c, err := parseCursor(cursor, sortPrefix)
		if err != nil {
			return "", err
		}
		in.ExclusiveStartKey = item{
			attr: &types.AttributeValueMemberS{Value: value}, "gsi_sort": &types.AttributeValueMemberS{Value: c.Sort},
			schema.AttrPK: &types.AttributeValueMemberS{Value: c.PK}, schema.AttrSK: &types.AttributeValueMemberS{Value: c.SK},
		}
	}
	var entries []item
	for len(entries) <= size {
		in.Limit = aws.Int32(int32(size + 1 - len(entries)))
		res, err := s.db.Query(ctx, in)
		if err != nil {
			return "", fmt.Errorf("query %s %s: %w", index, value, err)
		}
		entries = append(entries, res.Items...)
		if len(res.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
	next := ""
	if len(entries) > size {
		entries = entries[:size]
		last := entries[size-1]
		str := func(k string) string {
			if v, ok := last[k].(*types.AttributeValueMemberS); ok {
				return v.Value
			}
			return ""
		}
		next = listCursor{Sort: str("gsi_sort"), PK: str(schema.AttrPK), SK: str(schema.AttrSK)}.String()
	}
	items, err := s.indexItems(ctx, index, entries)
	if err != nil {
		return "", err
	}
	kept := items[:0]
	for _, it := range items {
		if v, ok := it[attr].(*types.AttributeValueMemberS); ok && v.Value == value {
			kept = append(kept, it)
		}
	}
	if err := attributevalue.UnmarshalListOfMaps(kept, out); err != nil {
		return "", fmt.Errorf("decode %s %s: %w", index, value, err)
	}
	return next, nil
}

// ListKeysAfter returns one page of keys (newest first when desc) after cursor ("" for the
// first) and the next page's cursor ("" after the last), without counting the keys: a page
// costs the same at ten keys or a million.
func (s *Store) ListKeysAfter(ctx context.Context, f KeyFilter, desc bool, cursor string, size int) ([]Key, string, error) {
	index, attr, value := keyIndex(f)
	var keys []Key
	next, err := s.queryAfter(ctx, index, attr, value, SortPrefixKey, desc, cursor, size, &keys)
	if err != nil {
		return nil, "", err
	}
	return keysOfTeam(keys, f), next, nil
}

// ListTeamsAfter returns one page of teams (oldest first) after cursor and the next page's
// cursor, without counting the teams.
func (s *Store) ListTeamsAfter(ctx context.Context, cursor string, size int) ([]Team, string, error) {
	var teams []Team
	next, err := s.queryAfter(ctx, schema.IndexByKind, "kind", KindTeam, SortPrefixTeam, false, cursor, size, &teams)
	return teams, next, err
}

// SpendLogsAfter returns one page of at most size spend logs matching f (Limit ignored),
// newest first, after cursor ("" for the first page), and the next page's cursor ("" after
// the last). A page reads about size logs of each index shard, however many logs match.
func (s *Store) SpendLogsAfter(ctx context.Context, f SpendLogFilter, cursor string, size int) ([]SpendLog, string, error) {
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !strings.HasPrefix(string(b), SortPrefixSpendLog) {
			return nil, "", ErrBadCursor
		}
		after = string(b)
		t, err := time.Parse(logSortTime, strings.SplitN(strings.TrimPrefix(after, SortPrefixSpendLog), "#", 2)[0])
		if err != nil {
			return nil, "", ErrBadCursor
		}
		if f.End.IsZero() || t.Before(f.End) {
			f.End = t
		}
	}
	var out []SpendLog
	err := s.eachSpendLog(ctx, f, func(l SpendLog) bool {
		if after != "" && logSort(l.StartTime)+"#"+l.RequestID >= after {
			return true
		}
		out = append(out, l)
		return len(out) <= size
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(logSort(last.StartTime) + "#" + last.RequestID))
	}
	return out, next, nil
}
