package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/store"
)

func membership(team string, i int) *store.Membership {
	return &store.Membership{TeamID: team, UserID: "u" + fmtInt(i)}
}

func TestTx_OverLimitRefusedBeforeWriting(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	tx := s.Tx()
	for i := range store.MaxTxItems + 1 {
		if err := tx.PutMembership(membership("t", i)); err != nil {
			t.Fatal(err)
		}
	}
	err := tx.Commit(t.Context())
	var large *store.TooLargeError
	if !errors.Is(err, store.ErrTooLarge) || !errors.As(err, &large) || large.Writes != store.MaxTxItems+1 {
		t.Fatalf("Commit of %d writes: %v", store.MaxTxItems+1, err)
	}
	if ms, _ := s.Memberships(t.Context(), "t"); len(ms) != 0 {
		t.Errorf("a refused transaction wrote %d items", len(ms))
	}
}

func TestBatch_PacksGroupsIntoTransactions(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	ctx := t.Context()
	b := s.Batch()
	for i := range 130 {
		g := s.Tx()
		if err := g.PutMembership(membership("t", i)); err != nil {
			t.Fatal(err)
		}
		b.Add(g)
	}
	b.Add(s.Tx()) // empty groups are dropped
	if b.Len() != 130 {
		t.Errorf("Len = %d, want 130", b.Len())
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.Memberships(ctx, "t"); len(ms) != 130 {
		t.Errorf("%d memberships written, want 130", len(ms))
	}

	// A group that cannot fit one transaction fails the batch before any write.
	b = s.Batch()
	first := s.Tx()
	if err := first.PutMembership(membership("t2", 0)); err != nil {
		t.Fatal(err)
	}
	b.Add(first)
	big := s.Tx()
	for i := 1; i <= store.MaxTxItems+1; i++ {
		if err := big.PutMembership(membership("t2", i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Add(big)
	if err := b.Commit(ctx); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("batch with a group over the limit: %v", err)
	}
	if ms, _ := s.Memberships(ctx, "t2"); len(ms) != 0 {
		t.Errorf("a refused batch wrote %d items", len(ms))
	}
}

func TestDeleteTeam_RefusesATeamChangedSinceRead(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	ctx := t.Context()
	now := time.Now().UTC()
	team := &store.Team{TeamID: "t", Admins: []string{}, Members: []string{}, MembersWithRoles: []store.Member{}, Models: []string{}}
	team.CreatedAt, team.UpdatedAt = now, now
	tx := s.Tx()
	if err := tx.PutTeam(team); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	read, err := s.GetTeam(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	changed, _ := store.Clone(read)
	changed.MembersWithRoles = append(changed.MembersWithRoles, store.Member{Role: "user"})
	changed.UpdatedAt = now.Add(time.Second)
	tx = s.Tx()
	if err := tx.UpdateTeam(read, changed); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	tx = s.Tx()
	if err := tx.DeleteTeam(read); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete of a team changed since read: %v, want ErrConflict", err)
	}
	fresh, _ := s.GetTeam(ctx, "t")
	tx = s.Tx()
	if err := tx.DeleteTeam(fresh); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("delete of the team as read: %v", err)
	}
	if _, err := s.GetTeam(ctx, "t"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("team still there: %v", err)
	}
}

func TestUpdateMembership_MovesItInTheResetIndex(t *testing.T) {
	t.Parallel()
	s := store.NewWithClient(dynamotest.NewTable(t))
	ctx := t.Context()
	now := time.Now().UTC()
	m := membership("t", 1)
	tx := s.Tx()
	if err := tx.PutMembership(m); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	due := func() int {
		refs, _, err := s.DueResets(ctx, now.Add(48*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(refs)
	}
	if n := due(); n != 0 {
		t.Fatalf("membership without a duration is due: %d", n)
	}
	read, _ := s.Memberships(ctx, "t")
	next := read[0]
	at := now.Add(24 * time.Hour)
	next.BudgetDuration, next.BudgetResetAt = "1d", &at
	tx = s.Tx()
	if err := tx.UpdateMembership(&read[0], &next); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := due(); n != 1 {
		t.Errorf("membership with a reset is not due: %d", n)
	}
}
