package rotation_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/keyvault"
	"github.com/llmgate/llmgate/internal/mototest"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
)

// flakyAPI is Secrets Manager (moto) with operations that can be made to fail.
type flakyAPI struct {
	keyvault.API
	mu   sync.Mutex
	down map[string]bool // operation name → failing
}

func (f *flakyAPI) fail(op string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down == nil {
		f.down = map[string]bool{}
	}
	f.down[op] = down
}

func (f *flakyAPI) err(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[op] {
		return &smtypes.InternalServiceError{Message: aws.String(op + ": service unavailable")}
	}
	return nil
}

func (f *flakyAPI) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	if err := f.err("PutSecretValue"); err != nil {
		return nil, err
	}
	return f.API.PutSecretValue(ctx, in, o...)
}

func (f *flakyAPI) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	if err := f.err("UpdateSecretVersionStage"); err != nil {
		return nil, err
	}
	return f.API.UpdateSecretVersionStage(ctx, in, o...)
}

// rotationEnv is a table, a vault on moto behind flakyAPI and a clock.
type rotationEnv struct {
	t     *testing.T
	st    *store.Store
	sm    *secretsmanager.Client
	api   *flakyAPI
	vault *keyvault.Vault
	clock *clock
	auth  *auth.Authenticator
}

func newRotationEnv(t *testing.T, now time.Time) *rotationEnv {
	t.Helper()
	sm := mototest.SecretsManager(t)
	api := &flakyAPI{API: sm}
	st := newStore(t)
	c := newClock(now)
	return &rotationEnv{
		t: t, st: st, sm: sm, api: api, clock: c,
		vault: keyvault.New(api, mototest.Prefix(t)),
		auth:  auth.New(auth.Options{Store: st, MasterKey: "sk-master-key", Now: c.Now}),
	}
}

func (e *rotationEnv) rotator(grace time.Duration, change func(*rotation.Options)) *rotation.Rotator {
	r, _ := newRotator(e.st, e.clock, keyvault.NewRekeyer(e.st, e.vault), func(o *rotation.Options) {
		o.RotationEnabled, o.Grace = true, grace
		if change != nil {
			change(o)
		}
	})
	return r
}

// key creates an auto-rotating key with the alias, due for rotation at due, and stores its
// value in Secrets Manager as /key/generate does. It returns the raw key.
func (e *rotationEnv) key(alias string, due time.Time) string {
	e.t.Helper()
	raw, err := auth.NewKey()
	if err != nil {
		e.t.Fatal(err)
	}
	k := &store.Key{
		Token: auth.Hash(raw), KeyName: auth.KeyName(raw), KeyAlias: &alias,
		AutoRotate: true, RotationInterval: ptr("30d"), KeyRotationAt: &due,
	}
	k.CreatedAt, k.UpdatedAt = due.Add(-30*24*time.Hour), due.Add(-30*24*time.Hour)
	ctx := context.Background()
	if err := e.st.CreateKey(ctx, k); err != nil {
		e.t.Fatal(err)
	}
	if err := keyvault.NewRekeyer(e.st, e.vault).Deliver(ctx, alias, raw); err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// secret reads the alias's secret at a stage, as an application would.
func (e *rotationEnv) secret(alias, stage string) string {
	e.t.Helper()
	out, err := e.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(e.vault.Name(alias)), VersionStage: aws.String(stage),
	})
	if err != nil {
		e.t.Fatalf("GetSecretValue(%s, %s): %v", alias, stage, err)
	}
	return aws.ToString(out.SecretString)
}

// authenticates reports whether a request with the key gets through auth now.
func (e *rotationEnv) authenticates(raw string) bool {
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	_, err := e.auth.Principal(context.Background(), r)
	return err == nil
}

func TestRotation_GracePeriodKeepsTheOldKeyUntilRevokeAt(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due.Add(time.Minute))
	old := e.key("billing", due)
	r := e.rotator(48*time.Hour, nil)

	if rep := run(t, r); rep.Rotations != 1 || rep.Failures != 0 {
		t.Fatalf("run: %+v, want 1 rotation", rep)
	}
	now := e.clock.Now()
	current := e.secret("billing", keyvault.StageCurrent)
	if current == old {
		t.Fatal("Secrets Manager still holds the old key after the rotation")
	}
	k := getKey(t, e.st, auth.Hash(current))
	if k == nil || k.IsPointer() {
		t.Fatalf("the key in Secrets Manager has no active record: %+v", k)
	}
	if k.RotationCount != 1 || !sameTime(k.LastRotationAt, &now) || !sameTime(k.KeyRotationAt, ptr(now.AddDate(0, 0, 30))) {
		t.Errorf("rotated record: count %d, last %v, next %v; want 1, %v, %v", k.RotationCount, k.LastRotationAt, k.KeyRotationAt, now, now.AddDate(0, 0, 30))
	}
	if !e.authenticates(current) || !e.authenticates(old) {
		t.Errorf("during the grace period: new key ok = %v, old key ok = %v; want both", e.authenticates(current), e.authenticates(old))
	}
	if p := getKey(t, e.st, auth.Hash(old)); p == nil || !sameTime(p.RevokeAt, ptr(now.Add(48*time.Hour))) {
		t.Errorf("old hash = %+v, want a pointer revoked at now+48h (the delivery grace cut back)", p)
	}
	if rep := run(t, r); rep.Rotations != 0 {
		t.Errorf("second run: %d rotations, want 0", rep.Rotations)
	}

	e.clock.Add(48 * time.Hour)
	if e.authenticates(old) {
		t.Error("the old key still authenticates at revoke_at")
	}
	if rep := run(t, r); rep.Deletions != 1 {
		t.Errorf("run after revoke_at: %+v, want the old hash deleted", rep)
	}
	if p := getKey(t, e.st, auth.Hash(old)); p != nil {
		t.Errorf("old hash still stored: %+v", p)
	}
	if !e.authenticates(current) {
		t.Error("the new key stopped working")
	}
}

func TestRotation_WithoutGraceRevokesTheOldKeyAtOnce(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due)
	old := e.key("app", due)
	if rep := run(t, e.rotator(0, nil)); rep.Rotations != 1 || rep.Failures != 0 {
		t.Fatalf("run: %+v, want 1 rotation", rep)
	}
	current := e.secret("app", keyvault.StageCurrent)
	if e.authenticates(old) {
		t.Error("the old key still authenticates")
	}
	if !e.authenticates(current) {
		t.Error("the key in Secrets Manager does not authenticate")
	}
	if p := getKey(t, e.st, auth.Hash(old)); p != nil {
		t.Errorf("old hash still stored: %+v", p)
	}
}

func TestRotation_SecretsManagerDownLeavesTheKeyForALaterRun(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due.Add(time.Minute))
	old := e.key("app", due)
	r := e.rotator(0, nil)

	e.api.fail("PutSecretValue", true)
	if rep := run(t, r); rep.Rotations != 0 || rep.Failures != 1 {
		t.Fatalf("run with Secrets Manager down: %+v, want no rotation and 1 failure", rep)
	}
	k := getKey(t, e.st, auth.Hash(old))
	if k == nil || k.IsPointer() || k.RotationCount != 0 || !sameTime(k.KeyRotationAt, &due) {
		t.Fatalf("key after the failed run = %+v, want it unchanged and still due", k)
	}
	if !e.authenticates(old) || e.secret("app", keyvault.StageCurrent) != old {
		t.Error("the old key must still work and still be the current secret")
	}

	e.api.fail("PutSecretValue", false)
	if rep := run(t, r); rep.Rotations != 0 || rep.Failures != 0 {
		t.Fatalf("run right after the failure: %+v, want the failed key skipped for five minutes", rep)
	}
	e.clock.Add(5 * time.Minute)
	if rep := run(t, r); rep.Rotations != 1 || rep.Failures != 0 {
		t.Fatalf("run with Secrets Manager back, five minutes on: %+v, want the rotation done", rep)
	}
	if current := e.secret("app", keyvault.StageCurrent); current == old || !e.authenticates(current) {
		t.Error("after the retried rotation the current secret must be a new, working key")
	}
}

func TestRotation_PromotionFailureIsFinishedByALaterRun(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due)
	old := e.key("app", due)
	r := e.rotator(0, nil)

	e.api.fail("UpdateSecretVersionStage", true)
	rep := run(t, r)
	if rep.Rotations != 1 || rep.Failures != 1 {
		t.Fatalf("run: %+v, want the rotation committed and its delivery failed", rep)
	}
	pending := e.secret("app", keyvault.StagePending)
	if got := e.secret("app", keyvault.StageCurrent); got != old {
		t.Fatalf("current secret = %q, want the old key until the new one is promoted", got)
	}
	if !e.authenticates(old) || !e.authenticates(pending) {
		t.Fatalf("while delivery is pending: old ok = %v, new ok = %v; want both (no key without a valid secret)", e.authenticates(old), e.authenticates(pending))
	}

	e.api.fail("UpdateSecretVersionStage", false)
	if rep := run(t, r); rep.Deliveries != 0 {
		t.Errorf("run right after: %+v, want the delivery left to its own rotation for %v", rep, keyvault.DeliveryRetryAfter)
	}
	e.clock.Add(keyvault.DeliveryRetryAfter)
	if rep := run(t, r); rep.Deliveries != 1 || rep.Failures != 0 {
		t.Fatalf("run after %v: %+v, want the delivery finished", keyvault.DeliveryRetryAfter, rep)
	}
	if got := e.secret("app", keyvault.StageCurrent); got != pending {
		t.Errorf("current secret = %q, want the new key %q", got, pending)
	}
	if e.authenticates(old) {
		t.Error("the old key still authenticates after the delivery (no grace period was asked)")
	}
	if rep := run(t, r); rep.Deliveries != 0 || rep.Failures != 0 {
		t.Errorf("next run: %+v, want nothing left to do", rep)
	}
}

// TestRotation_LongOutageKeepsTheOldKeyUntilDelivered: while the new value cannot be made
// current, the old one is what AWSCURRENT holds, so it must keep working past DeliveryGrace,
// and get its grace period once the delivery is done.
func TestRotation_LongOutageKeepsTheOldKeyUntilDelivered(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due)
	old := e.key("app", due)
	r := e.rotator(time.Hour, nil)

	e.api.fail("UpdateSecretVersionStage", true)
	if rep := run(t, r); rep.Rotations != 1 || rep.Failures != 1 {
		t.Fatalf("run: %+v, want the rotation committed and its delivery failed", rep)
	}
	pending := e.secret("app", keyvault.StagePending)
	// The rotator does not run for longer than DeliveryGrace, then runs with Secrets Manager
	// still down, and again later.
	for _, wait := range []time.Duration{keyvault.DeliveryGrace + time.Hour, keyvault.DeliveryGrace - time.Minute} {
		e.clock.Add(wait)
		if rep := run(t, r); rep.Deletions != 0 || rep.Failures != 1 {
			t.Errorf("run %v later with Secrets Manager down: %+v, want the delivery failed and nothing deleted", wait, rep)
		}
		if e.secret("app", keyvault.StageCurrent) != old || !e.authenticates(old) {
			t.Fatalf("%v later: the old key, still AWSCURRENT, no longer authenticates", wait)
		}
	}

	e.api.fail("UpdateSecretVersionStage", false)
	if rep := run(t, r); rep.Deliveries != 1 || rep.Failures != 0 {
		t.Fatalf("run with Secrets Manager back: %+v, want the delivery finished", rep)
	}
	if got := e.secret("app", keyvault.StageCurrent); got != pending || !e.authenticates(got) {
		t.Fatalf("current secret = %q, want the new, working key %q", got, pending)
	}
	if !e.authenticates(old) {
		t.Error("the old key stopped working as soon as the new one was delivered, want its 1h grace period")
	}
	e.clock.Add(time.Hour)
	if rep := run(t, r); rep.Deletions != 1 || e.authenticates(old) {
		t.Errorf("run 1h after the delivery: %+v, old key ok = %v; want it revoked and deleted", rep, e.authenticates(old))
	}
}

func TestRotation_ParallelRunsRotateEachKeyOnce(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due)
	const n = 6
	olds := map[string]string{}
	for i := range n {
		alias := fmt.Sprintf("app-%d", i)
		olds[alias] = e.key(alias, due)
	}
	var wg sync.WaitGroup
	reports := make([]rotation.Report, 3)
	for i := range reports {
		r := e.rotator(time.Hour, nil)
		wg.Go(func() { reports[i], _ = r.Run(context.Background()) })
	}
	wg.Wait()
	total := 0
	for _, rep := range reports {
		total += rep.Rotations
	}
	if total != n {
		t.Errorf("rotations over 3 parallel runs = %d, want %d: %+v", total, n, reports)
	}
	for alias, old := range olds {
		current := e.secret(alias, keyvault.StageCurrent)
		k := getKey(t, e.st, auth.Hash(current))
		if current == old || k == nil || k.IsPointer() || k.RotationCount != 1 {
			t.Errorf("%s: the current secret's record = %+v, want a new active key rotated once", alias, k)
		}
		if !e.authenticates(old) || !e.authenticates(current) {
			t.Errorf("%s: old ok = %v, new ok = %v; want both within the grace period", alias, e.authenticates(old), e.authenticates(current))
		}
	}
}

func TestRotation_InterruptedRunIsCompletedByTheNext(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due)
	for i := range 3 {
		e.key(fmt.Sprintf("app-%d", i), due)
	}
	r := e.rotator(0, func(o *rotation.Options) { o.Limit = 1 })
	total := 0
	for range 4 {
		total += run(t, r).Rotations
	}
	if total != 3 {
		t.Errorf("rotations over 4 runs of at most 1 = %d, want 3", total)
	}
}

// A key whose rotation fails (here: auto_rotate without a key_alias, so the new value could
// reach nobody) is logged, counted and skipped for a while, never holding the head of the
// queue. On the old code the failing keys (at least Limit in every shard, the oldest due)
// were retried at the head of every run, so the good key was never rotated.
func TestRotation_FailingKeysDoNotBlockTheRest(t *testing.T) {
	t.Parallel()
	due := utc(2026, 6, 1, 12, 0, 0)
	e := newRotationEnv(t, due.Add(time.Minute))
	const limit = 2
	forEveryShard(limit, func(token string) {
		at := due.Add(-time.Hour)
		createKeys(t, e.st, &store.Key{Token: token, AutoRotate: true, RotationInterval: ptr("30d"), KeyRotationAt: &at})
	})
	good := e.key("app", due)
	r := e.rotator(0, func(o *rotation.Options) { o.Limit = limit })
	var rotations, failures int
	for range store.Shards + 1 { // limit bad keys per shard and the good one, limit per run
		rep := run(t, r)
		rotations, failures = rotations+rep.Rotations, failures+rep.Failures
	}
	if cur := e.secret("app", "AWSCURRENT"); rotations != 1 || cur == good || !e.authenticates(cur) {
		t.Errorf("%d rotations; want the good key rotated, its new value delivered", rotations)
	}
	if want := store.Shards * limit; failures != want {
		t.Errorf("%d failures, want %d: each bad key once, then deferred", failures, want)
	}
	if k := getKey(t, e.st, "bad-0"); k == nil || k.KeyRotationAt == nil || !k.KeyRotationAt.Equal(due.Add(-time.Hour)) {
		t.Errorf("bad key %+v: want key_rotation_at unchanged (only its place in the queue moves)", k)
	}
}

func TestRotation_RefusedOrOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		enabled      bool
		vault        bool
		wantFailures int
	}{
		{"LITELLM_KEY_ROTATION_ENABLED off", false, true, 0},
		{"no store_virtual_keys: the new value would reach nobody", true, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			due := utc(2026, 6, 1, 12, 0, 0)
			e := newRotationEnv(t, due)
			old := e.key("app", due)
			vault := e.vault
			if !tt.vault {
				vault = nil
			}
			r, _ := newRotator(e.st, e.clock, keyvault.NewRekeyer(e.st, vault), func(o *rotation.Options) { o.RotationEnabled = tt.enabled })
			rep := run(t, r)
			if rep.Rotations != 0 || rep.Failures != tt.wantFailures {
				t.Errorf("run: %+v, want no rotation and %d failures", rep, tt.wantFailures)
			}
			if k := getKey(t, e.st, auth.Hash(old)); k == nil || k.IsPointer() || k.RotationCount != 0 {
				t.Errorf("key = %+v, want it unchanged", k)
			}
		})
	}
}
