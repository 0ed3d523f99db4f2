// Package keyvault delivers virtual key values to AWS Secrets Manager
// (general_settings.store_virtual_keys), so that applications read the current value of a key
// by its key_alias, as they read a rotated RDS password.
//
// Each key is one secret named prefix + key_alias whose SecretString is the raw key. A new key
// is written as the current version (Put). A rotation writes the new value as a pending
// version first (Stage, label AWSPENDING), and makes it current (Promote, label AWSCURRENT)
// only after the new key works, so readers of AWSCURRENT never get a value that does not
// authenticate. Every call is idempotent: a step that failed is simply repeated.
//
// Rekeyer puts the two together: it re-keys a virtual key (auth.Regenerate) and delivers the
// new value in that order. POST /key/{key}/regenerate and the rotator's auto-rotation both
// use it; POST /key/generate stores new keys with Deliver.
package keyvault

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Version stage labels of Secrets Manager.
const (
	StageCurrent = "AWSCURRENT"
	StagePending = "AWSPENDING"
)

// API is the part of the Secrets Manager client the vault uses; *secretsmanager.Client
// implements it.
type API interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

// Vault writes key values under one name prefix.
type Vault struct {
	api    API
	prefix string
}

// New returns a vault that names secrets prefix + key_alias.
func New(api API, prefix string) *Vault {
	return &Vault{api: api, prefix: prefix}
}

// Name is the secret name of the key with the alias.
func (v *Vault) Name(alias string) string { return v.prefix + alias }

// Put makes value the current value of the alias's secret, creating the secret if missing.
// It is what /key/generate calls once the key is stored.
func (v *Vault) Put(ctx context.Context, alias, value string) error {
	name := v.Name(alias)
	put := func() error {
		_, err := v.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(name), SecretString: aws.String(value),
		})
		return err
	}
	err := put()
	if isNotFound(err) {
		_, err = v.api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(name), SecretString: aws.String(value),
			Description: aws.String("llmgate virtual key " + alias),
		})
		if isExists(err) { // created concurrently: write the value as a new version
			err = put()
		}
	}
	if err != nil {
		return fmt.Errorf("store key %q in Secrets Manager secret %s: %w", alias, name, err)
	}
	return nil
}

// Stage writes value as the pending version version (32 to 64 characters; the same version
// and value may be staged again) of the alias's secret, creating the secret if missing. The
// current value is left as it is.
func (v *Vault) Stage(ctx context.Context, alias, value, version string) error {
	name := v.Name(alias)
	put := func() error {
		_, err := v.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(name), SecretString: aws.String(value),
			ClientRequestToken: aws.String(version), VersionStages: []string{StagePending},
		})
		return err
	}
	err := put()
	if isNotFound(err) {
		// A secret created without a value has no version yet; the staged one is its first.
		_, err = v.api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(name), Description: aws.String("llmgate virtual key " + alias),
		})
		if err == nil || isExists(err) {
			err = put()
		}
	}
	if err != nil {
		return fmt.Errorf("stage new value of key %q in Secrets Manager secret %s: %w", alias, name, err)
	}
	return nil
}

// Promote makes the staged version the current value of the alias's secret and drops its
// pending label. It does nothing that is already done.
//
// It does not need the version to still be labelled AWSPENDING: when two rotations of a key
// overlap, the one that loses the commit may stage its value after the winner's, moving the
// AWSPENDING label off the winner's version. Secrets Manager omits versions without a label
// from DescribeSecret, but it still moves AWSCURRENT to them by id.
func (v *Vault) Promote(ctx context.Context, alias, version string) error {
	name := v.Name(alias)
	desc, err := v.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		return fmt.Errorf("promote key %q: describe Secrets Manager secret %s: %w", alias, name, err)
	}
	stages := desc.VersionIdsToStages[version]
	if !slices.Contains(stages, StageCurrent) {
		in := &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(name), VersionStage: aws.String(StageCurrent), MoveToVersionId: aws.String(version),
		}
		for id, st := range desc.VersionIdsToStages {
			if slices.Contains(st, StageCurrent) {
				in.RemoveFromVersionId = aws.String(id)
			}
		}
		if _, err := v.api.UpdateSecretVersionStage(ctx, in); err != nil {
			return fmt.Errorf("promote key %q: make version %s current in Secrets Manager secret %s: %w", alias, version, name, err)
		}
	}
	if slices.Contains(stages, StagePending) {
		if _, err := v.api.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(name), VersionStage: aws.String(StagePending), RemoveFromVersionId: aws.String(version),
		}); err != nil {
			return fmt.Errorf("promote key %q: clear pending label in Secrets Manager secret %s: %w", alias, name, err)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

func isExists(err error) bool {
	var ex *types.ResourceExistsException
	return errors.As(err, &ex)
}

// Connect returns a vault on Secrets Manager in region, with credentials from the default AWS
// chain. AWS_ENDPOINT_URL_SECRETS_MANAGER points it at another endpoint (moto, LocalStack).
func Connect(ctx context.Context, region, prefix string) (*Vault, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("load AWS config for Secrets Manager: %w", err)
	}
	return New(secretsmanager.NewFromConfig(cfg), prefix), nil
}
