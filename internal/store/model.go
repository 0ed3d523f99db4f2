package store

import "time"

// Item key prefixes (pk) and sort keys (sk) of the state table.
const (
	PrefixKey   = "KEY#"   // KEY#<sha256 hex>, sk "KEY": a virtual key, or a rotated-out hash pointing to its successor
	PrefixUser  = "USER#"  // USER#<user_id>, sk "USER"
	PrefixTeam  = "TEAM#"  // TEAM#<team_id>, sk "TEAM"; members: sk "MEMBER#<user_id>"
	PrefixAlias = "ALIAS#" // ALIAS#<key_alias>, sk "ALIAS": uniqueness of key_alias
	SortKey     = "KEY"
	SortUser    = "USER"
	SortTeam    = "TEAM"
	SortAlias   = "ALIAS"
	SortMember  = "MEMBER#"
	SortEscrow  = "TEAM#E" // TEAM#<team_id>, sk "TEAM#E<n>": an escrow shard of the team's budget
	// SortKeyEscrow: KEY#<hash>, sk "KEY#E<n>": an escrow shard of the key's budget.
	SortKeyEscrow = "KEY#E"
)

// Kinds (the "kind" attribute, partition key of the by_kind index).
const (
	KindKey  = "KEY"
	KindUser = "USER"
	KindTeam = "TEAM"
)

// Budget is a spend limit whose headroom lives on the item, so one conditional write can
// reserve against it: reserving c does SET spend = spend + c, remaining = remaining - c
// under remaining >= c. Spend includes reservations not yet settled; settling adds
// (actual - reserved) to both. Remaining is nil when MaxBudget is nil (unlimited). Reserved
// (and each window's and model budget's) sums the reservations in flight: a budget reset
// sets spend = reserved, so a call reserved before the reset and settled after it counts in
// the new period and spend never goes negative.
type Budget struct {
	MaxBudget      *float64   `dynamodbav:"max_budget" json:"max_budget"`
	Spend          float64    `dynamodbav:"spend" json:"spend"`
	Remaining      *float64   `dynamodbav:"remaining,omitempty" json:"-"`
	Reserved       float64    `dynamodbav:"reserved,omitempty" json:"-"` // held by calls in flight (part of Spend)
	SoftBudget     *float64   `dynamodbav:"soft_budget,omitempty" json:"soft_budget"`
	BudgetDuration string     `dynamodbav:"budget_duration,omitempty" json:"budget_duration"`
	BudgetResetAt  *time.Time `dynamodbav:"budget_reset_at,omitempty" json:"budget_reset_at"`
}

// BudgetWindow is one entry of budget_limits: several windows can bind at once.
type BudgetWindow struct {
	BudgetDuration string     `dynamodbav:"budget_duration" json:"budget_duration"`
	MaxBudget      float64    `dynamodbav:"max_budget" json:"max_budget"`
	Spend          float64    `dynamodbav:"spend" json:"spend"`
	Remaining      float64    `dynamodbav:"remaining" json:"-"`
	Reserved       float64    `dynamodbav:"reserved" json:"-"` // held by calls in flight (part of Spend)
	ResetAt        *time.Time `dynamodbav:"reset_at,omitempty" json:"reset_at,omitempty"`
}

// ModelBudget is one model_max_budget entry: {"gpt-4o": {"budget_limit": 0.5, "time_period": "30d"}}.
type ModelBudget struct {
	BudgetLimit float64    `dynamodbav:"budget_limit" json:"budget_limit"`
	TimePeriod  string     `dynamodbav:"time_period,omitempty" json:"time_period,omitempty"`
	Spend       float64    `dynamodbav:"spend" json:"-"`
	Remaining   float64    `dynamodbav:"remaining" json:"-"`
	Reserved    float64    `dynamodbav:"reserved" json:"-"` // held by calls in flight (part of Spend)
	ResetAt     *time.Time `dynamodbav:"reset_at,omitempty" json:"-"`
}

// Limits are rate limits shared by keys, users and teams.
type Limits struct {
	TPMLimit            *int64           `dynamodbav:"tpm_limit,omitempty" json:"tpm_limit"`
	RPMLimit            *int64           `dynamodbav:"rpm_limit,omitempty" json:"rpm_limit"`
	MaxParallelRequests *int64           `dynamodbav:"max_parallel_requests,omitempty" json:"max_parallel_requests"`
	ModelRPMLimit       map[string]int64 `dynamodbav:"model_rpm_limit,omitempty" json:"model_rpm_limit"`
	ModelTPMLimit       map[string]int64 `dynamodbav:"model_tpm_limit,omitempty" json:"model_tpm_limit"`
	// Inflight counts parallel-request leases held now (bounded by MaxParallelRequests).
	Inflight int64 `dynamodbav:"inflight" json:"-"`
}

// Index attributes: present only while the item belongs in that sparse index.
type Index struct {
	Kind        string `dynamodbav:"kind,omitempty" json:"-"`
	GSIUser     string `dynamodbav:"gsi_user,omitempty" json:"-"`
	GSITeam     string `dynamodbav:"gsi_team,omitempty" json:"-"`
	GSISort     string `dynamodbav:"gsi_sort,omitempty" json:"-"`
	ResetShard  string `dynamodbav:"reset_shard,omitempty" json:"-"`
	ResetAt     int64  `dynamodbav:"reset_at,omitempty" json:"-"` // unix seconds: earliest reset due on the item
	RotateShard string `dynamodbav:"rotate_shard,omitempty" json:"-"`
	RotateAt    int64  `dynamodbav:"rotate_at,omitempty" json:"-"`
	ExpireShard string `dynamodbav:"expire_shard,omitempty" json:"-"`
	ExpireAt    int64  `dynamodbav:"expire_at,omitempty" json:"-"`
	TTL         int64  `dynamodbav:"ttl,omitempty" json:"-"`
}

// Audit are the created/updated fields LiteLLM returns.
type Audit struct {
	CreatedAt time.Time `dynamodbav:"created_at" json:"created_at"`
	CreatedBy string    `dynamodbav:"created_by,omitempty" json:"created_by"`
	UpdatedAt time.Time `dynamodbav:"updated_at" json:"updated_at"`
	UpdatedBy string    `dynamodbav:"updated_by,omitempty" json:"updated_by"`
}

// Key is a virtual key record (pk KEY#<hash>, sk KEY), with LiteLLM's key fields. The raw key
// is never stored: Token is the SHA-256 hex of the full key.
type Key struct {
	Token            string            `dynamodbav:"token" json:"token"`
	KeyName          string            `dynamodbav:"key_name" json:"key_name"`
	KeyAlias         *string           `dynamodbav:"key_alias,omitempty" json:"key_alias"`
	UserID           *string           `dynamodbav:"user_id,omitempty" json:"user_id"`
	TeamID           *string           `dynamodbav:"team_id,omitempty" json:"team_id"`
	Models           []string          `dynamodbav:"models" json:"models"`
	Aliases          map[string]string `dynamodbav:"aliases" json:"aliases"`
	Metadata         map[string]any    `dynamodbav:"metadata" json:"metadata"`
	Tags             []string          `dynamodbav:"tags,omitempty" json:"tags"`
	Blocked          bool              `dynamodbav:"blocked" json:"blocked"`
	Expires          *time.Time        `dynamodbav:"expires,omitempty" json:"expires"`
	ExpiresAt        int64             `dynamodbav:"expires_at,omitempty" json:"-"` // unix seconds, for conditions
	Duration         *string           `dynamodbav:"duration,omitempty" json:"-"`
	AutoRotate       bool              `dynamodbav:"auto_rotate" json:"auto_rotate"`
	RotationInterval *string           `dynamodbav:"rotation_interval,omitempty" json:"rotation_interval"`
	KeyRotationAt    *time.Time        `dynamodbav:"key_rotation_at,omitempty" json:"key_rotation_at"`
	LastRotationAt   *time.Time        `dynamodbav:"last_rotation_at,omitempty" json:"last_rotation_at"`
	RotationCount    int               `dynamodbav:"rotation_count" json:"rotation_count"`
	// RevokeAt is set on a rotated-out hash: the item then only points to ActiveToken until
	// RevokeAt (the grace period), and TTL removes it after.
	ActiveToken    string                 `dynamodbav:"active_token,omitempty" json:"-"`
	RevokeAt       *time.Time             `dynamodbav:"revoke_at,omitempty" json:"-"`
	BudgetLimits   []BudgetWindow         `dynamodbav:"budget_limits,omitempty" json:"budget_limits"`
	ModelMaxBudget map[string]ModelBudget `dynamodbav:"model_max_budget,omitempty" json:"model_max_budget"`
	ModelSpend     map[string]float64     `dynamodbav:"model_spend,omitempty" json:"model_spend"`
	BudgetID       *string                `dynamodbav:"budget_id,omitempty" json:"budget_id"` // the budget tier whose limits it took
	// EscrowShards is how many escrow shards calls spread the key's budget over (see
	// escrow.go); 0 or 1: none, calls charge the key record.
	EscrowShards int `dynamodbav:"escrow_shards,omitempty" json:"-"`
	Budget
	Limits
	Audit
	Index
}

// User is a user record (pk USER#<user_id>, sk USER).
type User struct {
	UserID         string                 `dynamodbav:"user_id" json:"user_id"`
	UserEmail      *string                `dynamodbav:"user_email,omitempty" json:"user_email"`
	UserAlias      *string                `dynamodbav:"user_alias,omitempty" json:"user_alias"`
	UserRole       string                 `dynamodbav:"user_role" json:"user_role"`
	Models         []string               `dynamodbav:"models" json:"models"`
	Teams          []string               `dynamodbav:"teams" json:"teams"`
	Metadata       map[string]any         `dynamodbav:"metadata" json:"metadata"`
	ModelMaxBudget map[string]ModelBudget `dynamodbav:"model_max_budget,omitempty" json:"model_max_budget"`
	ModelSpend     map[string]float64     `dynamodbav:"model_spend,omitempty" json:"model_spend"`
	Budget
	Limits
	Audit
	Index
}

// Team is a team record (pk TEAM#<team_id>, sk TEAM).
type Team struct {
	TeamID           string            `dynamodbav:"team_id" json:"team_id"`
	TeamAlias        *string           `dynamodbav:"team_alias,omitempty" json:"team_alias"`
	OrganizationID   *string           `dynamodbav:"organization_id,omitempty" json:"organization_id"`
	Admins           []string          `dynamodbav:"admins" json:"admins"`
	Members          []string          `dynamodbav:"members" json:"members"`
	MembersWithRoles []Member          `dynamodbav:"members_with_roles" json:"members_with_roles"`
	Models           []string          `dynamodbav:"models" json:"models"`
	ModelAliases     map[string]string `dynamodbav:"model_aliases,omitempty" json:"model_aliases"`
	Metadata         map[string]any    `dynamodbav:"metadata" json:"metadata"`
	Tags             []string          `dynamodbav:"tags,omitempty" json:"tags"`
	Blocked          bool              `dynamodbav:"blocked" json:"blocked"`
	BudgetLimits     []BudgetWindow    `dynamodbav:"budget_limits,omitempty" json:"budget_limits"`
	// TeamMemberPermissions are the key routes plain members may call on the team's keys.
	TeamMemberPermissions []string `dynamodbav:"team_member_permissions,omitempty" json:"team_member_permissions"`
	TeamMemberBudget      *float64 `dynamodbav:"team_member_budget,omitempty" json:"team_member_budget"`
	TeamMemberRPM         *int64   `dynamodbav:"team_member_rpm_limit,omitempty" json:"team_member_rpm_limit"`
	TeamMemberTPM         *int64   `dynamodbav:"team_member_tpm_limit,omitempty" json:"team_member_tpm_limit"`
	TeamMemberKeyDur      *string  `dynamodbav:"team_member_key_duration,omitempty" json:"team_member_key_duration"`
	// TeamMemberBudgetDur is the budget_duration of the memberships the team creates.
	TeamMemberBudgetDur *string `dynamodbav:"team_member_budget_duration,omitempty" json:"team_member_budget_duration"`
	// ModelSpend is the team's spend per model group, as the ledger adds it up.
	ModelSpend map[string]float64 `dynamodbav:"model_spend,omitempty" json:"model_spend"`
	// EscrowShards is how many escrow shards calls spread the team's budget over (see
	// escrow.go); 0 or 1: none, calls charge the team record.
	EscrowShards int `dynamodbav:"escrow_shards,omitempty" json:"-"`
	Budget
	Limits
	Audit
	Index
}

// Member is a team member with its role ("admin" or "user").
type Member struct {
	UserID    *string `dynamodbav:"user_id,omitempty" json:"user_id"`
	UserEmail *string `dynamodbav:"user_email,omitempty" json:"user_email"`
	Role      string  `dynamodbav:"role" json:"role"`
}

// Membership is a user's budget inside a team (pk TEAM#<team_id>, sk MEMBER#<user_id>),
// present when the team sets a per-member budget.
type Membership struct {
	TeamID string `dynamodbav:"team_id" json:"team_id"`
	UserID string `dynamodbav:"user_id" json:"user_id"`
	Budget
}
