// Package secretenv puts secrets from AWS Secrets Manager into the process environment when
// a Lambda function starts, so that LITELLM_MASTER_KEY and config.yaml's os.environ/NAME
// references resolve to them. Only secret ARNs travel in the function's configuration; the
// values are read once per instance (at init) and live in its memory.
package secretenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Env names the environment variable that lists the secrets to load, as comma-separated
// NAME=SECRET pairs: "LITELLM_MASTER_KEY=arn:aws:secretsmanager:...,OPENAI_API_KEY=arn:...".
// NAME is the environment variable to set; SECRET is a secret ARN or name whose SecretString
// becomes its value.
const Env = "LLMGATE_SECRETS"

// Getter is the part of the Secrets Manager client Load uses.
type Getter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Parse reads a spec in Env's format into environment variable name → secret id.
func Parse(spec string) (map[string]string, error) {
	out := map[string]string{}
	for pair := range strings.SplitSeq(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, id, ok := strings.Cut(pair, "=")
		name, id = strings.TrimSpace(name), strings.TrimSpace(id)
		if !ok || name == "" || id == "" {
			return nil, fmt.Errorf("%s: %q is not NAME=SECRET", Env, pair)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s: %s is listed twice", Env, name)
		}
		out[name] = id
	}
	return out, nil
}

// Load reads every secret in spec (Env's format) concurrently and sets the environment
// variables they are listed under. It sets nothing unless every secret could be read.
func Load(ctx context.Context, c Getter, spec string) error {
	secrets, err := Parse(spec)
	if err != nil {
		return err
	}
	var (
		mu     sync.Mutex
		values = make(map[string]string, len(secrets))
		errs   []error
		wg     sync.WaitGroup
	)
	for name, id := range secrets {
		wg.Go(func() {
			v, err := get(ctx, c, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("secret for %s: %w", name, err))
				return
			}
			values[name] = v
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for name, v := range values {
		if err := os.Setenv(name, v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

func get(ctx context.Context, c Getter, id string) (string, error) {
	out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("get %s: %w", id, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("get %s: the secret has no string value", id)
	}
	return *out.SecretString, nil
}
