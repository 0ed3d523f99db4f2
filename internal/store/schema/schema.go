// Package schema is the single definition of llmgate's DynamoDB table: key schema, global
// secondary indexes and TTL attribute. The local server and tests create the table from it;
// the CDK stack builds the same table from it, and an infra test checks that they match.
package schema

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute types, as DynamoDB names them.
const (
	String = "S"
	Number = "N"
)

// Key is one key attribute.
type Key struct {
	Name string
	Type string // String or Number
}

// Index is a global secondary index. Indexes are sparse: an item appears in one only while
// it carries the index's partition key attribute.
type Index struct {
	Name         string
	PartitionKey Key
	SortKey      Key
	Projection   Projection
}

// Projection types, as DynamoDB names them.
const (
	ProjectAll      = "ALL"
	ProjectKeysOnly = "KEYS_ONLY"
	ProjectInclude  = "INCLUDE"
)

// Projection says which attributes an index copies besides the table's and its own keys.
// DynamoDB rewrites an item's index entry whenever a projected attribute changes, so an index
// that holds items whose counters change on every call (keys, users, teams) projects only
// keys, and its readers fetch the items from the table.
type Projection struct {
	Type             string   // ProjectAll, ProjectKeysOnly or ProjectInclude
	NonKeyAttributes []string // with ProjectInclude
}

// Projections of the state table's indexes.
var (
	All      = Projection{Type: ProjectAll}
	KeysOnly = Projection{Type: ProjectKeysOnly}
)

// Include projects the keys and attrs.
func Include(attrs ...string) Projection {
	return Projection{Type: ProjectInclude, NonKeyAttributes: attrs}
}

// Table describes the state table.
type Table struct {
	PartitionKey Key
	SortKey      Key
	TTLAttribute string
	Indexes      []Index
}

// Attribute and index names shared by the store and the rotator.
const (
	AttrPK  = "pk"
	AttrSK  = "sk"
	AttrTTL = "ttl"

	// IndexByUser lists keys (and spend logs) of a user: gsi_user = user id.
	IndexByUser = "by_user"
	// IndexByTeam lists keys (and spend logs) of a team: gsi_team = team id.
	IndexByTeam = "by_team"
	// IndexByKey lists the spend logs of a virtual key: gsi_key = key hash.
	IndexByKey = "by_key"
	// IndexByKind lists records of one kind ("KEY", "USER", "TEAM", ...) for paged list
	// endpoints, and the spend logs of ids that carry no time by day (store.PrefixSpendLog).
	IndexByKind = "by_kind"
	// IndexDueReset finds records whose budget_reset_at has passed (reset_at, unix seconds).
	IndexDueReset = "due_reset"
	// IndexDueRotate finds keys whose key_rotation_at has passed (rotate_at, unix seconds).
	IndexDueRotate = "due_rotate"
	// IndexDueExpire finds reservations, leases and revoked key hashes past expire_at.
	IndexDueExpire = "due_expire"
)

// State is the llmgate state table. Only by_key, which holds nothing but spend logs (never
// changed once written), projects all attributes. The other indexes hold keys, users, teams,
// memberships or reservations, whose counters every call changes (or that are written and
// deleted once per call), so they project keys only; by_user also projects gsi_team, which
// spend log queries by user and team filter on.
var State = Table{
	PartitionKey: Key{AttrPK, String},
	SortKey:      Key{AttrSK, String},
	TTLAttribute: AttrTTL,
	Indexes: []Index{
		{IndexByUser, Key{"gsi_user", String}, Key{"gsi_sort", String}, Include("gsi_team")},
		{IndexByTeam, Key{"gsi_team", String}, Key{"gsi_sort", String}, KeysOnly},
		{IndexByKind, Key{"kind", String}, Key{"gsi_sort", String}, KeysOnly},
		{IndexByKey, Key{"gsi_key", String}, Key{"gsi_sort", String}, All},
		{IndexDueReset, Key{"reset_shard", String}, Key{"reset_at", Number}, KeysOnly},
		{IndexDueRotate, Key{"rotate_shard", String}, Key{"rotate_at", Number}, KeysOnly},
		{IndexDueExpire, Key{"expire_shard", String}, Key{"expire_at", Number}, KeysOnly},
	},
}

// Index returns the index called name.
func (t Table) Index(name string) (Index, bool) {
	for _, ix := range t.Indexes {
		if ix.Name == name {
			return ix, true
		}
	}
	return Index{}, false
}

// CreateTableInput is the on-demand CreateTable request for t under the given name.
func (t Table) CreateTableInput(name string) *dynamodb.CreateTableInput {
	seen := map[string]bool{}
	var defs []types.AttributeDefinition
	def := func(k Key) {
		if !seen[k.Name] {
			seen[k.Name] = true
			defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(k.Name), AttributeType: types.ScalarAttributeType(k.Type)})
		}
	}
	def(t.PartitionKey)
	def(t.SortKey)
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(t.PartitionKey.Name), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(t.SortKey.Name), KeyType: types.KeyTypeRange},
		},
	}
	for _, ix := range t.Indexes {
		def(ix.PartitionKey)
		def(ix.SortKey)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName: aws.String(ix.Name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(ix.PartitionKey.Name), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(ix.SortKey.Name), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionType(ix.Projection.Type),
				NonKeyAttributes: ix.Projection.NonKeyAttributes,
			},
		})
	}
	in.AttributeDefinitions = defs
	return in
}
