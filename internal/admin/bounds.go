package admin

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/llmgate/llmgate/internal/auth"
)

// Bounds on what a management request may size, so every record it writes fits a DynamoDB
// item, every number is one DynamoDB stores and the budget code can compute with, and the
// rotator's reset of a record fits one update expression. A request past one is a 400 that
// names the field, before anything is written.
const (
	maxIDBytes = 256 // ids, emails, aliases, model names, tags, key values
	// maxResponseIDBytes bounds a request_id looked up: a sealed Responses id holds the
	// upstream's id, the deployment, key hash, team and call (~370 bytes for common ones).
	maxResponseIDBytes = 2048
	maxEntries         = 100 // models, aliases, tags, per-model budgets and limits of one record
	// maxResetting bounds the budgets of one record that reset on a period (budget_limits
	// windows and model_max_budget entries with a time_period): the rotator resets them all
	// in one update, whose expression DynamoDB caps at 4 KB.
	maxResetting  = 10
	maxMetadata   = 16 << 10 // bytes of metadata, as JSON
	maxAmount     = 1e12     // dollars in any budget or spend
	minAmount     = 1e-9     // the smallest amount but 0 (DynamoDB stores none below 1e-130)
	maxLimit      = 1e12     // requests, tokens, parallel requests
	minKeyBody    = 20       // characters of a custom key after "sk-"
	minKeyEntropy = 64       // estimated bits of a custom key after "sk-"
)

// checkID refuses an id that is too long or holds control characters.
func checkID(field, v string) error {
	return checkIDUpTo(field, v, maxIDBytes)
}

// checkIDUpTo is checkID with a limit of most bytes.
func checkIDUpTo(field, v string, most int) error {
	if len(v) > most {
		return badRequest("%s is %d bytes long; the limit is %d.", field, len(v), most).WithParam(field)
	}
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return badRequest("%s holds control characters or invalid UTF-8.", field).WithParam(field)
	}
	return nil
}

// checkAmount refuses a money amount that is not finite or out of range (NaN passes every
// comparison, so a NaN budget would never bind; 1e308 is past what DynamoDB stores).
func checkAmount(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxAmount || v != 0 && v < minAmount {
		return badRequest("%s must be 0 or a number from %g to %g. Received: %v", field, minAmount, maxAmount, v).WithParam(field)
	}
	return nil
}

// checkLimit refuses a request or token limit out of range.
func checkLimit(field string, v int64) error {
	if v < 0 || v > maxLimit {
		return badRequest("%s must be a whole number from 0 to %g. Received: %d", field, float64(maxLimit), v).WithParam(field)
	}
	return nil
}

// checkList refuses a list or map with too many entries, or an entry that is not a fit id.
func checkList(field string, entries []string) error {
	if len(entries) > maxEntries {
		return badRequest("%s has %d entries; the limit is %d.", field, len(entries), maxEntries).WithParam(field)
	}
	for _, e := range entries {
		if err := checkID(field, e); err != nil {
			return err
		}
	}
	return nil
}

// checkMetadata refuses metadata larger than maxMetadata as JSON.
func checkMetadata(field string, m map[string]any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return badRequest("%s cannot be stored: %v", field, err).WithParam(field)
	}
	if len(b) > maxMetadata {
		return badRequest("%s is %d bytes as JSON; the limit is %d.", field, len(b), maxMetadata).WithParam(field)
	}
	return nil
}

// keyValueRefused is the answer to a custom key value that cannot be used, whatever the
// reason: the same for one in use as for the master key, so it tells nothing of either.
func keyValueRefused() error {
	return invalid("This key value cannot be used; choose another.").WithParam("key")
}

// checkKeyValue refuses a custom key value that is not a LiteLLM virtual key, is short or
// guessable, or is the master key.
func checkKeyValue(field, raw, masterKey string) error {
	if !strings.HasPrefix(raw, auth.KeyPrefix) {
		return invalid(fmt.Sprintf("Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: %s", maskKey(raw))).WithParam(field)
	}
	if err := checkID(field, raw); err != nil {
		return err
	}
	body := raw[len(auth.KeyPrefix):]
	if len(body) < minKeyBody || entropyBits(body) < minKeyEntropy {
		return invalid(fmt.Sprintf(
			"%s is too easy to guess: after 'sk-' it needs at least %d characters and about %d bits of randomness (e.g. 22 random URL-safe characters).",
			field, minKeyBody, minKeyEntropy)).WithParam(field)
	}
	if masterKey != "" && subtle.ConstantTimeCompare([]byte(raw), []byte(masterKey)) == 1 {
		return keyValueRefused()
	}
	return nil
}

// entropyBits estimates the randomness of s: its length times the Shannon entropy of its
// characters. Repeats and short alphabets score low; it is a floor against guessable
// values, not a proof of randomness.
func entropyBits(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h * float64(n)
}
