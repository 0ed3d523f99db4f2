package store

import "context"

// GetMembership reads a user's membership in a team (pk TEAM#<team_id>, sk MEMBER#<user_id>).
// ErrNotFound if there is none.
func (s *Store) GetMembership(ctx context.Context, teamID, userID string) (*Membership, error) {
	var m Membership
	if err := s.get(ctx, PrefixTeam+teamID, SortMember+userID, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
