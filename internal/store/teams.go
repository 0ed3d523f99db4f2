package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"

	"github.com/llmgate/llmgate/internal/store/schema"
)

func (t *Team) index() {
	t.Kind = KindTeam
	t.GSISort = gsiSort(SortPrefixTeam, t.CreatedAt, t.TeamID)
	setResetIndex(&t.Index, PrefixTeam+t.TeamID, budgetResets(t.Budget, t.BudgetLimits, nil))
}

// GetTeam reads a team. ErrNotFound if absent.
func (s *Store) GetTeam(ctx context.Context, id string) (*Team, error) {
	var t Team
	if err := s.get(ctx, PrefixTeam+id, SortTeam, &t); err != nil {
		return nil, err
	}
	if err := s.foldEscrow(ctx, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// GetTeams reads the teams of ids (at most a few hundred) in batches, in the order of ids;
// teams that do not exist are left out.
func (s *Store) GetTeams(ctx context.Context, ids []string) ([]Team, error) {
	keys := make([]item, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] { // BatchGetItem refuses a key asked twice
			seen[id] = true
			keys = append(keys, keyOf(PrefixTeam+id, SortTeam))
		}
	}
	items, err := s.batchGet(ctx, keys, true)
	if err != nil {
		return nil, fmt.Errorf("get teams: %w", err)
	}
	var out []Team
	if err := attributevalue.UnmarshalListOfMaps(items, &out); err != nil {
		return nil, fmt.Errorf("decode teams: %w", err)
	}
	return out, s.foldTeams(ctx, out)
}

// foldTeams adds the escrow shards of split teams into their figures (see foldEscrow).
func (s *Store) foldTeams(ctx context.Context, ts []Team) error {
	for i := range ts {
		if err := s.foldEscrow(ctx, &ts[i]); err != nil {
			return err
		}
	}
	return nil
}

// PutTeam adds the creation of a team to the transaction.
func (t *Tx) PutTeam(team *Team) error {
	fillHeadroom(&team.Budget, team.BudgetLimits, nil)
	team.EscrowShards = t.s.escrowShards(team.MaxBudget, MaxEscrowShards, 0)
	team.index()
	return t.put(PrefixTeam+team.TeamID, SortTeam, team, nil, fmt.Errorf("%w: %s", ErrTeamExists, team.TeamID))
}

// UpdateTeam adds the change of a team from old (as read) to new; windows new keeps (same
// budget_duration) keep what calls in flight reserved on them. A team whose budget grows is
// split into more escrow shards; blocking a split team or lowering its budget closes them.
func (t *Tx) UpdateTeam(old, new *Team) error {
	carryReserved(old.BudgetLimits, new.BudgetLimits, nil, nil)
	new.EscrowShards = t.s.escrowShards(new.MaxBudget, MaxEscrowShards, old.EscrowShards)
	b := teamBank(old.TeamID)
	t.s.spent.forget(b.pk)
	if new.EscrowShards > 1 && escrowCloses(old, new) {
		t.closeEscrow(b, new.EscrowShards)
	}
	new.index()
	return t.update(PrefixTeam+old.TeamID, SortTeam, old, new)
}

// DeleteTeam adds the deletion of a team record as read (ErrConflict if it changed since)
// and of its escrow shards: they hold headroom the team lent them, which a team created
// again under the same id would otherwise spend on top of its own budget.
func (t *Tx) DeleteTeam(team *Team) error {
	for i := range team.EscrowShards {
		t.del(PrefixTeam+team.TeamID, teamBank(team.TeamID).shardSK(i), "", nil, nil)
	}
	return t.delUnchanged(PrefixTeam+team.TeamID, SortTeam, team.Audit)
}

// membershipItem is a membership as stored: with its due_reset index attributes, so the
// rotator finds it when its budget resets.
type membershipItem struct {
	Membership
	ResetShard string `dynamodbav:"reset_shard,omitempty"`
	ResetAt    int64  `dynamodbav:"reset_at,omitempty"`
}

func (m *Membership) stored() membershipItem {
	var ix Index
	setResetIndex(&ix, PrefixTeam+m.TeamID, budgetResets(m.Budget, nil, nil))
	return membershipItem{Membership: *m, ResetShard: ix.ResetShard, ResetAt: ix.ResetAt}
}

// PutMembership adds a user's membership item in a team (ErrExists if there is one).
func (t *Tx) PutMembership(m *Membership) error {
	fillHeadroom(&m.Budget, nil, nil)
	return t.put(PrefixTeam+m.TeamID, SortMember+m.UserID, m.stored(), nil,
		fmt.Errorf("%w: user %s in team %s", ErrMemberExists, m.UserID, m.TeamID))
}

// UpdateMembership adds the change of a membership from old (as read) to new, moving it in
// the due_reset index with its budget_reset_at.
func (t *Tx) UpdateMembership(old, new *Membership) error {
	return t.update(PrefixTeam+old.TeamID, SortMember+old.UserID, old.stored(), new.stored())
}

// DeleteMembership adds the deletion of a membership item.
func (t *Tx) DeleteMembership(teamID, userID string) {
	t.del(PrefixTeam+teamID, SortMember+userID, "", nil, nil)
}

// Memberships returns the membership items of a team.
func (s *Store) Memberships(ctx context.Context, teamID string) ([]Membership, error) {
	items, err := s.partition(ctx, PrefixTeam+teamID, SortMember)
	if err != nil {
		return nil, fmt.Errorf("query memberships of team %s: %w", teamID, err)
	}
	var out []Membership
	if len(items) == 0 {
		return out, nil
	}
	if err := attributevalue.UnmarshalListOfMaps(items, &out); err != nil {
		return nil, fmt.Errorf("decode memberships of team %s: %w", teamID, err)
	}
	return out, nil
}

// ListTeams returns one page of teams and the number of teams (by_kind index).
func (s *Store) ListTeams(ctx context.Context, p Page) ([]Team, int, error) {
	var teams []Team
	n, err := s.query(ctx, schema.IndexByKind, "kind", KindTeam, SortPrefixTeam, p, &teams)
	if err != nil {
		return nil, 0, err
	}
	return teams, n, s.foldTeams(ctx, teams)
}
