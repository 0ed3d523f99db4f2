package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A call that charges its key and other records (its user, team, team membership, customer)
// and nothing else is reserved and settled step by step: one single-item conditional
// UpdateItem per record instead of one TransactWriteItems over all of them, half the write
// units of each write (DynamoDB bills a transactional write twice).
//
// Each record's condition bounds its own budget, so spend never passes a budget whatever the
// order. Each record takes an r#<request id> entry of its own: its settlement removes it under
// attribute_exists, so each record is settled exactly once, by the call or by the rotator.
// The key record goes first when reserving (the others then at once) and last when settling,
// and its entry lists the other records: while any of them may hold an entry, the key record holds its own, and the
// rotator, settling an expired key entry, settles each record that still holds one and skips
// the others (a call that crashed between steps). A later record's refusal undoes the
// earlier steps (a settlement at zero cost that also takes the request back from the key's
// rate count) before the refusal is returned.
//
// What a transaction gave and steps do not: the records are not charged at one instant. A
// call may see the key's headroom taken and the team's refusal a moment later; a concurrent
// call may be refused by headroom that the undo then gives back. Both are refusals that a
// slightly different order of the calls would have given too.

// stepwise reports whether the plan reserves step by step: the key record holds the
// reservation and the other writes are all records it charges (no rate-window items, no proxy
// budget, no check that a customer does not exist, which need a transaction).
func (p *plan) stepwise() bool {
	return p.res.OnKey && len(p.accounts) > 1 && len(p.windows) == 0 && !p.proxy && p.noCustomer == nil
}

// stepwise reports whether a reservation was made step by step (a record besides the key
// holds an entry).
func (r *resItem) stepwise() bool {
	if !r.OnKey || r.Proxy || len(r.Windows) > 0 {
		return false
	}
	for _, t := range r.Targets {
		if t.Held {
			return true
		}
	}
	return false
}

// reserveSteps reserves the plan step by step (see above): the key record first, then the
// other records at once. A membership checked to have no budget is read (strongly
// consistent) while the key record is written: one set since it was cached is charged at
// once (the key's write is undone and the plan re-planned with it).
func (s *Store) reserveSteps(ctx context.Context, p *plan, in *ReserveInput, uncertain bool) (*Reservation, error) {
	for i := range p.res.Targets[1:] {
		p.res.Targets[i+1].Held = true
	}
	items, err := p.reserveItems(s.table, in)
	if err != nil {
		return nil, err
	}
	if len(items) != len(p.accounts) {
		return nil, fmt.Errorf("reserve %s: %d step writes for %d records", in.RequestID, len(items), len(p.accounts))
	}
	var member *Membership
	var memberErr error
	var wg sync.WaitGroup
	if p.noMember != nil {
		wg.Go(func() {
			team, user := memberIDs(in)
			member, memberErr = s.GetMembership(ctx, team, user)
			if errors.Is(memberErr, ErrNotFound) || memberErr == nil && member.MaxBudget == nil {
				member, memberErr = nil, nil
			}
		})
	}
	// The key record: a failure is explained (and retried) as a whole reservation's.
	err = s.write(ctx, items[:1])
	wg.Wait()
	if err != nil {
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return nil, err
		}
		if _, err := p.explain(in, tce.CancellationReasons, uncertain); err != nil {
			return nil, err
		}
		// An earlier attempt wrote the key record's entry: go on with the others.
	}
	errs := make([]error, len(items))
	switch {
	case memberErr != nil:
		errs[0] = memberErr
	case member != nil:
		in.Membership, errs[0] = member, errReplan
	default:
		var mu sync.Mutex // explain reads and re-plans the input
		for i := 1; i < len(items); i++ {
			wg.Go(func() { errs[i] = s.reserveStep(ctx, p, in, items[i], i, &mu) })
		}
		wg.Wait()
	}
	err = stepError(errs)
	if err == nil {
		return &Reservation{res: p.res}, nil
	}
	if uerr := s.undo(ctx, p); uerr != nil {
		// The caller releases it in the background (or the rotator settles it); a refusal
		// stays one, anything else is no longer worth a re-plan.
		var ref *Refusal
		if !errors.As(err, &ref) {
			err = fmt.Errorf("reserve %s: %v", in.RequestID, err)
		}
		return nil, &UncertainError{Reservation: &Reservation{res: p.res}, Err: fmt.Errorf("%w (its undo failed: %v)", err, uerr)}
	}
	return nil, err
}

// stepError is the error of a reservation whose steps failed with errs: the refusal LiteLLM
// would report first, else a re-plan, else the first error.
func stepError(errs []error) error {
	var best *Refusal
	var replan, other error
	for _, err := range errs {
		var ref *Refusal
		switch {
		case errors.As(err, &ref):
			if best == nil || rank(ref) < rank(best) {
				best = ref
			}
		case errors.Is(err, errReplan):
			replan = err
		case err != nil && other == nil:
			other = err
		}
	}
	switch {
	case best != nil:
		return best
	case replan != nil:
		return replan
	}
	return other
}

// reserveStep writes record i's reservation, retrying throttles, conflicts and lost answers
// until ctx ends. A failed condition is explained as the record's refusal or a re-plan, or
// is the step itself done already (the record holds the call's entry: an attempt whose
// answer was lost committed; no other call can hold it, the key record's entry is unique).
func (s *Store) reserveStep(ctx context.Context, p *plan, in *ReserveInput, w types.TransactWriteItem, i int, mu *sync.Mutex) error {
	refills := 0
	for attempt := 0; ; attempt++ {
		err := s.write(ctx, []types.TransactWriteItem{w})
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) && len(tce.CancellationReasons) == 1 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
			if heldOn(tce.CancellationReasons[0].Item, in.RequestID) {
				return nil
			}
			if p.escrow != nil && p.escrow.i == i {
				// The team's shard cannot pay: refill it and try again (a few times at once,
				// then with backoff), or the team's refusal.
				mu.Lock()
				err = s.refill(ctx, p, p.escrow, in)
				mu.Unlock()
				if err == nil {
					if refills++; refills < maxRefills {
						continue
					}
					err = errTransient
				}
				if !retryable(err) {
					return err
				}
				if werr := backoff(ctx, attempt); werr != nil {
					return fmt.Errorf("reserve %s: gave up after %d attempts: %w", in.RequestID, attempt+1, err)
				}
				continue
			}
			reasons := make([]types.CancellationReason, i+1)
			reasons[i] = tce.CancellationReasons[0]
			mu.Lock()
			_, err = p.explain(in, reasons, false)
			mu.Unlock()
			if !errors.Is(err, errTransient) {
				return err
			}
		}
		if !retryable(err) {
			return err
		}
		if werr := backoff(ctx, attempt); werr != nil {
			return fmt.Errorf("reserve %s: gave up after %d attempts: %w", in.RequestID, attempt+1, err)
		}
	}
}

// undo takes back what the steps of a reservation wrote: a settlement at zero cost without a
// spend log, which skips the records that hold no entry and takes the request back from the
// key record's rate count of the minute (when that minute is still the record's).
func (s *Store) undo(ctx context.Context, p *plan) error {
	res := p.res
	res.Targets = append([]target(nil), p.res.Targets...)
	if p.keyRate != nil {
		res.uncount = p.minute
	}
	err := s.Settle(ctx, &Reservation{res: res}, Settlement{})
	if errors.Is(err, ErrSettled) {
		return nil
	}
	return err
}

// settleSteps settles a reservation made step by step: the spend log first (it decides the
// cost, see putLogFirst), then each record but the key in a single-item write of its own
// (one that holds no entry is settled already, or was never reserved), the key record last.
func (s *Store) settleSteps(ctx context.Context, res *resItem, st Settlement) error {
	others := res.Targets[1:]
	for _, t := range others {
		one := *res
		one.Targets, one.uncount = []target{t}, 0
		err := s.settleWrites(ctx, &one, st)
		if err != nil && !errors.Is(err, ErrSettled) {
			return err
		}
	}
	key := *res
	key.Targets, key.stepped = res.Targets[:1], true
	return s.settleWrites(ctx, &key, st)
}

// heldOn reports whether a record as a failed write returned it holds the entry of request id.
func heldOn(it map[string]types.AttributeValue, id string) bool {
	_, ok := it[attrHeld+id]
	return ok
}

// keyMinute is the minute a key record as returned counts.
func keyMinute(it map[string]types.AttributeValue) int64 {
	var rl keyRateItem
	_ = attributevalue.UnmarshalMap(it, &rl)
	return rl.Minute
}
