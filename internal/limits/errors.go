package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

// TypeThrottling is the error type of LiteLLM's rate-limit 429s.
const TypeThrottling = "throttling_error"

// refusal turns a failed reservation into the error the client sees: LiteLLM's message for
// a refusal, a 503 for anything else (the store could not be reached in time: fail closed).
func (l *Limiter) refusal(ctx context.Context, err error, p *auth.Principal, ch llmcall.Charge, now time.Time) error {
	var ref *store.Refusal
	if !errors.As(err, &ref) {
		l.log.LogAttrs(ctx, slog.LevelError, "reserve failed: call refused (fail closed)",
			slog.String("request_id", ch.RequestID), slog.String("error", err.Error()))
		return openai.Errorf(http.StatusServiceUnavailable, openai.TypeUnavailable,
			"Budget and rate limit checks are unavailable right now; the call was not made. Try again shortly.")
	}
	e := refusalError(ref, now)
	if (ref.Reason == store.ReasonBudget || ref.Reason == store.ReasonWindow) && ref.Spend < ref.Max && ch.Cost > 0 {
		// Reserve mode refused a call whose worst case does not fit what is left: LiteLLM's
		// message alone ("Current cost: 0.2, Max budget: 1.0") would read as a bug.
		e.Message += fmt.Sprintf(". This call could cost up to %s (prompt + max_tokens %d), more than the %s left; lower max_tokens to fit.",
			usd(ch.Cost), ch.MaxTokens, usd(ref.Max-ref.Spend))
	}
	return e
}

// release frees, in the background, a reservation that may have been written although
// Reserve failed (its answer was lost): it settles it at zero cost, with no spend log (the
// call was refused), within the settle time budget and on a context the caller's end does
// not cancel. Refusals are definite and hold nothing. If the release fails too, the
// reservation expires and the rotator settles it.
func (l *Limiter) release(ctx context.Context, err error) {
	var ue *store.UncertainError
	if !errors.As(err, &ue) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.settleTimeout)
	go func() {
		defer cancel()
		id := slog.String("request_id", ue.Reservation.RequestID())
		switch err := l.st.Settle(ctx, ue.Reservation, store.Settlement{}); {
		case err == nil:
			l.log.LogAttrs(ctx, slog.LevelInfo, "reserve failed after its reservation was written: released", id)
		case errors.Is(err, store.ErrSettled): // never written: nothing to release
		default:
			l.log.LogAttrs(ctx, slog.LevelError, "release of an uncertain reservation failed: it stays until it expires and the rotator settles it",
				id, slog.Time("expires", ue.Reservation.ExpireAt()), slog.String("error", err.Error()))
		}
	}()
}

// refusalError is LiteLLM's error for a refusal.
func refusalError(r *store.Refusal, now time.Time) *openai.Error {
	switch r.Reason {
	case store.ReasonBudget:
		return budgetError(budgetMessage(r))
	case store.ReasonWindow:
		who := "Key"
		if r.Scope == store.ScopeTeam {
			who = "Team=" + r.ID
		}
		return budgetError(fmt.Sprintf("ExceededBudget: %s over %s budget. Spend=$%.4f, Limit=$%.2f", who, r.Window, r.Spend, r.Max))
	case store.ReasonModelBudget:
		if r.Scope == store.ScopeUser {
			return budgetError(fmt.Sprintf("LiteLLM User: %s, exceeded budget for model=%s", r.ID, r.Model))
		}
		alias := r.KeyAlias
		if alias == "" {
			alias = "None"
		}
		return budgetError(fmt.Sprintf("LiteLLM Virtual Key: %s, key_alias: %s, exceeded budget for model=%s", r.ID, alias, r.Model))
	case store.ReasonBlocked:
		switch r.Scope {
		case store.ScopeTeam:
			return authError(fmt.Sprintf("Authentication Error, Team=%s is blocked. Update via `/team/unblock` if you're an admin.", r.ID))
		case store.ScopeEndUser:
			return authError(fmt.Sprintf("Authentication Error, End User=%s is blocked. Update via `/customer/unblock` if you're an admin.", r.ID))
		}
		return authError("Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.")
	case store.ReasonExpired:
		return openai.Errorf(http.StatusUnauthorized, auth.TypeExpiredKey, fmt.Sprintf(
			"Authentication Error - Expired Key. Key Expiry time %s and current time %s",
			auth.PyTime(r.Expires), auth.PyTime(now))).WithParam(auth.KeyName(r.ID))
	case store.ReasonKeyMissing:
		return openai.Errorf(http.StatusUnauthorized, auth.TypeTokenNotFound, fmt.Sprintf(
			"Authentication Error, Invalid proxy server token passed. Key Hash (Token) =%s. Unable to find token in cache or `LiteLLM_VerificationTokenTable`", r.ID)).WithParam("key")
	case store.ReasonDuplicate:
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf("request id %s was used before", r.ID))
	default:
		return rateLimitError(r, now)
	}
}

func budgetMessage(r *store.Refusal) string {
	s, b := pyFloat(r.Spend), pyFloat(r.Max)
	switch r.Scope {
	case store.ScopeUser:
		return fmt.Sprintf("ExceededBudget: User=%s over budget. Spend=%s, Budget=%s", r.ID, s, b)
	case store.ScopeTeam:
		return fmt.Sprintf("Budget has been exceeded! Team=%s Current cost: %s, Max budget: %s", r.ID, s, b)
	case store.ScopeMember:
		return fmt.Sprintf("Budget has been exceeded! User=%s in Team=%s Current cost: %s, Max budget: %s", r.UserID, r.TeamID, s, b)
	case store.ScopeEndUser:
		return fmt.Sprintf("ExceededBudget: End User=%s over budget. Spend=%s, Budget=%s", r.ID, s, b)
	default: // the key's budget and the proxy's use litellm.BudgetExceededError's default message
		return fmt.Sprintf("Budget has been exceeded! Current cost: %s, Max budget: %s", s, b)
	}
}

// budgetError is LiteLLM's 400 for a BudgetExceededError: type budget_exceeded, param null.
func budgetError(msg string) *openai.Error {
	return openai.Errorf(http.StatusBadRequest, openai.TypeBudgetExceeded, msg)
}

// authError is LiteLLM's 401 auth_error, param "None".
func authError(msg string) *openai.Error {
	return openai.Errorf(http.StatusUnauthorized, openai.TypeAuth, msg).WithParam("None")
}

// rateLimitError is LiteLLM's 429 of its v3 rate limiter, with retry-after (seconds until
// the window resets), rate_limit_type and reset_at headers.
func rateLimitError(r *store.Refusal, now time.Time) *openai.Error {
	reset := r.ResetAt
	if reset.Before(now) {
		reset = now
	}
	resetAt := reset.UTC().Format("2006-01-02 15:04:05 UTC")
	e := openai.Errorf(http.StatusTooManyRequests, TypeThrottling, fmt.Sprintf(
		"Rate limit exceeded for %s: %s. Limit type: %s. Current limit: %d, Remaining: %d. Limit resets at: %s",
		r.Scope, r.ID, r.Reason, r.Limit, max(0, r.Limit-r.Used), resetAt))
	e.Header = http.Header{}
	e.Header.Set("retry-after", strconv.Itoa(max(1, int(math.Ceil(reset.Sub(now).Seconds())))))
	e.Header.Set("rate_limit_type", string(r.Reason))
	e.Header.Set("reset_at", resetAt)
	return e
}

// usd formats an amount with six significant digits, for explanations (not LiteLLM's fields).
func usd(f float64) string { return "$" + strconv.FormatFloat(f, 'g', 6, 64) }

// pyFloat formats f as Python's str(float): "1.0", "0.25", "1e-05", "1.5e+16".
func pyFloat(f float64) string {
	if f == 0 {
		return "0.0"
	}
	if a := math.Abs(f); a < 1e-4 || a >= 1e16 {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
