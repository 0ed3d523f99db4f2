package store

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// Items of the request path.
const (
	PrefixReservation = "RES#" // RES#<request id>, sk "RES": what an admitted call holds until settled
	SortReservation   = "RES"
	PrefixRateWindow  = "RL#" // RL#<scope>#<id>#<unix minute>, sk "RL": requests (n) and tokens (tok) of one minute
	SortRateWindow    = "RL"
	ProxyBudgetPK     = "PROXY#BUDGET" // the proxy-wide budget of litellm_settings.max_budget, sk "BUDGET"
	SortProxyBudget   = "BUDGET"
)

// Scopes of budgets and rate limits, named as LiteLLM names its rate-limit descriptors.
const (
	ScopeKey       = "api_key"
	ScopeUser      = "user"
	ScopeTeam      = "team"
	ScopeMember    = "team_member"
	ScopeKeyModel  = "model_per_key"
	ScopeTeamModel = "model_per_team"
	ScopeProxy     = "proxy"
	ScopeEndUser   = "end_user" // a customer, named by the request's "user"
)

// Check says how budgets admit a call.
type Check int

const (
	// CheckReserve admits a call when every budget's headroom pays for the reserved cost
	// (remaining >= cost), so spend never passes a budget.
	CheckReserve Check = iota
	// CheckPostHoc is LiteLLM's check: admit while spend < max_budget (teams and the proxy
	// budget: spend <= max_budget) and charge after the call.
	CheckPostHoc
	// CheckNone skips budget checks (models priced at zero).
	CheckNone
)

// Reason says why a call was refused.
type Reason string

// Refusal reasons. The rate-limit ones are LiteLLM's rate_limit_type values.
const (
	ReasonKeyMissing  Reason = "key_missing" // the key was deleted since it was read
	ReasonBlocked     Reason = "blocked"     // the key or its team is blocked
	ReasonExpired     Reason = "expired"
	ReasonBudget      Reason = "budget"        // max_budget of the key, user, team, team member or proxy
	ReasonWindow      Reason = "budget_window" // one budget_limits window
	ReasonModelBudget Reason = "model_budget"  // the model's model_max_budget entry
	ReasonRequests    Reason = "requests"
	ReasonTokens      Reason = "tokens"
	ReasonParallel    Reason = "max_parallel_requests"
	ReasonDuplicate   Reason = "duplicate_request" // the request id was used before
)

// Refusal is a call that a budget or limit refused; Reserve returns it as the error. The
// values come from the item that refused, as it was when the transaction ran.
type Refusal struct {
	Reason Reason
	Scope  string // ScopeKey, ScopeUser, ...
	ID     string // the key hash, user id, team id, "team:user", "key:model", ...
	UserID string // team_member: the user
	TeamID string // team_member: the team
	Spend  float64
	Max    float64
	// Window is the budget_duration of a refusing budget_limits window.
	Window string
	// Model and KeyAlias name a refusing model_max_budget entry.
	Model    string
	KeyAlias string
	// Limit and Used describe a refusing rate limit; ResetAt is when its window ends.
	Limit   int64
	Used    int64
	ResetAt time.Time
	// Expires is the expiry of an expired key.
	Expires time.Time
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("call refused: %s of %s %s", r.Reason, r.Scope, r.ID)
}

// ErrSettled: the reservation was settled already (by the call or by the rotator).
var ErrSettled = errors.New("reservation already settled")

// ReserveInput is a call to admit. Records are the caller's cached copies; Reserve never
// changes them. Any of them may be nil (the master key has none).
type ReserveInput struct {
	RequestID  string
	Key        *Key
	User       *User
	Team       *Team
	Membership *Membership
	// EndUser is the customer the request names (its "user" field); Customer is its cached
	// record, nil when none is cached. Without one the transaction checks that no customer
	// EndUser exists, and re-plans with it charged when one does.
	EndUser  string
	Customer *Customer
	Model    string // model group: model_max_budget, model_rpm_limit and model_spend key
	// Cost is reserved on every budget now (0 in post_hoc mode); Estimate is charged when
	// the call is never settled (SettleStale).
	Cost     float64
	Estimate float64
	Check    Check
	// Tokens is the call's worst case in tokens (prompt plus every completion token it may
	// produce), reserved in the minute's tpm windows (see tokenHold); Settle replaces it with
	// the tokens used. 0 (post_hoc) only checks that the tokens counted so far are under
	// the limit, as LiteLLM does.
	Tokens int64
	// ProxyMaxBudget is litellm_settings.max_budget; nil for none.
	ProxyMaxBudget *float64
	Now            time.Time
	// TTL is how long the reservation lives before SettleStale may settle it.
	TTL time.Duration
	// Log holds what the spend log knows at admission (request id, key, user, team, model,
	// call type, tags, start); Settle completes it, SettleStale writes it as a failure.
	Log SpendLog
}

// Reservation is what an admitted call holds until Settle: the RES# item.
type Reservation struct {
	res      resItem
	customer *Customer
}

// Customer is the customer record the reservation charged, as the transaction found it
// (nil when the request named none, or one that does not exist), for callers to cache.
func (r *Reservation) Customer() *Customer { return r.customer }

// RequestID is the id of the reserved call.
func (r *Reservation) RequestID() string { return r.res.RequestID }

// Held reports whether the reservation wrote anything (the master key without a proxy budget
// holds nothing, and settling it only writes the spend log).
func (r *Reservation) Held() bool { return r.res.Held }

// ExpireAt is when the rotator may settle the reservation.
func (r *Reservation) ExpireAt() time.Time { return time.Unix(r.res.ExpireAt, 0) }

// resItem is the stored RES# item: enough to settle the call without its caller.
type resItem struct {
	RequestID string `dynamodbav:"request_id"`
	Held      bool   `dynamodbav:"-"`
	// OnKey: held on the key record (an r#<request id> entry, see heldEntry), not a RES# item.
	OnKey       bool      `dynamodbav:"-"`
	Model       string    `dynamodbav:"model"`
	Cost        float64   `dynamodbav:"cost"`
	Estimate    float64   `dynamodbav:"estimate"`
	Targets     []target  `dynamodbav:"targets"`
	Proxy       bool      `dynamodbav:"proxy,omitempty"`
	Windows     []string  `dynamodbav:"token_windows,omitempty"` // RL# items that count tokens
	Tokens      []int64   `dynamodbav:"tokens,omitempty"`        // reserved in Windows[i]
	WindowTTL   int64     `dynamodbav:"window_ttl,omitempty"`
	Log         SpendLog  `dynamodbav:"log"`
	Created     time.Time `dynamodbav:"created_at"`
	ExpireShard string    `dynamodbav:"expire_shard"`
	ExpireAt    int64     `dynamodbav:"expire_at"`
	TTL         int64     `dynamodbav:"ttl"`
	// uncount is the minute of the key record's rate counts that undoing a reservation made
	// step by step takes its request back from (0: none).
	uncount int64
	// stepped: the settlement of the key record alone, after the other records were settled
	// step by step (see settleSteps).
	stepped bool
}

// target is one record a reservation charged, and the parts of it that it charged.
type target struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Scope       string `dynamodbav:"scope"`
	Budget      bool   `dynamodbav:"budget,omitempty"`       // remaining
	Windows     int    `dynamodbav:"windows,omitempty"`      // budget_limits[0..Windows-1]
	ModelBudget bool   `dynamodbav:"model_budget,omitempty"` // model_max_budget.<model>
	ModelSpend  bool   `dynamodbav:"model_spend,omitempty"`  // model_spend.<model>
	Lease       bool   `dynamodbav:"lease,omitempty"`        // inflight
	// Held: the record holds an r#<request id> entry of its own (a reservation made step by
	// step, see reserveSteps), which its settlement removes: exactly once per record.
	Held bool `dynamodbav:"held,omitempty"`
	// RateMinute and RateTokens: the key record's minute counts this call (rl_min), and the
	// tokens it reserved there under tpm_limit.
	RateMinute int64 `dynamodbav:"rate_minute,omitempty"`
	RateTokens int64 `dynamodbav:"rate_tokens,omitempty"`
	// moved: the key's hash is gone; its MOVED# item may name the hash it was rotated to.
	moved bool
}

// Timing of the request path's retries.
const (
	backoffBase = 10 * time.Millisecond
	backoffMax  = 250 * time.Millisecond
	// maxRefreshes bounds the re-plans after a record changed since it was cached.
	maxRefreshes = 3
	// rateWindowTTL keeps a minute's RL# item this long after the minute, for late settles.
	rateWindowTTL = time.Hour
	// reservationGrace keeps an expired RES# item this long for SettleStale before TTL
	// deletes it.
	reservationGrace = 7 * 24 * time.Hour
)

// Reserve admits a call in one TransactWriteItems: it adds in.Cost to the spend of the key,
// its user, team and team membership (and to each budget window and the model's budget)
// under remaining >= cost, checks that the key is neither blocked nor expired, counts the
// request in the minute's rate windows under their limits, takes a parallel-request lease
// under max_parallel_requests, and puts the RES# item that Settle replaces. A refused call
// returns a *Refusal built from the refusing item, without another read. When a record
// changed since it was cached (new limits, another budget), Reserve re-plans from the
// item the failed transaction returned and tries again. Throttling, transaction conflicts
// and network errors are retried with backoff until ctx ends; then the error is returned
// and the call must be refused (fail closed).
func (s *Store) Reserve(ctx context.Context, in ReserveInput) (*Reservation, error) {
	refreshes := 0
	uncertain := false // an earlier attempt may have committed without us hearing back
	// newMinute: the key record's rate counts start a new minute (see countKeyRate).
	newMinute := in.Key != nil && s.minutes.newMinute(in.Key.Token, in.Now.Unix()/60)
	spill := false // the key record holds maxHeld reservations: hold this one in a RES# item
	swept := false // a split team's or key's shards were swept back for a call charging its record
	refills := 0   // refills of a split key's shard (see refill)
	for attempt := 0; ; attempt++ {
		p, err := newPlan(&in)
		if err != nil {
			return nil, err
		}
		if !p.res.Held {
			return &Reservation{res: p.res}, nil
		}
		p.newMinute, p.spill = newMinute, spill
		p.res.OnKey = p.res.OnKey && !spill
		p.planEscrow(&in)
		var res *Reservation
		if p.stepwise() {
			res, err = s.reserveSteps(ctx, p, &in, uncertain)
		} else {
			res, err = s.reserveOnce(ctx, p, &in, uncertain)
		}
		newMinute, spill = p.newMinute, p.spill
		if err == nil && p.keyRate != nil {
			s.minutes.saw(in.Key.Token, p.minute)
		}
		if errors.Is(err, errShardRefused) {
			// The split key's shard cannot pay: refill it and try again (a few times at
			// once, then with backoff), or the key's refusal.
			if err = s.refill(ctx, p, p.keyEscrow, &in); err == nil {
				if refills++; refills%maxRefills != 0 {
					continue
				}
				err = errTransient
			}
		}
		var ref *Refusal
		switch {
		case err == nil:
			res.customer = in.Customer
			return res, nil
		case errors.As(err, &ref) && !swept && ref.Reason == ReasonBudget && p.lentOut(&in, ref) != nil:
			// A call that charges a split team's or key's record itself (its budget windows
			// or parallel limit are there, or it is checked post hoc) sees only the headroom
			// not lent to the shards: bring that back and try once more (a sweep that met a
			// conflict or throttle is tried again after a backoff).
			if err = s.reclaimEscrow(ctx, *p.lentOut(&in, ref)); err == nil {
				swept = true
				continue
			}
			if !retryable(err) {
				return nil, fmt.Errorf("reserve %s: %w", in.RequestID, err)
			}
		case errors.As(err, &ref):
			return nil, err
		case errors.Is(err, errReplan):
			if refreshes++; refreshes > maxRefreshes {
				return nil, fmt.Errorf("reserve %s: records keep changing: %w", in.RequestID, err)
			}
			if p.initProxy {
				if err := s.EnsureProxyBudget(ctx, *in.ProxyMaxBudget); err != nil {
					return nil, fmt.Errorf("reserve %s: %w", in.RequestID, err)
				}
			}
			continue
		}
		uncertain = uncertain || lost(err)
		if !retryable(err) {
			return nil, gaveUp(p, uncertain, fmt.Errorf("reserve %s: %w", in.RequestID, err))
		}
		if werr := backoff(ctx, attempt); werr != nil {
			return nil, gaveUp(p, uncertain, fmt.Errorf("reserve %s: gave up after %d attempts: %w", in.RequestID, attempt+1, err))
		}
	}
}

// lentOut is the bank whose record refused a call with ref while it charged the record
// itself (not a shard) and the record lends headroom to shards; nil otherwise.
func (p *plan) lentOut(in *ReserveInput, ref *Refusal) *bank {
	var b bank
	switch {
	case ref.Scope == ScopeTeam && p.escrow == nil && in.Team != nil && in.Team.EscrowShards > 1:
		b = teamBank(in.Team.TeamID)
	case ref.Scope == ScopeKey && p.keyEscrow == nil && in.Key != nil && in.Key.EscrowShards > 1:
		b = keyBank(in.Key.Token)
	default:
		return nil
	}
	return &b
}

// errShardRefused: the shard of a split key refused the call; Reserve refills it (see
// refill).
var errShardRefused = errors.New("key escrow shard cannot pay")

// lost reports whether a failed attempt may have committed: it got no answer, and the
// request was not refused before it was sent (a connection that could not be dialled).
func lost(err error) bool {
	var tce *types.TransactionCanceledException
	var ne *net.OpError
	var re *awshttp.ResponseError // DynamoDB answered 4xx (throttled, conflict, invalid): nothing written
	refused := errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
	return !errors.As(err, &tce) && !errors.Is(err, errTransient) && !(errors.As(err, &ne) && ne.Op == "dial") && !refused
}

// UncertainError is Reserve failing after an attempt whose answer was lost (a timeout, a
// network error): the reservation may have been written, holding its budget, rate-limit
// count and lease until it expires. Settling Reservation at zero cost releases it; the
// settle deletes the reservation only if it exists, so one never written costs a failed
// condition (ErrSettled) and changes nothing.
type UncertainError struct {
	Reservation *Reservation
	Err         error
}

func (e *UncertainError) Error() string { return e.Err.Error() }

func (e *UncertainError) Unwrap() error { return e.Err }

// gaveUp is the error of a Reserve that failed: an *UncertainError carrying the plan's
// reservation when an attempt may have committed.
func gaveUp(p *plan, uncertain bool, err error) error {
	if !uncertain {
		return err
	}
	return &UncertainError{Reservation: &Reservation{res: p.res}, Err: err}
}

// errReplan: a record changed since it was cached; the input now holds the fresh copy.
var errReplan = errors.New("record changed since it was read")

// errTransient: a condition failed for a reason that is gone now (a concurrent settle freed
// headroom, a minute ended); trying again may succeed.
var errTransient = errors.New("condition failed transiently")

// errShard: the split team's shard the transaction charged cannot pay (see refill).
var errShard = errors.New("escrow shard cannot pay")

// reserveOnce writes the plan's transaction. When it failed only on the team's escrow
// shard, the shard is refilled and the transaction tried again, a few times at once (as a
// reservation step does, see reserveStep), then with the caller's backoff.
func (s *Store) reserveOnce(ctx context.Context, p *plan, in *ReserveInput, uncertain bool) (*Reservation, error) {
	items, err := p.reserveItems(s.table, in)
	if err != nil {
		return nil, err
	}
	for refills := 0; ; refills++ {
		err = s.write(ctx, items)
		if err == nil {
			return &Reservation{res: p.res}, nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return nil, err
		}
		res, err := p.explain(in, tce.CancellationReasons, uncertain)
		if !errors.Is(err, errShard) {
			return res, err
		}
		if refills == maxRefills {
			return nil, errTransient
		}
		if err := s.refill(ctx, p, p.escrow, in); err != nil {
			return nil, err
		}
	}
}

// write runs the writes in one TransactWriteItems, or as a single-item write (half the write
// units) when there is one Update. A failed condition of the single write comes back as the
// cancellation of a one-item transaction, so both are explained alike.
func (s *Store) write(ctx context.Context, items []types.TransactWriteItem) error {
	if len(items) != 1 || items[0].Update == nil {
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		return err
	}
	u := items[0].Update
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
		ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
		ExpressionAttributeValues:           u.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailure(u.ReturnValuesOnConditionCheckFailure),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &types.TransactionCanceledException{
			Message:             aws.String(err.Error()),
			CancellationReasons: []types.CancellationReason{{Code: aws.String("ConditionalCheckFailed"), Item: ccf.Item}},
		}
	}
	return err
}

// retryable reports whether err is worth another attempt: throttling, a transaction
// conflict, a 5xx or a network error.
func retryable(err error) bool {
	if errors.Is(err, errTransient) {
		return true
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				return true
			}
		}
		return false
	}
	var conflict *types.TransactionConflictException // a single-item write met a transaction
	return errors.As(err, &conflict) || retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// jitter is the wait before attempt+1: exponential with full jitter, so callers that
// collided (a transaction conflict, a throttled partition) do not collide again in step.
func jitter(attempt int) time.Duration {
	d := min(backoffBase<<min(attempt, 5), backoffMax)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// backoff sleeps before attempt+1 (see jitter), or returns ctx's error.
func backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(jitter(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// account is the budget-and-limits view of a record a call is charged to.
type account struct {
	scope, id, pk, sk string
	budget            Budget
	windows           []BudgetWindow
	models            map[string]ModelBudget
	hasModelSpend     bool // the record keeps model_spend
	limits            Limits
	isKey, isTeam     bool
	isCustomer        bool
	blocked           bool
	expiresAt         int64
	keyAlias          string
	memberRPM         *int64 // team: team_member_rpm_limit
	memberTPM         *int64
}

func keyAccount(k *Key) account {
	return account{
		scope: ScopeKey, id: k.Token, pk: PrefixKey + k.Token, sk: SortKey,
		budget: k.Budget, windows: k.BudgetLimits, models: k.ModelMaxBudget, hasModelSpend: true,
		limits: k.Limits, isKey: true, blocked: k.Blocked, expiresAt: k.ExpiresAt,
		keyAlias: aws.ToString(k.KeyAlias),
	}
}

func userAccount(u *User) account {
	return account{
		scope: ScopeUser, id: u.UserID, pk: PrefixUser + u.UserID, sk: SortUser,
		budget: u.Budget, models: u.ModelMaxBudget, hasModelSpend: true, limits: u.Limits,
	}
}

func teamAccount(t *Team) account {
	return account{
		scope: ScopeTeam, id: t.TeamID, pk: PrefixTeam + t.TeamID, sk: SortTeam,
		budget: t.Budget, windows: t.BudgetLimits, hasModelSpend: true, limits: t.Limits,
		isTeam: true, blocked: t.Blocked, memberRPM: t.TeamMemberRPM, memberTPM: t.TeamMemberTPM,
	}
}

func customerAccount(c *Customer) account {
	return account{
		scope: ScopeEndUser, id: c.UserID, pk: PrefixCustomer + c.UserID, sk: SortCustomer,
		budget: c.Budget, limits: c.Limits, isCustomer: true, blocked: c.Blocked,
	}
}

func memberAccount(m *Membership) account {
	return account{
		scope: ScopeMember, id: m.TeamID + ":" + m.UserID, pk: PrefixTeam + m.TeamID, sk: SortMember + m.UserID,
		budget: m.Budget,
	}
}

// decodeAccount reads the account of scope from an item a failed transaction returned.
func decodeAccount(scope string, it map[string]types.AttributeValue) (account, any, error) {
	var err error
	switch scope {
	case ScopeKey:
		var k Key
		if err = attributevalue.UnmarshalMap(it, &k); err == nil {
			return keyAccount(&k), &k, nil
		}
	case ScopeUser:
		var u User
		if err = attributevalue.UnmarshalMap(it, &u); err == nil {
			return userAccount(&u), &u, nil
		}
	case ScopeTeam:
		var t Team
		if err = attributevalue.UnmarshalMap(it, &t); err == nil {
			return teamAccount(&t), &t, nil
		}
	case ScopeMember:
		var m Membership
		if err = attributevalue.UnmarshalMap(it, &m); err == nil {
			return memberAccount(&m), &m, nil
		}
	case ScopeEndUser:
		var c Customer
		if err = attributevalue.UnmarshalMap(it, &c); err == nil {
			return customerAccount(&c), &c, nil
		}
	default:
		err = fmt.Errorf("unknown scope %q", scope)
	}
	return account{}, nil, fmt.Errorf("decode %s record: %w", scope, err)
}

// shape is what a plan assumes about a record: the budgets and limits it checks. When the
// stored record has another shape, the reservation's conditions fail and it is re-planned.
type shape struct {
	budget      bool
	windows     int
	modelBudget bool
	maxParallel opt
	rpm, tpm    opt
	modelRPM    opt
	modelTPM    opt
	memberRPM   opt
	memberTPM   opt
}

// opt is an optional limit.
type opt struct {
	set bool
	v   int64
}

func optOf(p *int64) opt {
	if p == nil {
		return opt{}
	}
	return opt{true, *p}
}

func optIn(m map[string]int64, k string) opt {
	v, ok := m[k]
	return opt{ok, v}
}

func (a *account) shape(model string) shape {
	_, mb := a.models[model]
	sh := shape{
		budget:      a.budget.MaxBudget != nil,
		windows:     len(a.windows),
		modelBudget: mb,
		maxParallel: optOf(a.limits.MaxParallelRequests),
		rpm:         optOf(a.limits.RPMLimit),
		tpm:         optOf(a.limits.TPMLimit),
		modelRPM:    optIn(a.limits.ModelRPMLimit, model),
		modelTPM:    optIn(a.limits.ModelTPMLimit, model),
	}
	if a.isTeam {
		sh.memberRPM, sh.memberTPM = optOf(a.memberRPM), optOf(a.memberTPM)
	}
	return sh
}

// rateWindow is one minute's RL# counter of a scope.
type rateWindow struct {
	scope, id string
	rpm, tpm  opt
	pk        string
	// hold is the tokens the call reserves under tpm; the call is admitted while the window
	// has counted at most most tokens (see tokenHold).
	hold, most int64
}

// tokenHold is what a call whose worst case is t tokens reserves in a window of limit tpm.
// When t fits the limit, the call holds t and runs only if t more tokens fit: concurrent
// calls can never pass the limit together. When it does not fit (or is unknown, t = 0, in
// post_hoc mode), the call runs while the window is under its limit, as LiteLLM's check,
// and holds the whole limit (none in post_hoc mode) so that no other call starts until it
// settles. most is the highest count that admits the call.
func tokenHold(tpm, t int64) (hold, most int64) {
	if t > 0 && t < tpm {
		return t, tpm - t
	}
	return max(0, min(t, tpm)), tpm - 1
}

// plan is one attempt's transaction, built from the input's records.
type plan struct {
	accounts []account
	shapes   []shape
	windows  []rateWindow
	proxy    bool
	// initProxy: the proxy budget item is missing or has another max_budget.
	initProxy bool
	// noMember is the membership item (pk, sk) checked to have no budget, when the call has
	// a user and a team but no budgeted membership was cached: a member budget set since is
	// then found by the transaction itself, not after the auth cache expires.
	noMember item
	// noCustomer is the customer item checked not to exist, when the request names a
	// customer none was cached for.
	noCustomer item
	minute     int64
	res        resItem
	// keyRate is the key's rpm/tpm, counted on its record; newMinute: in a new minute.
	keyRate   *rateWindow
	newMinute bool
	spill     bool // see spills
	// escrow: the team's budget is charged on one of its escrow shards (see escrow.go);
	// keyEscrow: the key's.
	escrow, keyEscrow *escrowPlan
	// kinds says what each transaction item is, to explain cancellations.
	kinds []itemKind
}

type itemKind struct {
	what  int // kindRes, kindLog, kindAccount, kindProxy, kindWindow, kindNoMember, kindNoCustomer
	index int
}

const (
	kindRes = iota
	kindLog
	kindAccount
	kindProxy
	kindWindow
	kindNoMember
	kindNoCustomer
)

func newPlan(in *ReserveInput) (*plan, error) {
	if in.RequestID == "" || in.Model == "" {
		return nil, errors.New("reserve: request id and model are required")
	}
	p := &plan{minute: in.Now.Unix() / 60}
	if in.Key != nil {
		p.accounts = append(p.accounts, keyAccount(in.Key))
	}
	if in.User != nil {
		p.accounts = append(p.accounts, userAccount(in.User))
	}
	if in.Team != nil {
		p.accounts = append(p.accounts, teamAccount(in.Team))
	}
	if in.Membership != nil {
		p.accounts = append(p.accounts, memberAccount(in.Membership))
	} else if team, user := memberIDs(in); team != "" && user != "" && in.Check != CheckNone {
		p.noMember = keyOf(PrefixTeam+team, SortMember+user)
	}
	if in.Customer != nil {
		p.accounts = append(p.accounts, customerAccount(in.Customer))
	} else if in.EndUser != "" {
		p.noCustomer = keyOf(PrefixCustomer+in.EndUser, SortCustomer)
	}
	for i := range p.accounts {
		p.shapes = append(p.shapes, p.accounts[i].shape(in.Model))
	}
	p.proxy = in.ProxyMaxBudget != nil && in.Check != CheckNone
	p.planWindows(in)

	expire := in.Now.Add(in.TTL)
	pk := PrefixReservation + in.RequestID
	p.res = resItem{
		RequestID: in.RequestID, Model: in.Model, OnKey: in.Key != nil,
		Cost: usdFloat(in.Cost), Estimate: usdFloat(in.Estimate),
		Proxy: p.proxy, Log: in.Log, Created: in.Now.UTC(),
		ExpireShard: Shard(pk), ExpireAt: expire.Unix(), TTL: expire.Add(reservationGrace).Unix(),
		WindowTTL: (p.minute+1)*60 + int64(rateWindowTTL/time.Second),
	}
	for i, a := range p.accounts {
		sh := p.shapes[i]
		t := target{
			PK: a.pk, SK: a.sk, Scope: a.scope,
			Budget: sh.budget, Windows: sh.windows, ModelBudget: sh.modelBudget,
			ModelSpend: a.hasModelSpend, Lease: sh.maxParallel.set,
		}
		if a.isKey && p.keyRate != nil && p.keyRate.tpm.set {
			t.RateMinute, t.RateTokens = p.minute, p.keyRate.hold
		}
		p.res.Targets = append(p.res.Targets, t)
	}
	for _, w := range p.windows {
		if w.tpm.set {
			p.res.Windows = append(p.res.Windows, w.pk)
			p.res.Tokens = append(p.res.Tokens, w.hold)
		}
	}
	p.res.Held = len(p.accounts) > 0 || p.proxy || len(p.windows) > 0 || p.noCustomer != nil
	return p, nil
}

// memberIDs are the team and user whose membership budget applies to the call.
func memberIDs(in *ReserveInput) (team, user string) {
	if in.Key != nil {
		team, user = aws.ToString(in.Key.TeamID), aws.ToString(in.Key.UserID)
	}
	if in.Team != nil {
		team = in.Team.TeamID
	}
	if in.User != nil {
		user = in.User.UserID
	}
	return team, user
}

// planWindows lists the minute's rate windows that have a limit, as LiteLLM's
// descriptors: api_key, user, team, team_member, model_per_key, model_per_team.
func (p *plan) planWindows(in *ReserveInput) {
	add := func(scope, id string, rpm, tpm opt) {
		if !rpm.set && !tpm.set {
			return
		}
		pk := PrefixRateWindow + scope + "#" + id + "#" + strconv.FormatInt(p.minute, 10)
		w := rateWindow{scope: scope, id: id, rpm: rpm, tpm: tpm, pk: pk}
		if tpm.set {
			w.hold, w.most = tokenHold(tpm.v, in.Tokens)
		}
		if scope == ScopeKey {
			p.keyRate = &w // counted on the key record
			return
		}
		p.windows = append(p.windows, w)
	}
	for i, a := range p.accounts {
		sh := p.shapes[i]
		switch a.scope {
		case ScopeKey:
			add(ScopeKey, a.id, sh.rpm, sh.tpm)
			add(ScopeKeyModel, a.id+":"+in.Model, sh.modelRPM, sh.modelTPM)
		case ScopeUser:
			add(ScopeUser, a.id, sh.rpm, sh.tpm)
		case ScopeEndUser:
			add(ScopeEndUser, a.id, sh.rpm, sh.tpm)
		case ScopeTeam:
			add(ScopeTeam, a.id, sh.rpm, sh.tpm)
			add(ScopeTeamModel, a.id+":"+in.Model, sh.modelRPM, sh.modelTPM)
			if in.Key != nil && in.Key.UserID != nil {
				add(ScopeMember, a.id+":"+*in.Key.UserID, sh.memberRPM, sh.memberTPM)
			}
		}
	}
}

// reserveItems builds the reservation transaction.
func (p *plan) reserveItems(table string, in *ReserveInput) ([]types.TransactWriteItem, error) {
	var items []types.TransactWriteItem
	add := func(w types.TransactWriteItem, k itemKind) {
		items = append(items, w)
		p.kinds = append(p.kinds, k)
	}
	if !p.res.OnKey {
		resAV, err := attributevalue.MarshalMap(p.res)
		if err != nil {
			return nil, fmt.Errorf("marshal reservation: %w", err)
		}
		resPK := PrefixReservation + in.RequestID
		for k, v := range keyOf(resPK, SortReservation) {
			resAV[k] = v
		}
		add(types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(table), Item: resAV,
			ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}, itemKind{what: kindRes})
		logPK, logSK, _ := spendLogKey(in.RequestID)
		add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(table), Key: keyOf(logPK, logSK),
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}}, itemKind{what: kindLog})
	}

	cost := usd(in.Cost)
	for i := range p.accounts {
		u, err := p.reserveAccount(table, i, in, cost)
		if err != nil {
			return nil, err
		}
		add(types.TransactWriteItem{Update: u}, itemKind{kindAccount, i})
	}
	if p.noMember != nil && !p.stepwise() { // else read first (see reserveSteps)
		add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(table), Key: p.noMember,
			ConditionExpression:                 aws.String("attribute_not_exists(pk) OR attribute_not_exists(max_budget)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}, itemKind{what: kindNoMember})
	}
	if p.noCustomer != nil {
		add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(table), Key: p.noCustomer,
			ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}, itemKind{what: kindNoCustomer})
	}
	if p.proxy {
		add(types.TransactWriteItem{Update: reserveProxy(table, *in.ProxyMaxBudget, cost, in.Check)}, itemKind{what: kindProxy})
	}
	for i, w := range p.windows {
		add(types.TransactWriteItem{Update: reserveWindow(table, w, p.res.WindowTTL)}, itemKind{kindWindow, i})
	}
	if len(items) > MaxTxItems {
		return nil, fmt.Errorf("reservation of %d writes is over DynamoDB's limit of %d", len(items), MaxTxItems)
	}
	return items, nil
}

// reserveAccount is the update of one record: charge cost to its budgets under their
// conditions, take a lease, and check that the record still has the shape the plan assumed.
func (p *plan) reserveAccount(table string, i int, in *ReserveInput, cost string) (*types.Update, error) {
	a, sh := p.accounts[i], p.shapes[i]
	e := newTxExpr()
	c := e.num(cost)
	zero := e.num("0")
	check := in.Check
	if check == CheckReserve && cost == "0" {
		check = CheckPostHoc // nothing reserved: refuse once spend reaches the budget, as LiteLLM
	}
	// threshold is the budget condition on a remaining path: cost fits, or spend < max.
	threshold := func(rem string, lenient bool) {
		switch {
		case check == CheckReserve:
			e.cond(rem + " >= " + c)
		case check == CheckPostHoc && lenient:
			e.cond(rem + " >= " + zero)
		case check == CheckPostHoc:
			e.cond(rem + " > " + zero)
		}
	}
	spend, rem, rsv := e.name("spend"), e.name("remaining"), e.name("reserved")
	e.cond("attribute_exists(pk)")
	e.set(spend + " = if_not_exists(" + spend + ", " + zero + ") + " + c)
	e.set(rsv + " = if_not_exists(" + rsv + ", " + zero + ") + " + c)
	if sh.budget {
		e.set(rem + " = " + rem + " - " + c)
		e.cond("attribute_exists(" + rem + ")")
		threshold(rem, a.isTeam)
	} else {
		e.cond("attribute_not_exists(" + rem + ")")
	}
	bl := e.name("budget_limits")
	if sh.windows > 0 {
		e.cond("size(" + bl + ") = " + e.num(strconv.Itoa(sh.windows)))
		for w := range sh.windows {
			ws, wr, wv := bl+"["+strconv.Itoa(w)+"]."+spend, bl+"["+strconv.Itoa(w)+"]."+rem, bl+"["+strconv.Itoa(w)+"]."+rsv
			e.set(ws + " = " + ws + " + " + c)
			e.set(wr + " = " + wr + " - " + c)
			e.set(wv + " = if_not_exists(" + wv + ", " + zero + ") + " + c)
			threshold(wr, false)
		}
	} else {
		e.cond("(attribute_not_exists(" + bl + ") OR size(" + bl + ") = " + zero + ")")
	}
	m := e.name(in.Model)
	mb := e.name("model_max_budget") + "." + m
	if sh.modelBudget {
		ms, mr, mv := mb+"."+spend, mb+"."+rem, mb+"."+rsv
		e.set(ms + " = if_not_exists(" + ms + ", " + zero + ") + " + c)
		e.set(mr + " = " + mr + " - " + c)
		e.set(mv + " = if_not_exists(" + mv + ", " + zero + ") + " + c)
		e.cond("attribute_exists(" + mr + ")")
		threshold(mr, false)
	} else {
		e.cond("attribute_not_exists(" + mb + ")")
	}
	if a.hasModelSpend {
		msp := e.name("model_spend")
		e.set(msp + " = if_not_exists(" + msp + ", " + e.value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}) + ")")
	}
	if p.escrowAt(i) != nil {
		// A shard has none of the record's limits; closing it is how blocking and
		// lowering the budget reach it. A key's shard has the key's expiry (see lend) and
		// holds the call's entry, unless a RES# item does.
		e.cond("attribute_not_exists(" + e.name(attrClosed) + ")")
		if a.isKey {
			exp := e.name("expires_at")
			e.cond("(attribute_not_exists(" + exp + ") OR " + exp + " > " + e.num(strconv.FormatInt(in.Now.Unix(), 10)) + ")")
		}
		if a.isKey && p.res.OnKey {
			if err := p.holdOnKey(e); err != nil {
				return nil, err
			}
		}
		p.holdEntry(e, i, in.RequestID)
		return e.update(table, a.pk, a.sk), nil
	}
	if a.isKey || a.isTeam || a.isCustomer {
		blk := e.name("blocked")
		e.cond("(attribute_not_exists(" + blk + ") OR " + blk + " = " + e.value(&types.AttributeValueMemberBOOL{Value: false}) + ")")
	}
	if a.isKey {
		e.cond("attribute_not_exists(" + e.name("active_token") + ")") // not a rotated-out hash
		exp := e.name("expires_at")
		e.cond("(attribute_not_exists(" + exp + ") OR " + exp + " > " + e.num(strconv.FormatInt(in.Now.Unix(), 10)) + ")")
	}
	e.same(e.name("max_parallel_requests"), sh.maxParallel)
	e.same(e.name("rpm_limit"), sh.rpm)
	e.same(e.name("tpm_limit"), sh.tpm)
	e.same(e.name("model_rpm_limit")+"."+m, sh.modelRPM)
	e.same(e.name("model_tpm_limit")+"."+m, sh.modelTPM)
	if a.isTeam {
		e.same(e.name("team_member_rpm_limit"), sh.memberRPM)
		e.same(e.name("team_member_tpm_limit"), sh.memberTPM)
	}
	if sh.maxParallel.set {
		inf := e.name("inflight")
		e.cond("(attribute_not_exists(" + inf + ") OR " + inf + " < " + e.num(strconv.FormatInt(sh.maxParallel.v, 10)) + ")")
		e.add(inf + " " + e.num("1"))
	}
	if a.isKey && p.keyRate != nil {
		p.countKeyRate(e)
	}
	if a.isKey && p.res.OnKey {
		if err := p.holdOnKey(e); err != nil {
			return nil, err
		}
	}
	p.holdEntry(e, i, in.RequestID)
	return e.update(table, a.pk, a.sk), nil
}

// escrowAt is the escrow plan of account i, if it is charged on a shard.
func (p *plan) escrowAt(i int) *escrowPlan {
	for _, es := range []*escrowPlan{p.escrow, p.keyEscrow} {
		if es != nil && es.i == i {
			return es
		}
	}
	return nil
}

// holdEntry adds record i's own r#<request id> entry when the plan reserves step by step.
func (p *plan) holdEntry(e *txExpr, i int, id string) {
	if p.res.Targets[i].Held {
		r := e.name(attrHeld + id)
		e.set(r + " = " + e.num(strconv.FormatInt(p.res.ExpireAt, 10)))
		e.cond("attribute_not_exists(" + r + ")")
	}
}

// reserveProxy charges the proxy-wide budget; its max_budget must be the configured one
// (else the item is (re)initialised and the reservation retried).
func reserveProxy(table string, max float64, cost string, check Check) *types.Update {
	e := newTxExpr()
	c, zero := e.num(cost), e.num("0")
	spend, rem, mb, rsv := e.name("spend"), e.name("remaining"), e.name("max_budget"), e.name("reserved")
	e.set(spend + " = if_not_exists(" + spend + ", " + zero + ") + " + c)
	e.set(rem + " = " + rem + " - " + c)
	e.set(rsv + " = if_not_exists(" + rsv + ", " + zero + ") + " + c)
	e.cond(mb + " = " + e.num(usd(max)))
	if check == CheckReserve && cost != "0" {
		e.cond(rem + " >= " + c)
	} else {
		e.cond(rem + " >= " + zero) // LiteLLM: refuse once global spend > max_budget
	}
	return e.update(table, ProxyBudgetPK, SortProxyBudget)
}

// reserveWindow counts a request in a minute's rate window under its rpm limit, and
// reserves the call's tokens under its tpm limit.
func reserveWindow(table string, w rateWindow, ttl int64) *types.Update {
	e := newTxExpr()
	n := e.name("n")
	e.add(n + " " + e.num("1"))
	e.set(e.name(schema.AttrTTL) + " = " + e.num(strconv.FormatInt(ttl, 10)))
	if w.rpm.set {
		e.cond("(attribute_not_exists(" + n + ") OR " + n + " < " + e.num(strconv.FormatInt(w.rpm.v, 10)) + ")")
	}
	if w.tpm.set {
		tok := e.name("tok")
		if w.hold > 0 {
			e.add(tok + " " + e.num(strconv.FormatInt(w.hold, 10)))
		}
		e.cond("(attribute_not_exists(" + tok + ") OR " + tok + " <= " + e.num(strconv.FormatInt(w.most, 10)) + ")")
	}
	return e.update(table, w.pk, SortRateWindow)
}

// explain turns a cancelled reservation into a *Refusal (the most important one, in
// LiteLLM's order of checks), errReplan (the input now holds fresh records), errShard (no
// refusal, but the team's escrow shard could not pay), errShardRefused (the key's), errTransient, or the reservation
// itself when an earlier attempt of this call committed.
func (p *plan) explain(in *ReserveInput, reasons []types.CancellationReason, uncertain bool) (*Reservation, error) {
	var refusals []*Refusal
	replan, transient, shard, keyShard := false, false, false, false
	for i, r := range reasons {
		code := aws.ToString(r.Code)
		if code != "ConditionalCheckFailed" {
			if code != "" && code != "None" {
				transient = true // TransactionConflict, throttling: retry the whole thing
			}
			continue
		}
		if i >= len(p.kinds) {
			continue
		}
		k := p.kinds[i]
		switch k.what {
		case kindRes:
			var prev resItem
			if uncertain && attributevalue.UnmarshalMap(r.Item, &prev) == nil && prev.RequestID == in.RequestID {
				prev.Held = true
				return &Reservation{res: prev}, nil // an earlier attempt committed but its answer was lost
			}
			refusals = append(refusals, &Refusal{Reason: ReasonDuplicate, ID: in.RequestID})
		case kindLog:
			refusals = append(refusals, &Refusal{Reason: ReasonDuplicate, ID: in.RequestID})
		case kindAccount:
			if p.escrow != nil && p.escrow.i == k.index {
				shard = true // the item is the shard, not the team record
				continue
			}
			if _, dup := r.Item[attrHeld+in.RequestID]; dup && p.accounts[k.index].isKey {
				if uncertain {
					return &Reservation{res: p.res}, nil // an earlier attempt committed but its answer was lost
				}
				refusals = append(refusals, &Refusal{Reason: ReasonDuplicate, ID: in.RequestID})
				continue
			}
			if p.keyEscrow != nil && p.keyEscrow.i == k.index {
				// A shard holding maxHeld entries spills the call to a RES# item that charges
				// the same shard; a shard that cannot pay (whichever holds the call) is
				// refilled. A spilled plan's shard never spills again (see spills).
				if p.spills(r.Item) {
					replan = true
				} else {
					keyShard = true
				}
				continue
			}
			ref, rp, err := p.explainAccount(in, k.index, r.Item)
			if err != nil {
				return nil, err
			}
			switch {
			case ref != nil:
				refusals = append(refusals, ref)
			case rp:
				replan = true
			default:
				transient = true
			}
		case kindProxy:
			ref, rp := p.explainProxy(in, r.Item)
			switch {
			case ref != nil:
				refusals = append(refusals, ref)
			case rp:
				replan, p.initProxy = true, true
			default:
				transient = true
			}
		case kindNoMember:
			// The membership has a budget now: re-plan with it charged.
			var m Membership
			if err := attributevalue.UnmarshalMap(r.Item, &m); err != nil {
				return nil, fmt.Errorf("decode %s record: %w", ScopeMember, err)
			}
			if m.MaxBudget == nil {
				transient = true
				continue
			}
			in.Membership, replan = &m, true
		case kindNoCustomer:
			// The customer exists: re-plan with it charged (and checked not blocked).
			var c Customer
			if err := attributevalue.UnmarshalMap(r.Item, &c); err != nil || c.UserID == "" {
				transient = true
				continue
			}
			in.Customer, replan = &c, true
		case kindWindow:
			if ref := p.explainWindow(k.index, r.Item); ref != nil {
				refusals = append(refusals, ref)
			} else {
				transient = true
			}
		}
	}
	switch {
	case replan:
		return nil, errReplan
	case len(refusals) > 0:
		best := refusals[0]
		for _, r := range refusals[1:] {
			if rank(r) < rank(best) {
				best = r
			}
		}
		return nil, best
	case shard:
		return nil, errShard
	case keyShard:
		return nil, errShardRefused
	case transient:
		return nil, errTransient
	}
	return nil, errors.New("reservation cancelled without a reason")
}

// recordState checks record i as a failed write (or a refill) read it, before its budgets:
// a deleted key is refused, a rotated one followed to its new hash (replan), a blocked or
// expired record refused; a record that changed shape is put into the input (replan), a
// deleted user, team or membership dropped from it.
func (p *plan) recordState(in *ReserveInput, i int, it map[string]types.AttributeValue) (account, any, *Refusal, bool, error) {
	old := p.accounts[i]
	if len(it) == 0 {
		if old.scope == ScopeKey {
			return account{}, nil, &Refusal{Reason: ReasonKeyMissing, Scope: ScopeKey, ID: old.id}, false, nil
		}
		in.replace(old.scope, nil)
		return account{}, nil, nil, true, nil
	}
	a, rec, err := decodeAccount(old.scope, it)
	if err != nil {
		return account{}, nil, nil, false, err
	}
	if k, ok := rec.(*Key); ok && k.IsPointer() {
		// The key was rotated since it was cached: charge the record where it lives now,
		// while the old secret is still in its grace period.
		if k.RevokeAt == nil || !in.Now.Before(*k.RevokeAt) {
			return a, rec, &Refusal{Reason: ReasonKeyMissing, Scope: ScopeKey, ID: old.id}, false, nil
		}
		moved := *in.Key
		moved.Token = k.ActiveToken
		in.Key = &moved
		return a, rec, nil, true, nil
	}
	if a.isKey && a.blocked {
		return a, rec, &Refusal{Reason: ReasonBlocked, Scope: ScopeKey, ID: a.id}, false, nil
	}
	if a.isKey && a.expiresAt != 0 && a.expiresAt <= in.Now.Unix() {
		return a, rec, &Refusal{Reason: ReasonExpired, Scope: ScopeKey, ID: a.id, Expires: time.Unix(a.expiresAt, 0).UTC()}, false, nil
	}
	if (a.isTeam || a.isCustomer) && a.blocked {
		return a, rec, &Refusal{Reason: ReasonBlocked, Scope: a.scope, ID: a.id}, false, nil
	}
	if a.shape(in.Model) != p.shapes[i] {
		in.replace(old.scope, rec)
		return a, rec, nil, true, nil
	}
	return a, rec, nil, false, nil
}

// explainAccount reads a refusing record (see recordState), then its budgets and limits.
func (p *plan) explainAccount(in *ReserveInput, i int, it map[string]types.AttributeValue) (*Refusal, bool, error) {
	a, rec, ref, replan, err := p.recordState(in, i, it)
	if err != nil || ref != nil || replan {
		return ref, replan, err
	}
	cost := usdFloat(in.Cost)
	check := in.Check
	if check == CheckReserve && cost == 0 {
		check = CheckPostHoc
	}
	fits := func(remaining float64, lenient bool) bool {
		switch {
		case check == CheckReserve:
			return remaining >= cost
		case check == CheckPostHoc && lenient:
			return remaining >= 0
		case check == CheckPostHoc:
			return remaining > 0
		}
		return true
	}
	ref = &Refusal{Scope: a.scope, ID: a.id}
	if a.scope == ScopeMember {
		m := rec.(*Membership)
		ref.UserID, ref.TeamID = m.UserID, m.TeamID
	}
	if a.budget.MaxBudget != nil && !fits(ptrOr(a.budget.Remaining, 0), a.isTeam) {
		ref.Reason, ref.Spend, ref.Max = ReasonBudget, a.budget.Spend, *a.budget.MaxBudget
		return ref, false, nil
	}
	for _, w := range a.windows {
		if !fits(w.Remaining, false) {
			ref.Reason, ref.Spend, ref.Max, ref.Window = ReasonWindow, w.Spend, w.MaxBudget, w.BudgetDuration
			return ref, false, nil
		}
	}
	if mb, ok := a.models[in.Model]; ok && !fits(mb.Remaining, false) {
		ref.Reason, ref.Spend, ref.Max, ref.Model, ref.KeyAlias = ReasonModelBudget, mb.Spend, mb.BudgetLimit, in.Model, a.keyAlias
		return ref, false, nil
	}
	if mp := a.limits.MaxParallelRequests; mp != nil && a.limits.Inflight >= *mp {
		ref.Reason, ref.Limit, ref.Used = ReasonParallel, *mp, a.limits.Inflight
		ref.ResetAt = in.Now.Add(time.Second).UTC()
		return ref, false, nil
	}
	if a.isKey && p.spills(it) {
		return nil, true, nil
	}
	if a.isKey && p.keyRate != nil {
		ref, switched := p.explainKeyRate(it)
		return ref, switched, nil
	}
	return nil, false, nil
}

// replace swaps the input's record of scope for rec (nil drops it).
func (in *ReserveInput) replace(scope string, rec any) {
	switch scope {
	case ScopeKey:
		in.Key, _ = rec.(*Key)
	case ScopeUser:
		in.User, _ = rec.(*User)
	case ScopeTeam:
		in.Team, _ = rec.(*Team)
	case ScopeMember:
		in.Membership, _ = rec.(*Membership)
	case ScopeEndUser:
		in.Customer, _ = rec.(*Customer)
	}
}

// proxyItem is the PROXY#BUDGET item.
type proxyItem struct {
	MaxBudget *float64 `dynamodbav:"max_budget"`
	Spend     float64  `dynamodbav:"spend"`
	Remaining float64  `dynamodbav:"remaining"`
}

func (p *plan) explainProxy(in *ReserveInput, it map[string]types.AttributeValue) (*Refusal, bool) {
	var pi proxyItem
	if len(it) == 0 || attributevalue.UnmarshalMap(it, &pi) != nil || pi.MaxBudget == nil || usd(*pi.MaxBudget) != usd(*in.ProxyMaxBudget) {
		return nil, true // missing or configured differently: initialise, then retry
	}
	cost := usdFloat(in.Cost)
	if (in.Check == CheckReserve && cost > 0 && pi.Remaining < cost) || pi.Remaining < 0 {
		return &Refusal{Reason: ReasonBudget, Scope: ScopeProxy, Spend: pi.Spend, Max: *pi.MaxBudget}, false
	}
	return nil, false
}

// windowItem is an RL# item.
type windowItem struct {
	N   int64 `dynamodbav:"n"`
	Tok int64 `dynamodbav:"tok"`
}

func (p *plan) explainWindow(i int, it map[string]types.AttributeValue) *Refusal {
	w := p.windows[i]
	var wi windowItem
	if attributevalue.UnmarshalMap(it, &wi) != nil {
		return nil
	}
	return w.refusal(p.minute, wi.N, wi.Tok)
}

// refusal is the refusal of a window that counted n requests and tok tokens in minute, or
// nil when neither is over what admits the call.
func (w *rateWindow) refusal(minute, n, tok int64) *Refusal {
	ref := &Refusal{Scope: w.scope, ID: w.id, ResetAt: time.Unix((minute+1)*60, 0).UTC()}
	switch {
	case w.rpm.set && n >= w.rpm.v:
		ref.Reason, ref.Limit, ref.Used = ReasonRequests, w.rpm.v, n
	case w.tpm.set && tok > w.most:
		ref.Reason, ref.Limit, ref.Used = ReasonTokens, w.tpm.v, tok
	default:
		return nil
	}
	return ref
}

// scopeOrder is the order of LiteLLM's checks among scopes.
var scopeOrder = map[string]int{ScopeKey: 0, ScopeTeam: 1, ScopeUser: 2, ScopeMember: 3, ScopeEndUser: 4, ScopeProxy: 5, ScopeKeyModel: 6, ScopeTeamModel: 7}

// rank orders refusals as LiteLLM runs its checks: the key's state and budgets, the team's,
// the user's, the proxy's, then rate limits (key, user, team, member, per model).
func rank(r *Refusal) int {
	switch r.Reason {
	case ReasonDuplicate:
		return 0
	case ReasonKeyMissing, ReasonBlocked, ReasonExpired:
		return 10 + scopeOrder[r.Scope]
	case ReasonBudget, ReasonModelBudget:
		return 20 + 2*scopeOrder[r.Scope]
	case ReasonWindow:
		return 20 + 2*scopeOrder[r.Scope] + 1
	case ReasonParallel:
		return 40 + scopeOrder[r.Scope]
	default:
		return 50 + scopeOrder[r.Scope]
	}
}

// ProxyBudget is what the proxy-wide budget (litellm_settings.max_budget) has counted.
type ProxyBudget struct {
	Spend float64 `dynamodbav:"spend"`
	// ResetAt is the next reset (nil without litellm_settings.budget_duration).
	ResetAt *time.Time `dynamodbav:"budget_reset_at"`
}

// ProxyBudget reads the proxy budget's item; zero before a call charged it.
func (s *Store) ProxyBudget(ctx context.Context) (ProxyBudget, error) {
	var b ProxyBudget
	if err := s.get(ctx, ProxyBudgetPK, SortProxyBudget, &b); err != nil && !errors.Is(err, ErrNotFound) {
		return ProxyBudget{}, fmt.Errorf("proxy budget: %w", err)
	}
	return b, nil
}

// EnsureProxyBudget creates or re-bases the PROXY#BUDGET item for max: it sets max_budget
// and remaining = max - spend, keeping the spend. It is a no-op when the item already has
// that max_budget.
func (s *Store) EnsureProxyBudget(ctx context.Context, max float64) error {
	e := newTxExpr()
	mb, rem, spend := e.name("max_budget"), e.name("remaining"), e.name("spend")
	m := e.num(usd(max))
	e.set(mb + " = " + m)
	e.set(rem + " = " + m + " - if_not_exists(" + spend + ", " + e.num("0") + ")")
	e.cond("attribute_not_exists(" + mb + ") OR " + mb + " <> " + m)
	u := e.update(s.table, ProxyBudgetPK, SortProxyBudget)
	// Retried: calls reserving on the item in transactions make this write conflict.
	err := retryWrite(ctx, func() error {
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
			ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
			ExpressionAttributeValues: u.ExpressionAttributeValues,
		})
		return err
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("initialise proxy budget: %w", err)
	}
	return nil
}

// Settlement is what a call did: its actual cost, the tokens to count in its rate windows,
// and its spend log (nil writes none).
type Settlement struct {
	Cost   float64
	Tokens int64
	Log    *SpendLog
}

// Settle replaces a reservation with the call's outcome: it releases the reservation (the
// RES# item, or the entry held on the key record, each only if it is still there, so the
// call and the rotator never both apply it), adds actual - reserved to every budget the
// reservation charged, adds the cost to model_spend, replaces the tokens reserved in the tpm
// windows with those used, releases the parallel-request lease and puts the spend log. That
// is one TransactWriteItems, except when the key record is the only record charged (or no
// record is): then the spend log is put first (see putLogFirst) and the key record settled
// in a single-item write, half the write units of a transaction; and except for a
// reservation made step by step (see settleSteps). A key rotated since the
// reservation is settled where it lives now: the update of the old hash fails on its pointer
// (whose active_token comes back with the cancellation) or on its absence (then its MOVED#
// item names the new hash), and the settlement is re-planned against the new hash.
// ErrSettled if the reservation was settled already. Retryable errors are retried with
// backoff until ctx ends.
func (s *Store) Settle(ctx context.Context, r *Reservation, st Settlement) error {
	res := r.res
	res.Targets = slices.Clone(r.res.Targets)
	steps := res.stepwise()
	if st.Log != nil && (!res.Held || res.soleKey() || steps) {
		log := *st.Log
		log.Spend = usdFloat(st.Cost)
		cost, err := s.putLogFirst(ctx, &log)
		if err != nil {
			return fmt.Errorf("settle %s: %w", res.RequestID, err)
		}
		st.Cost, st.Log = cost, nil
	}
	if steps {
		return s.settleSteps(ctx, &res, st)
	}
	return s.settleWrites(ctx, &res, st)
}

// settleWrites writes a settlement (see settleItems), re-planning it when a charged record
// changed and retrying throttles and conflicts with backoff until ctx ends.
func (s *Store) settleWrites(ctx context.Context, r *resItem, st Settlement) error {
	res := *r
	refreshes := 0
	for attempt := 0; ; attempt++ {
		items, kinds, err := settleItems(s.table, &res, st)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		err = s.write(ctx, items)
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) {
			err = explainSettle(&res, kinds, tce.CancellationReasons)
			if errors.Is(err, errReplan) {
				if refreshes++; refreshes > maxRefreshes {
					return fmt.Errorf("settle %s: records keep changing: %w", res.RequestID, err)
				}
				if err := s.followMoved(ctx, &res); err != nil {
					return fmt.Errorf("settle %s: %w", res.RequestID, err)
				}
				continue
			}
		}
		if !retryable(err) {
			return fmt.Errorf("settle %s: %w", res.RequestID, err)
		}
		if werr := backoff(ctx, attempt); werr != nil {
			return fmt.Errorf("settle %s: gave up after %d attempts: %w", res.RequestID, attempt+1, err)
		}
	}
}

// settleItems builds the settlement transaction; kinds[i] is the target index of item i
// (-1 the RES# item, -2 the proxy budget, -3 a rate window, -4 the spend log).
func settleItems(table string, res *resItem, st Settlement) ([]types.TransactWriteItem, []int, error) {
	var items []types.TransactWriteItem
	var kinds []int
	add := func(w types.TransactWriteItem, k int) {
		items = append(items, w)
		kinds = append(kinds, k)
	}
	actual := usd(st.Cost)
	delta := usdSub(actual, usd(res.Cost))
	if res.Held && !res.OnKey {
		add(types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(table), Key: keyOf(PrefixReservation+res.RequestID, SortReservation),
			ConditionExpression: aws.String("attribute_exists(pk)"),
		}}, -1)
	}
	for i, t := range res.Targets {
		if u := settleTarget(table, t, res, delta, actual, st.Tokens); u != nil {
			add(types.TransactWriteItem{Update: u}, i)
		}
	}
	if res.Proxy && (delta != "0" || res.Cost != 0) {
		e := newTxExpr()
		d := e.num(delta)
		spend, rem, rsv := e.name("spend"), e.name("remaining"), e.name("reserved")
		e.set(spend + " = " + spend + " + " + d)
		e.set(rem + " = " + rem + " - " + d)
		e.set(rsv + " = if_not_exists(" + rsv + ", " + e.num("0") + ") - " + e.num(usd(res.Cost)))
		e.cond("attribute_exists(" + rem + ")")
		add(types.TransactWriteItem{Update: e.update(table, ProxyBudgetPK, SortProxyBudget)}, -2)
	}
	for i, pk := range res.Windows {
		d := st.Tokens
		if i < len(res.Tokens) { // reservations stored before tokens were held have none
			d -= res.Tokens[i]
		}
		if d != 0 {
			e := newTxExpr()
			e.add(e.name("tok") + " " + e.num(strconv.FormatInt(d, 10)))
			e.set(e.name(schema.AttrTTL) + " = " + e.num(strconv.FormatInt(res.WindowTTL, 10)))
			add(types.TransactWriteItem{Update: e.update(table, pk, SortRateWindow)}, -3)
		}
	}
	if st.Log != nil {
		log := *st.Log
		log.Spend = usdFloat(st.Cost)
		put, err := spendLogPut(table, &log)
		if err != nil {
			return nil, nil, err
		}
		add(types.TransactWriteItem{Put: put}, -4)
	}
	if len(items) > MaxTxItems {
		return nil, nil, fmt.Errorf("settlement of %d writes is over DynamoDB's limit of %d", len(items), MaxTxItems)
	}
	return items, kinds, nil
}

// settleTarget is the update of one charged record, or nil when there is nothing to change.
// Besides applying delta it takes the reserved cost off reserved, the part of spend that
// calls in flight hold (a budget reset keeps it: see ResetBudgets); on the key record it
// releases the held entry and replaces the tokens reserved in its minute with those used
// (while that minute is still the record's).
func settleTarget(table string, t target, res *resItem, delta, actual string, tokens int64) *types.Update {
	model, cost := res.Model, usd(res.Cost)
	held := res.OnKey && t.Scope == ScopeKey || t.Held
	tok := int64(0)
	if t.RateMinute != 0 {
		tok = tokens - t.RateTokens
	}
	uncount := res.uncount != 0 && t.Scope == ScopeKey
	if delta == "0" && cost == "0" && (!t.ModelSpend || actual == "0") && !t.Lease && !held && tok == 0 && !uncount {
		return nil
	}
	e := newTxExpr()
	e.cond("attribute_exists(pk)")
	if t.Scope == ScopeKey {
		e.cond("attribute_not_exists(" + e.name("active_token") + ")") // not a rotated-out hash
	}
	if held {
		releaseOnKey(e, res.RequestID)
	}
	if tok != 0 {
		e.add(e.name(attrRateTok) + " " + e.num(strconv.FormatInt(tok, 10)))
		e.cond(e.name(attrRateMinute) + " = " + e.num(strconv.FormatInt(t.RateMinute, 10)))
	}
	if uncount {
		e.add(e.name(attrRateN) + " " + e.num("-1"))
		e.cond(e.name(attrRateMinute) + " = " + e.num(strconv.FormatInt(res.uncount, 10)))
	}
	if delta != "0" || cost != "0" {
		d, k, zero := e.num(delta), e.num(cost), e.num("0")
		spend, rsv := e.name("spend"), e.name("reserved")
		e.set(spend + " = if_not_exists(" + spend + ", " + zero + ") + " + d)
		e.set(rsv + " = if_not_exists(" + rsv + ", " + zero + ") - " + k)
		if t.Budget {
			rem := e.name("remaining")
			e.set(rem + " = " + rem + " - " + d)
			e.cond("attribute_exists(" + rem + ")")
		}
		if t.Windows > 0 {
			bl, rem := e.name("budget_limits"), e.name("remaining")
			for w := range t.Windows {
				ws, wr, wv := bl+"["+strconv.Itoa(w)+"]."+spend, bl+"["+strconv.Itoa(w)+"]."+rem, bl+"["+strconv.Itoa(w)+"]."+rsv
				e.set(ws + " = " + ws + " + " + d)
				e.set(wr + " = " + wr + " - " + d)
				e.set(wv + " = if_not_exists(" + wv + ", " + zero + ") - " + k)
			}
			e.cond("attribute_exists(" + bl + "[" + strconv.Itoa(t.Windows-1) + "]." + rem + ")")
		}
		if t.ModelBudget {
			rem := e.name("remaining")
			mb := e.name("model_max_budget") + "." + e.name(model)
			e.set(mb + "." + spend + " = " + mb + "." + spend + " + " + d)
			e.set(mb + "." + rem + " = " + mb + "." + rem + " - " + d)
			e.set(mb + "." + rsv + " = if_not_exists(" + mb + "." + rsv + ", " + zero + ") - " + k)
			e.cond("attribute_exists(" + mb + "." + rem + ")")
		}
	}
	if t.ModelSpend && actual != "0" {
		msp := e.name("model_spend")
		path := msp + "." + e.name(model)
		e.set(path + " = if_not_exists(" + path + ", " + e.num("0") + ") + " + e.num(actual))
		e.cond("attribute_exists(" + msp + ")")
	}
	if t.Lease {
		e.add(e.name("inflight") + " " + e.num("-1"))
	}
	return e.update(table, t.PK, t.SK)
}

// explainSettle turns a cancelled settlement into ErrSettled, errReplan (a charged record
// was deleted or changed shape since the reservation: the plan follows it) or the
// cancellation itself (retryable when it was a conflict or throttling).
func explainSettle(res *resItem, kinds []int, reasons []types.CancellationReason) error {
	replan := false
	for i, r := range reasons {
		if aws.ToString(r.Code) != "ConditionalCheckFailed" || i >= len(kinds) {
			continue
		}
		switch k := kinds[i]; {
		case k == -1, k >= 0 && res.OnKey && (res.Targets[k].Scope == ScopeKey || res.Targets[k].Held) && settledOnKey(r.Item, res.RequestID):
			return ErrSettled
		case k >= 0 && res.Targets[k].Held && settledOnKey(r.Item, res.RequestID):
			// Handed over to a RES# item: this record was settled (or never reserved) step by
			// step; the others still are to settle.
			res.Targets[k], replan = target{}, true
		case k >= 0 && res.uncount != 0 && res.Targets[k].Scope == ScopeKey && keyMinute(r.Item) != res.uncount:
			res.uncount, replan = 0, true // the minute is over: its count is gone with it
			res.Targets[k] = refit(res.Targets[k], res.Model, r.Item)
		case k == -4:
			return fmt.Errorf("spend log %s: %w", res.RequestID, ErrExists)
		case k == -2:
			res.Proxy, replan = false, true
		case k >= 0:
			replan = true
			res.Targets[k] = refit(res.Targets[k], res.Model, r.Item)
		}
	}
	if replan {
		res.Targets = compact(res.Targets)
		return errReplan
	}
	return &types.TransactionCanceledException{CancellationReasons: reasons, Message: aws.String("settlement cancelled")}
}

// refit adapts a target to its record as it is now; a deleted record gets an empty PK. A
// rotated key moves to its active hash (the same record, so nothing else changes), or is
// marked moved when its old hash is gone.
func refit(t target, model string, it map[string]types.AttributeValue) target {
	if t.Scope == ScopeKey {
		if a, ok := it["active_token"].(*types.AttributeValueMemberS); ok {
			t.PK = PrefixKey + a.Value
			return t
		}
		if len(it) == 0 {
			t.moved = true
			return t
		}
		var rl keyRateItem
		if attributevalue.UnmarshalMap(it, &rl) != nil || rl.Minute != t.RateMinute {
			t.RateMinute = 0 // the minute is over: its count is gone with it
		}
	}
	if len(it) == 0 {
		return target{}
	}
	a, _, err := decodeAccount(t.Scope, it)
	if err != nil {
		return target{}
	}
	_, hasMB := a.models[model]
	_, hasMS := it["model_spend"]
	t.Budget = t.Budget && a.budget.Remaining != nil
	t.Windows = min(t.Windows, len(a.windows))
	t.ModelBudget = t.ModelBudget && hasMB
	t.ModelSpend = t.ModelSpend && hasMS
	return t
}

// followMoved points the targets marked moved at the hash their MOVED# item names, and drops
// them when there is none (the key was deleted).
func (s *Store) followMoved(ctx context.Context, res *resItem) error {
	for i, t := range res.Targets {
		if !t.moved {
			continue
		}
		var mv movedItem
		err := s.get(ctx, PrefixMoved+strings.TrimPrefix(t.PK, PrefixKey), SortMoved, &mv)
		switch {
		case errors.Is(err, ErrNotFound):
			res.Targets[i] = target{}
			// The key was deleted: a reservation that charged other records was handed
			// over to a RES# item (see handOver), which now guards its settlement.
			res.OnKey = res.OnKey && len(res.Targets) == 1 && !res.stepped && !res.Proxy && len(res.Windows) == 0
		case err != nil:
			return fmt.Errorf("follow rotated key: %w", err)
		default:
			t.PK, t.moved = PrefixKey+mv.Token, false
			res.Targets[i] = t
		}
	}
	res.Targets = compact(res.Targets)
	return nil
}

func compact(ts []target) []target {
	out := ts[:0]
	for _, t := range ts {
		if t.PK != "" {
			out = append(out, t)
		}
	}
	return out
}

// SettleStale settles reservations whose expiry has passed (calls that crashed or hung
// between reserve and settle), at most limit of them: each is charged its estimated
// worst-case cost (the estimate is all that is known; charging less could let spend pass a
// budget unseen), its lease released and a failure spend log written. Each reservation is
// applied once even when several runs overlap (the RES# item is deleted under
// attribute_exists). It returns how many this run settled.
func (s *Store) SettleStale(ctx context.Context, now time.Time, limit int) (int, error) {
	settled := 0
	for i := range 2 * Shards {
		// RES# items in shards "0" …, key records holding reservations in "K0" … (heldShard).
		shard, prefix := strconv.Itoa(i), PrefixReservation
		if i >= Shards {
			shard, prefix = "K"+strconv.Itoa(i-Shards), PrefixKey
		}
		in := &dynamodb.QueryInput{
			TableName:              aws.String(s.table),
			IndexName:              aws.String(schema.IndexDueExpire),
			KeyConditionExpression: aws.String("expire_shard = :s AND expire_at <= :now"),
			FilterExpression:       aws.String("begins_with(pk, :p)"),
			ExpressionAttributeValues: item{
				":s":   &types.AttributeValueMemberS{Value: shard},
				":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
				":p":   &types.AttributeValueMemberS{Value: prefix},
			},
		}
		pager := dynamodb.NewQueryPaginator(s.db, in)
		for pager.HasMorePages() && settled < limit {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return settled, fmt.Errorf("query stale reservations: %w", err)
			}
			items, err := s.indexItems(ctx, schema.IndexDueExpire, page.Items[:min(len(page.Items), limit-settled)])
			if err != nil {
				return settled, fmt.Errorf("stale reservations: %w", err)
			}
			for _, it := range items {
				if settled >= limit {
					break
				}
				if pk, _ := it[schema.AttrPK].(*types.AttributeValueMemberS); pk != nil && strings.HasPrefix(pk.Value, PrefixKey) {
					n, err := s.settleHeld(ctx, it, now, limit-settled)
					settled += n
					if err != nil {
						return settled, err
					}
					continue
				}
				var res resItem
				if err := attributevalue.UnmarshalMap(it, &res); err != nil {
					return settled, fmt.Errorf("decode reservation: %w", err)
				}
				res.Held = true
				n, err := s.settleExpired(ctx, &res, now)
				settled += n
				if err != nil {
					return settled, err
				}
			}
		}
	}
	return settled, nil
}

// settleExpired settles a reservation whose call never did: at its estimated cost, with a
// failure spend log. It returns 1 if it settled it, 0 if it was settled already.
func (s *Store) settleExpired(ctx context.Context, res *resItem, now time.Time) (int, error) {
	log := res.Log
	log.Status, log.EndTime = StatusFailure, now.UTC()
	log.RequestDurationMS = log.EndTime.Sub(log.StartTime).Milliseconds()
	log.Metadata = map[string]any{"error_information": map[string]any{
		"error_class":   "ReservationExpired",
		"error_message": "the call was never settled; charged its reserved worst-case cost",
	}}
	switch err := s.Settle(ctx, &Reservation{res: *res}, Settlement{Cost: res.Estimate, Log: &log}); {
	case errors.Is(err, ErrSettled):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return 1, nil
}

// txExpr builds an update expression with its placeholders.
type txExpr struct {
	placeholders
	byNum           map[string]string
	sets, adds, cnd []string
	removes         []string
}

func newTxExpr() *txExpr {
	return &txExpr{placeholders: newPlaceholders(), byNum: make(map[string]string, placeholderHint)}
}

// num returns the placeholder of a number given as a decimal string.
func (e *txExpr) num(n string) string {
	if p, ok := e.byNum[n]; ok {
		return p
	}
	p := e.value(&types.AttributeValueMemberN{Value: n})
	e.byNum[n] = p
	return p
}

func (e *txExpr) set(s string)  { e.sets = append(e.sets, s) }
func (e *txExpr) add(s string)  { e.adds = append(e.adds, s) }
func (e *txExpr) cond(s string) { e.cnd = append(e.cnd, s) }

func (e *txExpr) remove(path string) { e.removes = append(e.removes, path) }

// same requires the limit at path to be the one the plan assumed.
func (e *txExpr) same(path string, o opt) {
	if o.set {
		e.cond(path + " = " + e.num(strconv.FormatInt(o.v, 10)))
	} else {
		e.cond("attribute_not_exists(" + path + ")")
	}
}

func (e *txExpr) update(table, pk, sk string) *types.Update {
	var parts []string
	if len(e.sets) > 0 {
		parts = append(parts, "SET "+strings.Join(e.sets, ", "))
	}
	if len(e.adds) > 0 {
		parts = append(parts, "ADD "+strings.Join(e.adds, ", "))
	}
	if len(e.removes) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(e.removes, ", "))
	}
	u := &types.Update{
		TableName:                           aws.String(table),
		Key:                                 keyOf(pk, sk),
		UpdateExpression:                    aws.String(strings.Join(parts, " ")),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(e.names) > 0 {
		u.ExpressionAttributeNames = e.names
	}
	if len(e.values) > 0 {
		u.ExpressionAttributeValues = e.values
	}
	if len(e.cnd) > 0 {
		u.ConditionExpression = aws.String(strings.Join(e.cnd, " AND "))
	}
	return u
}

// Money is written to DynamoDB as decimal numbers rounded to 1e-12 USD, and DynamoDB adds
// decimals exactly, so spend is the exact sum of what the spend logs record.
const usdDecimals = 12

// usd formats an amount in USD as the decimal DynamoDB stores ("0.0025", "0").
func usd(f float64) string {
	s := strconv.FormatFloat(f, 'f', usdDecimals, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" || s == "" {
		return "0"
	}
	return s
}

// usdFloat rounds an amount as usd does.
func usdFloat(f float64) float64 {
	v, _ := strconv.ParseFloat(usd(f), 64)
	return v
}

// usdSub returns a - b of two decimals exactly.
func usdSub(a, b string) string {
	if x, ok := picoUSD(a); ok {
		if y, ok := picoUSD(b); ok {
			return picoString(x - y)
		}
	}
	return ratString(new(big.Rat).Sub(ratOf(a), ratOf(b)))
}

func ptrOr(p *float64, d float64) float64 {
	if p == nil {
		return d
	}
	return *p
}
