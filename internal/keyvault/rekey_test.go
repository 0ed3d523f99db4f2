package keyvault_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/mototest"
	"github.com/llmgate/llmgate/internal/store"
)

// createKey stores a key (with the alias, when not empty) and returns its raw value.
func createKey(t *testing.T, st *store.Store, alias string, now time.Time) string {
	t.Helper()
	raw, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k := &store.Key{Token: auth.Hash(raw), KeyName: auth.KeyName(raw)}
	if alias != "" {
		k.KeyAlias = &alias
	}
	k.CreatedAt, k.UpdatedAt = now, now
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRekey(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		alias       string
		vault       bool
		grace       time.Duration
		wantSecret  bool          // the new value is the alias's current secret
		wantRevoke  time.Duration // the old hash stays valid this long (0: deleted)
		wantPointer bool
	}{
		{"with a grace period: delivered, old valid until then", "billing", true, time.Hour, true, time.Hour, true},
		{"without grace: delivered, old revoked once it is", "billing", true, 0, true, 0, false},
		{"no key_alias: nothing to deliver", "", true, time.Hour, false, time.Hour, true},
		{"store_virtual_keys off", "billing", false, 0, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := store.NewWithClient(dynamotest.NewTable(t))
			sm := mototest.SecretsManager(t)
			var v *keyvault.Vault
			if tt.vault {
				v = keyvault.New(sm, mototest.Prefix(t))
			}
			old := createKey(t, st, tt.alias, now.Add(-time.Hour))
			rk := keyvault.NewRekeyer(st, v)
			res, err := rk.Rekey(ctx, keyvault.RekeyInput{Token: auth.Hash(old), Grace: tt.grace, Now: now})
			if err != nil {
				t.Fatalf("Rekey: %v", err)
			}
			if res.DeliveryErr != nil {
				t.Fatalf("Rekey delivery: %v", res.DeliveryErr)
			}
			if res.Record.Token != auth.Hash(res.Key) || res.Record.RotationCount != 1 {
				t.Errorf("record = token %s, count %d; want the new key's hash, rotated once", res.Record.Token, res.Record.RotationCount)
			}
			if tt.wantSecret {
				if got := current(t, sm, v.Name(tt.alias)); got != res.Key {
					t.Errorf("current secret = %q, want the new key", got)
				}
			}
			p, err := st.GetKey(ctx, auth.Hash(old))
			switch {
			case !tt.wantPointer && !errors.Is(err, store.ErrNotFound):
				t.Errorf("old hash = %+v, %v; want it deleted", p, err)
			case tt.wantPointer && (err != nil || p.RevokeAt == nil || !p.RevokeAt.Equal(now.Add(tt.wantRevoke))):
				t.Errorf("old hash = %+v, %v; want a pointer revoked at now+%v", p, err, tt.wantRevoke)
			}
			if _, err := st.GetDelivery(ctx, auth.Hash(res.Key)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delivery record left behind: %v", err)
			}
			if _, err := rk.Rekey(ctx, keyvault.RekeyInput{Token: auth.Hash(old), Now: now}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Rekey of the rotated-out hash: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRekey_StageFailureLeavesTheKey(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	st := store.NewWithClient(dynamotest.NewTable(t))
	old := createKey(t, st, "billing", now)
	rk := keyvault.NewRekeyer(st, keyvault.New(downAPI{}, "llmgate/keys/"))
	if _, err := rk.Rekey(ctx, keyvault.RekeyInput{Token: auth.Hash(old), Now: now}); err == nil {
		t.Fatal("Rekey with Secrets Manager down: got nil error")
	}
	k, err := st.GetKey(ctx, auth.Hash(old))
	if err != nil || k.IsPointer() || k.RotationCount != 0 {
		t.Errorf("key = %+v, %v; want it untouched", k, err)
	}
}

func TestDeliver(t *testing.T) {
	ctx := context.Background()
	st := store.NewWithClient(dynamotest.NewTable(t))
	sm := mototest.SecretsManager(t)
	v := keyvault.New(sm, mototest.Prefix(t))
	if err := keyvault.NewRekeyer(st, v).Deliver(ctx, "app", "sk-generated"); err != nil {
		t.Fatal(err)
	}
	if got := current(t, sm, v.Name("app")); got != "sk-generated" {
		t.Errorf("current secret = %q, want sk-generated", got)
	}
	for name, rk := range map[string]*keyvault.Rekeyer{
		"store_virtual_keys off": keyvault.NewRekeyer(st, nil),
		"no key_alias":           keyvault.NewRekeyer(st, keyvault.New(downAPI{}, "x/")),
	} {
		alias := "app"
		if name == "no key_alias" {
			alias = ""
		}
		if err := rk.Deliver(ctx, alias, "sk-x"); err != nil {
			t.Errorf("%s: Deliver = %v, want nothing done", name, err)
		}
	}
}

// TestRekey_OverlappingRotationsDeliverTheWinner overlaps two rotations of one key so that
// the loser stages its value after the winner's, taking the AWSPENDING label from it: the
// winner's value must still become current.
func TestRekey_OverlappingRotationsDeliverTheWinner(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	st := store.NewWithClient(dynamotest.NewTable(t))
	sm := newFakeSM()
	v := keyvault.New(sm, "llmgate/keys/")
	rk := keyvault.NewRekeyer(st, v)
	old := createKey(t, st, "app", now.Add(-time.Hour))
	if err := rk.Deliver(ctx, "app", old); err != nil {
		t.Fatal(err)
	}
	winner, loser := newRaw(t), newRaw(t)

	winnerDone, loserStaged := make(chan struct{}), make(chan struct{})
	loserErr := make(chan error, 1)
	sm.staged = func(version string) {
		switch version {
		case auth.Hash(winner):
			// The loser runs now and stages after the winner; it then waits to commit until
			// the winner has committed and promoted.
			go func() {
				_, err := rk.Rekey(ctx, keyvault.RekeyInput{
					Token: auth.Hash(old), NewKey: loser, Grace: time.Hour, Now: now,
					Change: func(*store.Key) error { <-winnerDone; return nil },
				})
				loserErr <- err
			}()
			<-loserStaged
		case auth.Hash(loser):
			close(loserStaged)
		}
	}
	res, err := rk.Rekey(ctx, keyvault.RekeyInput{Token: auth.Hash(old), NewKey: winner, Grace: time.Hour, Now: now})
	close(winnerDone)
	if err != nil {
		t.Fatalf("winner's Rekey: %v", err)
	}
	if err := <-loserErr; err == nil {
		t.Error("loser's Rekey: got nil error, want its commit refused")
	}
	if res.DeliveryErr != nil {
		t.Errorf("winner's delivery: %v", res.DeliveryErr)
	}
	if got := sm.value(v.Name("app"), keyvault.StageCurrent); got != winner {
		t.Errorf("AWSCURRENT = %q, want the winner's key %q (loser's: %q)", got, winner, loser)
	}
	if _, err := st.GetDelivery(ctx, auth.Hash(winner)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("winner's delivery record left behind: %v", err)
	}
}

func newRaw(t *testing.T) string {
	t.Helper()
	raw, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
