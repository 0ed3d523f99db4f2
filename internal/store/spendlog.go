package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/callid"
	"github.com/llmgate/llmgate/internal/store/schema"
)

// Spend log items. A log whose request id is a call id (callid: a UUIDv7 of the call's
// start) is stored in the day's listing itself: pk "LOG#<UTC date>#<shard>" (see LogShards),
// sk "LOG#<start time>#<request id>", both derived from the id, so listing a day or rolling
// up an hour is a Query on the table, and a log is read by its id alone. Any other id (the
// logs of builds before call ids carried their time, and the rotator's failure logs of
// their reservations) keeps pk "LOG#<request id>", sk "LOG", and an entry in by_kind under
// kind "LOG#<UTC date>#<shard>"; readers of a day read both. Every log is in by_key
// (gsi_key = key hash), by_user and by_team (gsi_user, gsi_team), each value with the same
// shard suffix "#<n>", all sorted by gsi_sort "LOG#<start time>#<request id>" (its sk when
// dated), so every query path is a Query. A log is found by the id of its response too: the
// ids llmgate answers with name the call (package responseid), so no index of response ids
// is written on every call.
const (
	PrefixSpendLog     = "LOG#"
	SortSpendLog       = "LOG"
	SortPrefixSpendLog = "LOG#"
)

// Spend log statuses, as LiteLLM writes them.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
)

// SpendLog is one call's entry in the spend ledger, with LiteLLM's LiteLLM_SpendLogs field
// names. It never holds prompt or response text. Empty strings and zero numbers are left out
// of the item (they read back the same): a log, and the reservation that carries it, stay
// under 1 KB, a write unit each.
type SpendLog struct {
	RequestID string `dynamodbav:"request_id" json:"request_id"`
	// ResponseID is the "id" of the response as the client got it (LiteLLM's request_id):
	// llmgate's, which names the call (package responseid), not the upstream's.
	ResponseID        string         `dynamodbav:"response_id,omitempty" json:"response_id,omitempty"`
	CallType          string         `dynamodbav:"call_type" json:"call_type"`
	APIKey            string         `dynamodbav:"api_key" json:"api_key"` // SHA-256 of the key
	Spend             float64        `dynamodbav:"spend,omitempty" json:"spend"`
	TotalTokens       int            `dynamodbav:"total_tokens,omitempty" json:"total_tokens"`
	PromptTokens      int            `dynamodbav:"prompt_tokens,omitempty" json:"prompt_tokens"`
	CompletionTokens  int            `dynamodbav:"completion_tokens,omitempty" json:"completion_tokens"`
	StartTime         time.Time      `dynamodbav:"startTime" json:"startTime"`
	EndTime           time.Time      `dynamodbav:"endTime" json:"endTime"`
	Model             string         `dynamodbav:"model" json:"model"`
	ModelID           string         `dynamodbav:"model_id,omitempty" json:"model_id"`
	ModelGroup        string         `dynamodbav:"model_group" json:"model_group"`
	CustomLLMProvider string         `dynamodbav:"custom_llm_provider,omitempty" json:"custom_llm_provider"`
	APIBase           string         `dynamodbav:"api_base,omitempty" json:"api_base"`
	User              string         `dynamodbav:"user,omitempty" json:"user"`
	TeamID            string         `dynamodbav:"team_id,omitempty" json:"team_id"`
	OrganizationID    string         `dynamodbav:"organization_id,omitempty" json:"organization_id"`
	EndUser           string         `dynamodbav:"end_user,omitempty" json:"end_user"`
	Metadata          map[string]any `dynamodbav:"metadata" json:"metadata"`
	CacheHit          string         `dynamodbav:"cache_hit" json:"cache_hit"`
	RequestTags       []string       `dynamodbav:"request_tags" json:"request_tags"`
	Status            string         `dynamodbav:"status" json:"status"`
	RequestDurationMS int64          `dynamodbav:"request_duration_ms,omitempty" json:"request_duration_ms"`
	// TTL is when DynamoDB deletes the log (unix seconds); 0 keeps it.
	TTL int64 `dynamodbav:"ttl,omitempty" json:"-"`
}

// spendLogIndex are the index attributes of a spend log item.
type spendLogIndex struct {
	Kind    string `dynamodbav:"kind,omitempty"`
	GSISort string `dynamodbav:"gsi_sort"`
	GSIKey  string `dynamodbav:"gsi_key,omitempty"`
	GSIUser string `dynamodbav:"gsi_user,omitempty"`
	GSITeam string `dynamodbav:"gsi_team,omitempty"`
}

// logSortTime is the fixed-width UTC time format of spend log sort keys.
const logSortTime = "2006-01-02T15:04:05.000000Z"

func logSort(t time.Time) string { return SortPrefixSpendLog + t.UTC().Format(logSortTime) }

func logDay(t time.Time) string { return PrefixSpendLog + t.UTC().Format(time.DateOnly) }

// LogShards spreads each partition of spend logs (a day's, and the index partitions of a
// key's, a user's, a team's) over this many keys, "<value>#<n>" with n from the request id:
// a partition takes at most 1,000 WCU/s, and a log or index entry costs 1, so a day, key or
// team of 2,000 logs/s puts 125 WCU/s on each. Readers query every shard and merge them,
// newest first.
const LogShards = 16

// logShard is the suffix of a spend log's partition and index keys.
func logShard(requestID string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(requestID))
	return "#" + strconv.Itoa(int(h.Sum32()%LogShards))
}

// shardValue is an index key of a spend log ("" stays "": the log is not in that index).
func shardValue(v, shard string) string {
	if v == "" {
		return ""
	}
	return v + shard
}

// spendLogKey is the table key of the spend log of request id and, when the id is a call id
// that dates the log, the start time it carries (else zero).
func spendLogKey(id string) (pk, sk string, start time.Time) {
	start, dated := callid.Time(id)
	if !dated {
		return PrefixSpendLog + id, SortSpendLog, time.Time{}
	}
	return logDay(start) + logShard(id), logSort(start) + "#" + id, start
}

// spendLogPut is the Put of a new spend log item with its index attributes. A dated log's
// StartTime is its id's time (the call's start to the millisecond, which the caller may
// have taken a moment later), so it is listed in the same hour and day whichever way it is
// read.
func spendLogPut(table string, l *SpendLog) (*types.Put, error) {
	pk, sk, start := spendLogKey(l.RequestID)
	lg := *l
	if !start.IsZero() {
		lg.StartTime = start
	}
	m, err := marshal(&lg)
	if err != nil {
		return nil, err
	}
	shard := logShard(lg.RequestID)
	ix := spendLogIndex{
		GSISort: logSort(lg.StartTime) + "#" + lg.RequestID,
		GSIKey:  shardValue(lg.APIKey, shard),
		GSIUser: shardValue(lg.User, shard),
		GSITeam: shardValue(lg.TeamID, shard),
	}
	if start.IsZero() {
		ix.Kind = logDay(lg.StartTime) + shard
	}
	ixm, err := marshal(ix)
	if err != nil {
		return nil, err
	}
	maps.Copy(m, ixm)
	maps.Copy(m, keyOf(pk, sk))
	return &types.Put{
		TableName:           aws.String(table),
		Item:                m,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}, nil
}

// GetSpendLog reads the spend log of a request. ErrNotFound if there is none.
func (s *Store) GetSpendLog(ctx context.Context, requestID string) (*SpendLog, error) {
	var l SpendLog
	pk, sk, _ := spendLogKey(requestID)
	if err := s.get(ctx, pk, sk, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// SpendLogFilter selects spend logs. Start and End bound the start time (both inclusive;
// zero is unbounded). Limit caps the number returned (0: all).
type SpendLogFilter struct {
	APIKey string
	UserID string
	TeamID string
	Start  time.Time
	End    time.Time
	Limit  int
}

// DefaultSpendLogDays is how far back a filter without a key, user, team or start date
// looks (the date index is queried one day at a time).
const DefaultSpendLogDays = 31

// SpendLogs returns the spend logs matching f, newest first. A key, user or team filter
// queries that index (further filters are applied to its results); otherwise the date
// index is queried day by day from End back to Start. It never scans the table.
func (s *Store) SpendLogs(ctx context.Context, f SpendLogFilter) ([]SpendLog, error) {
	var out []SpendLog
	visit := func(l SpendLog) bool {
		out = append(out, l)
		return f.Limit == 0 || len(out) < f.Limit
	}
	if err := s.eachSpendLog(ctx, f, visit); err != nil {
		return nil, err
	}
	return out, nil
}

// eachSpendLog calls visit for each matching log, newest first, until it returns false.
func (s *Store) eachSpendLog(ctx context.Context, f SpendLogFilter, visit func(SpendLog) bool) error {
	var owner []logSource
	switch {
	case f.APIKey != "":
		owner = indexSources(schema.IndexByKey, "gsi_key", f.APIKey)
	case f.UserID != "":
		owner = indexSources(schema.IndexByUser, "gsi_user", f.UserID)
	case f.TeamID != "":
		owner = indexSources(schema.IndexByTeam, "gsi_team", f.TeamID)
	}
	// The index keys carry a shard suffix, so a log of another id can share a value ("a#1"
	// of id "a#1" and of id "a", shard 1): keep only the logs of the ids asked for.
	match := func(l *SpendLog) bool {
		return (f.APIKey == "" || l.APIKey == f.APIKey) && (f.UserID == "" || l.User == f.UserID) && (f.TeamID == "" || l.TeamID == f.TeamID)
	}
	lo, hi := SortPrefixSpendLog, SortPrefixSpendLog+"~"
	if !f.Start.IsZero() {
		lo = logSort(f.Start)
	}
	if !f.End.IsZero() {
		hi = logSort(f.End) + "~"
	}
	if owner != nil {
		_, err := s.mergeLogs(ctx, owner, lo, hi, match, visit)
		return err
	}
	end, start := f.End, f.Start
	if end.IsZero() {
		end = time.Now()
	}
	if start.IsZero() {
		start = end.AddDate(0, 0, -DefaultSpendLogDays)
	}
	for day := end.UTC().Truncate(24 * time.Hour); !day.Before(start.UTC().Truncate(24 * time.Hour)); day = day.AddDate(0, 0, -1) {
		more, err := s.mergeLogs(ctx, daySources(day), lo, hi, match, visit)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// logSource is one partition of spend logs: a day's shard in the table (index ""), or an
// index key.
type logSource struct {
	index, attr, value string
}

// indexSources are the index keys of value's logs: value itself (logs written before
// sharding) and its LogShards shards.
func indexSources(index, attr, value string) []logSource {
	out := []logSource{{index, attr, value}}
	for n := range LogShards {
		out = append(out, logSource{index, attr, value + "#" + strconv.Itoa(n)})
	}
	return out
}

// daySources are the partitions of the logs of day: its LogShards shards in the table, and
// the by_kind keys of its logs with undated ids (see PrefixSpendLog).
func daySources(day time.Time) []logSource {
	out := make([]logSource, 0, 2*LogShards+1)
	for n := range LogShards {
		out = append(out, logSource{"", schema.AttrPK, logDay(day) + "#" + strconv.Itoa(n)})
	}
	return append(out, indexSources(schema.IndexByKind, "kind", logDay(day))...)
}

// mergeLogs visits the logs of sources, newest first, merged by sort key. It reports false
// when visit stopped it.
func (s *Store) mergeLogs(ctx context.Context, sources []logSource, lo, hi string, match func(*SpendLog) bool, visit func(SpendLog) bool) (bool, error) {
	streams := make([]*logStream, 0, len(sources))
	for _, src := range sources {
		streams = append(streams, s.logStream(src, lo, hi))
	}
	for {
		var newest *logStream
		for _, st := range streams {
			if err := st.fill(ctx); err != nil {
				return false, fmt.Errorf("query spend logs (%s %s): %w", st.src.index, st.src.value, err)
			}
			if len(st.buf) > 0 && (newest == nil || st.sortKey() > newest.sortKey()) {
				newest = st
			}
		}
		if newest == nil {
			return true, nil
		}
		l := newest.buf[0]
		newest.buf = newest.buf[1:]
		if match(&l) && !visit(l) {
			return false, nil
		}
	}
}

// query is the Query of src's logs with sort keys from lo to hi, newest first.
func (src logSource) query(table, lo, hi string) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("#p = :p AND #s BETWEEN :lo AND :hi"),
		ExpressionAttributeNames:  map[string]string{"#p": src.attr, "#s": schema.AttrSK},
		ExpressionAttributeValues: item{":p": &types.AttributeValueMemberS{Value: src.value}, ":lo": &types.AttributeValueMemberS{Value: lo}, ":hi": &types.AttributeValueMemberS{Value: hi}},
		ScanIndexForward:          aws.Bool(false),
	}
	if src.index != "" {
		in.IndexName = aws.String(src.index)
		in.ExpressionAttributeNames["#s"] = "gsi_sort"
	}
	return in
}

// logStream returns the stream of src's logs with sort keys from lo to hi.
func (s *Store) logStream(src logSource, lo, hi string) *logStream {
	return &logStream{s: s, src: src, pager: dynamodb.NewQueryPaginator(s.db, src.query(s.table, lo, hi))}
}

// logStream reads one partition's logs, newest first, a page at a time; indexes that
// project only keys are read maxBatchGet logs at a time, so a visit that stops early reads
// little more than it needed.
type logStream struct {
	s       *Store
	src     logSource
	pager   *dynamodb.QueryPaginator
	entries []item     // index entries not read yet
	buf     []SpendLog // logs read, not visited yet
}

func (st *logStream) fill(ctx context.Context) error {
	for len(st.buf) == 0 {
		if len(st.entries) == 0 {
			if !st.pager.HasMorePages() {
				return nil
			}
			page, err := st.pager.NextPage(ctx)
			if err != nil {
				return err
			}
			st.entries = page.Items
			continue
		}
		n := min(len(st.entries), maxBatchGet)
		items := st.entries[:n]
		if st.src.index != "" {
			var err error
			if items, err = st.s.indexItems(ctx, st.src.index, items); err != nil {
				return fmt.Errorf("spend logs: %w", err)
			}
		}
		st.entries = st.entries[n:]
		if err := attributevalue.UnmarshalListOfMaps(items, &st.buf); err != nil {
			return fmt.Errorf("decode spend logs: %w", err)
		}
	}
	return nil
}

// sortKey is the sort key of the stream's next log.
func (st *logStream) sortKey() string {
	return logSort(st.buf[0].StartTime) + "#" + st.buf[0].RequestID
}

// EachSpendLog calls visit for every spend log matching f (Limit is ignored), newest
// first, for aggregations that must not hold all logs at once.
func (s *Store) EachSpendLog(ctx context.Context, f SpendLogFilter, visit func(SpendLog)) error {
	return s.eachSpendLog(ctx, f, func(l SpendLog) bool { visit(l); return true })
}
