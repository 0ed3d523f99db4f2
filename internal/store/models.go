package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// Models stored with /model/new (general_settings.store_model_in_db) live in one partition,
// pk "MODELS": sk "MODEL#<id>" for each deployment and sk "VERSION" for a counter every
// write bumps in the same transaction. An instance reads the counter to learn whether its
// list is current, and the whole partition in one strongly consistent query when it is not.
const (
	PartitionModels = "MODELS"
	SortModel       = "MODEL#"
	SortVersion     = "VERSION"
)

// StoredModel is a deployment stored in the table.
type StoredModel struct {
	ID        string `dynamodbav:"model_id"`
	ModelName string `dynamodbav:"model_name"`
	// Deployment is the model_list entry as JSON, its os.environ/NAME references unresolved:
	// the table never holds a provider secret.
	Deployment string    `dynamodbav:"deployment"`
	CreatedAt  time.Time `dynamodbav:"created_at"`
	CreatedBy  string    `dynamodbav:"created_by,omitempty"`
	UpdatedAt  time.Time `dynamodbav:"updated_at"`
	UpdatedBy  string    `dynamodbav:"updated_by,omitempty"`
}

// bumpModelsVersion adds the version counter's increment to t.
func (t *Tx) bumpModelsVersion() {
	t.add(types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(t.s.table),
		Key:                       keyOf(PartitionModels, SortVersion),
		UpdateExpression:          aws.String("ADD version :one"),
		ExpressionAttributeValues: item{":one": &types.AttributeValueMemberN{Value: "1"}},
	}}, ErrConflict)
}

// CreateModel stores a new deployment; ErrExists if its id is taken.
func (s *Store) CreateModel(ctx context.Context, m *StoredModel) error {
	t := s.Tx()
	if err := t.put(PartitionModels, SortModel+m.ID, m, nil, fmt.Errorf("model %s: %w", m.ID, ErrExists)); err != nil {
		return err
	}
	t.bumpModelsVersion()
	return t.Commit(ctx)
}

// ReplaceModel stores m in place of old, as read: ErrConflict when the stored model was
// changed or deleted since.
func (s *Store) ReplaceModel(ctx context.Context, old, m *StoredModel) error {
	it, err := marshal(m)
	if err != nil {
		return err
	}
	for k, v := range keyOf(PartitionModels, SortModel+m.ID) {
		it[k] = v
	}
	t := s.Tx()
	t.add(types.TransactWriteItem{Put: &types.Put{
		TableName:                 aws.String(s.table),
		Item:                      it,
		ConditionExpression:       aws.String("updated_at = :old"),
		ExpressionAttributeValues: item{":old": &types.AttributeValueMemberS{Value: old.UpdatedAt.Format(time.RFC3339Nano)}},
	}}, fmt.Errorf("model %s: %w", m.ID, ErrConflict))
	t.bumpModelsVersion()
	return t.Commit(ctx)
}

// DeleteModel deletes a stored deployment; ErrNotFound if there is none with that id.
func (s *Store) DeleteModel(ctx context.Context, id string) error {
	t := s.Tx()
	t.del(PartitionModels, SortModel+id, "attribute_exists(pk)", nil, fmt.Errorf("model %s: %w", id, ErrNotFound))
	t.bumpModelsVersion()
	return t.Commit(ctx)
}

// GetModel reads one stored deployment; ErrNotFound if absent.
func (s *Store) GetModel(ctx context.Context, id string) (*StoredModel, error) {
	var m StoredModel
	if err := s.get(ctx, PartitionModels, SortModel+id, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

type modelsVersion struct {
	Version int64 `dynamodbav:"version"`
}

// ModelsVersion reads the version counter of the stored models (0 before the first write).
func (s *Store) ModelsVersion(ctx context.Context) (int64, error) {
	var v modelsVersion
	err := s.get(ctx, PartitionModels, SortVersion, &v)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return v.Version, err
}

// StoredModels reads every stored deployment and the version they are at, in one strongly
// consistent query of their partition (more pages only past 1 MB).
func (s *Store) StoredModels(ctx context.Context) ([]StoredModel, int64, error) {
	pager := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :p"),
		ExpressionAttributeValues: item{":p": &types.AttributeValueMemberS{Value: PartitionModels}},
		ConsistentRead:            aws.Bool(true),
	})
	var (
		out     []StoredModel
		version int64
	)
	for pager.HasMorePages() {
		res, err := pager.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("query stored models: %w", err)
		}
		for _, it := range res.Items {
			if sk, _ := it[schema.AttrSK].(*types.AttributeValueMemberS); sk != nil && sk.Value == SortVersion {
				if n, _ := it["version"].(*types.AttributeValueMemberN); n != nil {
					version, _ = strconv.ParseInt(n.Value, 10, 64)
				}
				continue
			}
			var m StoredModel
			if err := attributevalue.UnmarshalMap(it, &m); err != nil {
				return nil, 0, fmt.Errorf("decode stored model: %w", err)
			}
			out = append(out, m)
		}
	}
	return out, version, nil
}
