package admin

// Row is a route's row of the permission table, for the table-driven tests.
type Row struct {
	Pattern            string
	Roles, All         []string
	Owner, KeyUser     bool
	TeamAdmin, Members bool
	OrgAdmin           bool
	Member             string
}

// Permissions returns the permission table.
func Permissions() []Row {
	out := make([]Row, 0, len(routes))
	for _, rt := range routes {
		out = append(out, Row{
			Pattern: rt.pattern, Roles: rt.roles, All: rt.all,
			Owner: rt.grants&grantOwner != 0, KeyUser: rt.grants&grantKeyUser != 0,
			TeamAdmin: rt.grants&grantTeamAdmin != 0, Members: rt.grants&grantTeamMember != 0,
			OrgAdmin: rt.grants&grantOrgAdmin != 0, Member: rt.member,
		})
	}
	return out
}

// RightsFields are the fields of the rights table, and whether each bounds a new key.
func RightsFields() map[string]bool {
	out := map[string]bool{}
	for _, row := range rightsTable {
		out[row.field] = row.ceiling
	}
	return out
}

// TeamMemberPermissions are the values team_member_permissions may hold.
var TeamMemberPermissions = teamMemberPermissions
