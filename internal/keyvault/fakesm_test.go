package keyvault_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/llmgate/llmgate/internal/keyvault"
)

// fakeSM is Secrets Manager as AWS documents it, where moto differs: a version without
// staging labels is left out of DescribeSecret's VersionIdsToStages, and a label attached to
// another version moves only when that version is named in RemoveFromVersionId. (It keeps
// no AWSPREVIOUS label, which the vault never reads.)
type fakeSM struct {
	mu      sync.Mutex
	secrets map[string]map[string]*fakeVersion // name → version id → version
	// staged, when set, is called after a PutSecretValue with stage labels has been applied,
	// outside the lock, so a test can interleave other calls.
	staged func(version string)
}

type fakeVersion struct {
	value  string
	stages []string
}

var _ keyvault.API = (*fakeSM)(nil)

func newFakeSM() *fakeSM { return &fakeSM{secrets: map[string]map[string]*fakeVersion{}} }

func (f *fakeSM) CreateSecret(_ context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := aws.ToString(in.Name)
	if _, ok := f.secrets[name]; ok {
		return nil, &types.ResourceExistsException{Message: aws.String("secret " + name + " exists")}
	}
	f.secrets[name] = map[string]*fakeVersion{}
	if in.SecretString != nil {
		f.secrets[name][versionID(in.ClientRequestToken)] = &fakeVersion{value: *in.SecretString, stages: []string{keyvault.StageCurrent}}
	}
	return &secretsmanager.CreateSecretOutput{Name: in.Name}, nil
}

func (f *fakeSM) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	id := versionID(in.ClientRequestToken)
	if err := f.put(aws.ToString(in.SecretId), id, aws.ToString(in.SecretString), in.VersionStages); err != nil {
		return nil, err
	}
	if f.staged != nil && len(in.VersionStages) > 0 {
		f.staged(id)
	}
	return &secretsmanager.PutSecretValueOutput{VersionId: aws.String(id)}, nil
}

func (f *fakeSM) put(name, id, value string, stages []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.secrets[name]
	if !ok {
		return &types.ResourceNotFoundException{Message: aws.String("no secret " + name)}
	}
	if v, ok := vs[id]; ok {
		if v.value != value {
			return &types.ResourceExistsException{Message: aws.String("version " + id + " exists with another value")}
		}
		return nil // the same request again
	}
	if len(stages) == 0 || len(vs) == 0 { // the first version of a secret is always current
		stages = append(slices.Clone(stages), keyvault.StageCurrent)
	}
	vs[id] = &fakeVersion{value: value}
	for _, st := range stages {
		for _, v := range vs {
			v.stages = slices.DeleteFunc(v.stages, func(s string) bool { return s == st })
		}
		vs[id].stages = append(vs[id].stages, st)
	}
	return nil
}

func (f *fakeSM) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.secrets[aws.ToString(in.SecretId)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no secret " + aws.ToString(in.SecretId))}
	}
	out := &secretsmanager.DescribeSecretOutput{Name: in.SecretId, VersionIdsToStages: map[string][]string{}}
	for id, v := range vs {
		if len(v.stages) > 0 { // as AWS: versions without a label are not listed
			out.VersionIdsToStages[id] = slices.Clone(v.stages)
		}
	}
	return out, nil
}

func (f *fakeSM) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, st := aws.ToString(in.SecretId), aws.ToString(in.VersionStage)
	vs, ok := f.secrets[name]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no secret " + name)}
	}
	invalid := func(format string, a ...any) error {
		return &types.InvalidParameterException{Message: aws.String(fmt.Sprintf(format, a...))}
	}
	from, to := aws.ToString(in.RemoveFromVersionId), aws.ToString(in.MoveToVersionId)
	if from != "" && (vs[from] == nil || !slices.Contains(vs[from].stages, st)) {
		return nil, invalid("version %s does not have label %s", from, st)
	}
	if to != "" {
		if vs[to] == nil {
			return nil, &types.ResourceNotFoundException{Message: aws.String("no version " + to)}
		}
		for id, v := range vs {
			if id != to && id != from && slices.Contains(v.stages, st) {
				return nil, invalid("label %s is attached to version %s: name it in RemoveFromVersionId", st, id)
			}
		}
	}
	if from != "" {
		vs[from].stages = slices.DeleteFunc(vs[from].stages, func(s string) bool { return s == st })
	}
	if to != "" && !slices.Contains(vs[to].stages, st) {
		vs[to].stages = append(vs[to].stages, st)
	}
	return &secretsmanager.UpdateSecretVersionStageOutput{Name: in.SecretId}, nil
}

// value returns the value of the secret's version with the label, or "" if none has it.
func (f *fakeSM) value(name, stage string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.secrets[name] {
		if slices.Contains(v.stages, stage) {
			return v.value
		}
	}
	return ""
}

// versionID is the ClientRequestToken, or a new id as the SDK would generate.
func versionID(token *string) string {
	if token != nil {
		return *token
	}
	return rand.Text()
}
