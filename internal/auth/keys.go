package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/store"
)

// KeyPrefix starts every virtual key and the master key.
const KeyPrefix = "sk-"

// secretBytes is the entropy of a generated key: 16 bytes, 22 URL-safe characters, as
// LiteLLM's secrets.token_urlsafe(16).
const secretBytes = 16

// Headers LiteLLM reads a key from, in its order (after Authorization's Bearer).
var keyHeaders = []string{"x-litellm-api-key", "Authorization", "API-Key", "x-api-key", "x-goog-api-key", "Ocp-Apim-Subscription-Key"}

// ExtractKey returns the key a request carries: from the header named customHeader when it
// is set (a "Bearer " prefix stripped), else from x-litellm-api-key, Authorization (Bearer
// or Basic), API-Key, x-api-key, x-goog-api-key, Ocp-Apim-Subscription-Key, in LiteLLM's
// order. malformed is true when the deciding header is an Authorization header with some
// other scheme.
func ExtractKey(h http.Header, customHeader string) (key string, malformed bool) {
	if customHeader != "" {
		return stripScheme(h.Get(customHeader)), false
	}
	for _, name := range keyHeaders {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		if name != "Authorization" {
			return v, false
		}
		for _, scheme := range []string{"Bearer ", "bearer ", "Basic "} {
			if strings.HasPrefix(v, scheme) {
				return strings.TrimSpace(v[len(scheme):]), false
			}
		}
		return "", true
	}
	return "", false
}

func stripScheme(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return v
}

// Hash returns the SHA-256 hex of the full key, the only form in which keys are stored.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// TokenOf turns what an admin passed ("sk-..." raw key, or its hash) into the hash.
func TokenOf(keyOrHash string) string {
	if strings.HasPrefix(keyOrHash, KeyPrefix) {
		return Hash(keyOrHash)
	}
	return keyOrHash
}

// NewKey returns a fresh virtual key: "sk-" and 22 URL-safe characters from crypto/rand.
func NewKey() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// KeyName abbreviates a key as LiteLLM shows it: "sk-...wxyz".
func KeyName(key string) string {
	if len(key) < 4 {
		return "sk-..."
	}
	return "sk-..." + key[len(key)-4:]
}

// mask shows a key as LiteLLM's errors do: the first and last four characters.
func mask(key string) string {
	if len(key) <= 8 {
		return "****"
	}
	return key[:4] + "****" + key[len(key)-4:]
}

// equalKeys compares keys in constant time.
func equalKeys(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// RegenerateOptions say how to re-key a virtual key.
type RegenerateOptions struct {
	// NewKey is the new secret; empty generates one.
	NewKey string
	// Grace keeps the old key working for this long; 0 revokes it at once.
	Grace time.Duration
	Now   time.Time
	// Change edits the record before it is written (for fields passed to /key/regenerate).
	Change func(*store.Key) error
}

// Regenerate re-keys the virtual key with hash token in one transaction (see
// store.RotateKey): new secret and hash, rotation_count+1, last_rotation_at, the next
// key_rotation_at for auto-rotating keys, the old hash a pointer until the grace period
// ends. It returns the new raw key and record. /key/regenerate and the rotator both call it.
func Regenerate(ctx context.Context, st *store.Store, token string, o RegenerateOptions) (string, *store.Key, error) {
	raw := o.NewKey
	if raw == "" {
		var err error
		if raw, err = NewKey(); err != nil {
			return "", nil, err
		}
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	k, err := st.RotateKey(ctx, store.RotateKeyInput{
		OldToken: token, NewToken: Hash(raw), KeyName: KeyName(raw),
		Grace: o.Grace, Now: o.Now, Change: o.Change,
	})
	if err != nil {
		return "", nil, fmt.Errorf("regenerate key: %w", err)
	}
	return raw, k, nil
}
