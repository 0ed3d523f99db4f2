package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// memberUpdateRequest is /team/member_update's body.
type memberUpdateRequest struct {
	memberRef
	Role            Opt[string]  `json:"role"`
	MaxBudgetInTeam Opt[float64] `json:"max_budget_in_team"`
}

// teamMemberUpdate is POST /team/member_update: a member's role in the team and its budget
// there (max_budget_in_team; null removes it), in one transaction. A team admin may change
// other members, not itself.
func (h *handler) teamMemberUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req memberUpdateRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := req.memberRef.validate(); err != nil {
		return err
	}
	if req.Role.Has() {
		if err := (member{UserID: req.UserID, UserEmail: req.UserEmail, Role: req.Role.V}).validate(); err != nil {
			return err
		}
	}
	if req.MaxBudgetInTeam.Has() && req.MaxBudgetInTeam.V < 0 {
		return invalid(fmt.Sprintf("max_budget_in_team cannot be negative. Received: %s", pyFloat(req.MaxBudgetInTeam.V)))
	}
	ctx := r.Context()
	now := h.Now().UTC()
	var uid, email string
	var ms *store.Membership
	err := store.Retry(ctx, func() error {
		old, err := h.teamToChange(r, p, req.TeamID)
		if err != nil {
			return err
		}
		team, err := store.Clone(old)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(team.MembersWithRoles, func(m store.Member) bool {
			return (req.UserID != "" && aws.ToString(m.UserID) == req.UserID) ||
				(req.UserID == "" && strings.EqualFold(aws.ToString(m.UserEmail), req.UserEmail))
		})
		if i < 0 {
			return invalid("User not found in team")
		}
		uid, email = aws.ToString(team.MembersWithRoles[i].UserID), aws.ToString(team.MembersWithRoles[i].UserEmail)
		if !p.IsProxyAdmin() && uid == p.UserID {
			return forbidden("A team admin cannot change its own role or budget in the team; ask a proxy admin.")
		}
		tx := h.Store.Tx()
		if req.Role.Has() && team.MembersWithRoles[i].Role != req.Role.V {
			team.MembersWithRoles[i].Role = req.Role.V
			team.Admins = slices.DeleteFunc(slices.Clone(team.Admins), func(s string) bool { return s == uid })
			team.UpdatedAt, team.UpdatedBy = now, p.UserID
			if err := tx.UpdateTeam(old, team); err != nil {
				return err
			}
		}
		oldMs, err := h.Store.GetMembership(ctx, req.TeamID, uid)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ms = &store.Membership{TeamID: req.TeamID, UserID: uid}
			if req.MaxBudgetInTeam.Set {
				ms.MaxBudget = req.MaxBudgetInTeam.Ptr()
				if err := tx.PutMembership(ms); err != nil {
					return err
				}
			}
		case err != nil:
			return err
		default:
			c := *oldMs
			ms = &c
			if req.MaxBudgetInTeam.Set {
				ms.MaxBudget = req.MaxBudgetInTeam.Ptr()
				if err := tx.UpdateMembership(oldMs, ms); err != nil {
					return err
				}
			}
		}
		if err := tx.Commit(ctx); errors.Is(err, store.ErrMemberExists) {
			return fmt.Errorf("membership created concurrently: %w", store.ErrConflict)
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.Auth.Invalidate()
	return writeJSON(w, map[string]any{
		"team_id": req.TeamID, "user_id": uid, "user_email": nilIfEmpty(email),
		"max_budget_in_team": ms.MaxBudget,
	})
}
