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

// Index is a global secondary index projecting all attributes. Indexes are sparse: an item
// appears in one only while it carries the index's partition key attribute.
type Index struct {
	Name         string
	PartitionKey Key
	SortKey      Key
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
	// IndexByKind lists records of one kind ("KEY", "USER", "TEAM", ...) for paged list endpoints.
	IndexByKind = "by_kind"
	// IndexDueReset finds records whose budget_reset_at has passed (reset_at, unix seconds).
	IndexDueReset = "due_reset"
	// IndexDueRotate finds keys whose key_rotation_at has passed (rotate_at, unix seconds).
	IndexDueRotate = "due_rotate"
	// IndexDueExpire finds reservations, leases and revoked key hashes past expire_at.
	IndexDueExpire = "due_expire"
)

// State is the llmgate state table.
var State = Table{
	PartitionKey: Key{AttrPK, String},
	SortKey:      Key{AttrSK, String},
	TTLAttribute: AttrTTL,
	Indexes: []Index{
		{IndexByUser, Key{"gsi_user", String}, Key{"gsi_sort", String}},
		{IndexByTeam, Key{"gsi_team", String}, Key{"gsi_sort", String}},
		{IndexByKind, Key{"kind", String}, Key{"gsi_sort", String}},
		{IndexByKey, Key{"gsi_key", String}, Key{"gsi_sort", String}},
		{IndexDueReset, Key{"reset_shard", String}, Key{"reset_at", Number}},
		{IndexDueRotate, Key{"rotate_shard", String}, Key{"rotate_at", Number}},
		{IndexDueExpire, Key{"expire_shard", String}, Key{"expire_at", Number}},
	},
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
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		})
	}
	in.AttributeDefinitions = defs
	return in
}
