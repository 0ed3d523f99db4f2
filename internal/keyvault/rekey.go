package keyvault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// DeliveryGrace is how long the old value of a key stays valid, at least, while the new value
// is not yet current in Secrets Manager. A delivery interrupted after the rotation committed
// is retried by every later run, and each failed retry pushes the old value's revoke time to
// DeliveryGrace after it, so the value readers of AWSCURRENT hold keeps working however long
// Secrets Manager is down (up to the delivery record's 7-day TTL). Once the new value is
// current, the old one gets the grace period that was asked for (none: revoked at once).
const DeliveryGrace = 24 * time.Hour

// DeliveryRetryAfter is when a later run takes over a delivery that its own rotation did not
// finish. It is far longer than a rotation takes, so a run never mistakes a rotation still in
// progress for an abandoned one.
const DeliveryRetryAfter = 5 * time.Minute

// Rekeyer gives a virtual key a new secret and, when keys are stored in Secrets Manager,
// delivers it there. It is the code behind both POST /key/{key}/regenerate and
// auto-rotation; the re-keying itself is auth.Regenerate.
//
// With a vault, the steps are ordered so that the current value in Secrets Manager always
// authenticates:
//
//  1. the new value is staged as a pending version (AWSCURRENT still holds the old value);
//     if Secrets Manager fails, nothing has changed and the rotation is retried later;
//  2. a delivery record is written, for a later run to finish the steps below;
//  3. the rotation commits in DynamoDB, the old hash staying valid for at least DeliveryGrace;
//  4. the pending version becomes AWSCURRENT;
//  5. the old hash's revoke time is brought forward to the grace period asked for, counted
//     from the rotation or, for a late delivery, from now (deleted when it is zero), and the
//     delivery record is removed.
//
// A failure after step 3 leaves the key rotated with both values valid; the rotator resumes
// the delivery (Resume) on each run until it is done, keeping the old value valid meanwhile.
type Rekeyer struct {
	store *store.Store
	vault *Vault
}

// NewRekeyer returns a Rekeyer; vault is nil when store_virtual_keys is off.
func NewRekeyer(st *store.Store, vault *Vault) *Rekeyer {
	return &Rekeyer{store: st, vault: vault}
}

// Delivers reports whether new values go to Secrets Manager.
func (r *Rekeyer) Delivers() bool { return r.vault != nil }

// RekeyInput says which key to re-key and how.
type RekeyInput struct {
	Token  string        // hash of the key to re-key
	NewKey string        // the new secret; empty generates one
	Grace  time.Duration // how long the old secret keeps working; 0 revokes it at once
	Now    time.Time
	// Change edits the record before it is written (fields passed to /key/regenerate); an
	// error from it aborts the re-keying.
	Change func(*store.Key) error
}

// Rekeyed is a re-keyed key.
type Rekeyed struct {
	Key    string     // the new secret
	Record *store.Key // the record under its new hash
	// DeliveryErr is set when the key was re-keyed but its new value is not yet current in
	// Secrets Manager; the old value stays valid until a later run finishes the delivery.
	DeliveryErr error
}

// Rekey re-keys the key. An error means the key was not re-keyed (store.ErrNotFound for a
// missing or rotated-out key).
func (r *Rekeyer) Rekey(ctx context.Context, in RekeyInput) (*Rekeyed, error) {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	alias := ""
	if r.vault != nil {
		k, err := r.store.GetKey(ctx, in.Token)
		if err != nil {
			return nil, fmt.Errorf("rekey: %w", err)
		}
		if k.IsPointer() {
			return nil, fmt.Errorf("rekey: key %s: %w", in.Token, store.ErrNotFound)
		}
		alias = aws.ToString(k.KeyAlias)
	}
	if alias == "" { // nothing to deliver
		raw, k, err := auth.Regenerate(ctx, r.store, in.Token, auth.RegenerateOptions{
			NewKey: in.NewKey, Grace: in.Grace, Now: in.Now, Change: in.Change,
		})
		if err != nil {
			return nil, err
		}
		return &Rekeyed{Key: raw, Record: k}, nil
	}

	raw := in.NewKey
	if raw == "" {
		var err error
		if raw, err = auth.NewKey(); err != nil {
			return nil, err
		}
	}
	token := auth.Hash(raw)
	// The version id is the new hash: 64 characters, and a retried stage of the same value is
	// the same version.
	if err := r.vault.Stage(ctx, alias, raw, token); err != nil {
		return nil, fmt.Errorf("rekey: %w", err)
	}
	d := &store.Delivery{
		NewToken: token, OldToken: in.Token, KeyAlias: alias, Version: token,
		RevokeAt: in.Now.Add(in.Grace).UTC(), Grace: in.Grace, RetryAt: in.Now.Add(DeliveryRetryAfter).UTC(),
	}
	if err := r.store.PutDelivery(ctx, d); err != nil {
		return nil, fmt.Errorf("rekey: %w", err)
	}
	raw, k, err := auth.Regenerate(ctx, r.store, in.Token, auth.RegenerateOptions{
		NewKey: raw, Grace: max(in.Grace, DeliveryGrace), Now: in.Now, Change: in.Change,
	})
	if err != nil {
		// Not rotated: the staged version is never promoted. A delivery record left behind
		// is dropped by Resume, which finds no key under the new hash.
		if derr := r.store.DeleteDelivery(ctx, token); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	out := &Rekeyed{Key: raw, Record: k, DeliveryErr: r.finish(ctx, d, in.Now)}
	if na := aws.ToString(k.KeyAlias); na != alias && na != "" && out.DeliveryErr == nil {
		// /key/regenerate renamed the key: its value goes under the new name too.
		out.DeliveryErr = r.vault.Put(ctx, na, raw)
	}
	return out, nil
}

// Deliver stores the value of a newly generated key (POST /key/generate, /user/new) under its
// alias. It does nothing when keys are not stored in Secrets Manager or the key has no alias.
func (r *Rekeyer) Deliver(ctx context.Context, alias, key string) error {
	if r.vault == nil || alias == "" {
		return nil
	}
	return r.vault.Put(ctx, alias, key)
}

// Resume finishes the delivery of the key with hash newToken, if a rotation left it
// unfinished. It reports whether a delivery was finished; a delivery whose rotation never
// committed, or whose key has been rotated again since, is dropped.
func (r *Rekeyer) Resume(ctx context.Context, newToken string, now time.Time) (bool, error) {
	d, err := r.store.GetDelivery(ctx, newToken)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	k, err := r.store.GetKey(ctx, newToken)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && k.IsPointer():
		return false, r.store.DeleteDelivery(ctx, newToken)
	case err != nil:
		return false, err
	case r.vault == nil:
		return false, fmt.Errorf("delivery of key %s pending, but store_virtual_keys is off", newToken)
	}
	if err := r.finish(ctx, d, now); err != nil {
		return false, err
	}
	return true, nil
}

// finish makes the staged version current, then cuts the old hash's grace to what was asked
// (counted from now when the delivery is late) and removes the delivery record. While the
// version cannot be made current, the old value is all readers of the secret have: its
// revoke time is pushed back instead.
func (r *Rekeyer) finish(ctx context.Context, d *store.Delivery, now time.Time) error {
	if err := r.vault.Promote(ctx, d.KeyAlias, d.Version); err != nil {
		if xerr := r.store.ExtendPointer(ctx, d.OldToken, d.NewToken, now.Add(DeliveryGrace)); xerr != nil {
			err = errors.Join(err, xerr)
		}
		return err
	}
	revoke := d.RevokeAt
	if late := now.Add(d.Grace); late.After(revoke) {
		revoke = late
	}
	if err := r.store.RevokePointerAt(ctx, d.OldToken, d.NewToken, revoke, now); err != nil {
		return err
	}
	return r.store.DeleteDelivery(ctx, d.NewToken)
}
