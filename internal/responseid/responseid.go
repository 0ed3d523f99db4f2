// Package responseid makes the ids llmgate answers with in place of the upstream's, and
// finds the call (its spend log) an id names, with no index of upstream ids to write on
// every call.
//
// A chat, completion or message id is the upstream's prefix ("chatcmpl-", "msg_") and the
// call id (For). A Responses API response is kept by the upstream where it was made, so a
// later GET, DELETE or previous_response_id must reach the same deployment, and only the
// response's owners may use it: its id is the upstream's id sealed (AES-GCM) together
// with the deployment that made it, the key and team that own it and the call: no table to
// write on every call or read on every lookup, valid on every instance, and neither
// readable nor forgeable by a client.
package responseid

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/llmgate/llmgate/internal/callid"
)

// Prefix starts every sealed id, as OpenAI's response ids start with "resp_".
const Prefix = "resp_"

// Ref is what a sealed id holds.
type Ref struct {
	Deployment string `json:"d"`           // model_info.id of the deployment that made the response
	ID         string `json:"i"`           // the upstream's own response id
	Key        string `json:"k,omitempty"` // the owner's key hash ("" for the master key or with auth off)
	Team       string `json:"t,omitempty"` // the owner's team id
	Call       string `json:"c,omitempty"` // the call id of the call that made it
}

// ReadableBy reports whether a caller with key hash key and team team may use the
// response: it was made with the same key, or by a key of the same team. (Proxy admins
// and callers with auth off are not asked.)
func (r Ref) ReadableBy(key, team string) bool {
	return (key != "" && r.Key == key) || (team != "" && r.Team == team)
}

// Codec seals and opens ids. It is safe for concurrent use.
type Codec struct{ aead cipher.AEAD }

// New returns a codec whose key is derived from secret (the master key): ids stay valid
// across instances and restarts while the secret does.
func New(secret string) *Codec {
	key := sha256.Sum256([]byte("llmgate response ids\x00" + secret))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Codec{aead: aead}
}

// Seal returns the id the client sees for r.
func (c *Codec) Seal(r Ref) string {
	plain, _ := json.Marshal(r)
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	_, _ = rand.Read(nonce)
	return Prefix + base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, plain, nil))
}

// Open returns what id holds; ok is false for an id this codec did not seal (another
// secret, an upstream's own id, a tampered one).
func (c *Codec) Open(id string) (r Ref, ok bool) {
	rest, found := strings.CutPrefix(id, Prefix)
	if !found {
		return Ref{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	n := c.aead.NonceSize()
	if err != nil || len(raw) < n {
		return Ref{}, false
	}
	plain, err := c.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil || json.Unmarshal(plain, &r) != nil || r.Deployment == "" || r.ID == "" {
		return Ref{}, false
	}
	return r, true
}

// maxIDPrefix bounds the prefix For keeps of an upstream's id.
const maxIDPrefix = 16

// For returns the id llmgate answers a call with in place of the upstream's id upstream:
// the upstream's prefix, a run of lowercase letters ending in '-' or '_' ("chatcmpl-",
// "msg_"), if it has one, and the call id.
func For(upstream, call string) string {
	for i := 0; i < len(upstream) && i <= maxIDPrefix; i++ {
		b := upstream[i]
		if (b == '-' || b == '_') && i > 0 {
			return upstream[:i+1] + call
		}
		if b < 'a' || b > 'z' {
			break
		}
	}
	return call
}

// CallOf returns the call id that id names: a call id itself, an id For made, or a
// sealed id this codec made. ok is false for any other id (the upstream's own ids, which
// llmgate's answers never carry).
func (c *Codec) CallOf(id string) (call string, ok bool) {
	if r, sealed := c.Open(id); sealed {
		return r.Call, r.Call != ""
	}
	if len(id) < callIDLen {
		return "", false
	}
	call = id[len(id)-callIDLen:]
	if _, dated := callid.Time(call); !dated || For(id, call) != id {
		return "", false
	}
	return call, true
}

// callIDLen is the length of a call id (a UUID in canonical form).
const callIDLen = 36
