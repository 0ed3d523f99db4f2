package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// template is a synthesized CloudFormation template, decoded.
type template struct {
	source    any
	Resources map[string]resource `json:"Resources"`
	Outputs   map[string]struct {
		Value any `json:"Value"`
	} `json:"Outputs"`
}

type resource struct {
	Type                string         `json:"Type"`
	Properties          map[string]any `json:"Properties"`
	DeletionPolicy      string         `json:"DeletionPolicy"`
	UpdateReplacePolicy string         `json:"UpdateReplacePolicy"`
}

func toTemplate(v any) template {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var t template
	if err := json.Unmarshal(b, &t); err != nil {
		panic(err)
	}
	t.source = v
	return t
}

// raw returns the template as synthesized.
func (t template) raw() any { return t.source }

// ofType returns the logical IDs of resources of type typ, sorted.
func (t template) ofType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// one returns the only resource of type typ whose logical ID starts with prefix.
func (t template) one(tb testing.TB, typ, prefix string) (string, resource) {
	tb.Helper()
	var found []string
	for _, id := range t.ofType(typ) {
		if strings.HasPrefix(id, prefix) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("%s resources starting with %q: %v, want exactly one", typ, prefix, found)
	}
	return found[0], t.Resources[found[0]]
}

// path returns the API resource path ("/key/{proxy+}") of an AWS::ApiGateway::Resource id,
// or "/" for the root (a GetAtt of the RestApi's RootResourceId).
func (t template) path(id any) string {
	ref, ok := id.(map[string]any)["Ref"].(string)
	if !ok {
		return ""
	}
	r := t.Resources[ref]
	parent := t.path(r.Properties["ParentId"])
	return strings.TrimSuffix(parent, "/") + "/" + r.Properties["PathPart"].(string)
}

// ref returns the logical ID a {"Ref": id} or {"Fn::GetAtt": [id, attr]} points at.
func ref(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	if r, ok := m["Ref"].(string); ok {
		return r
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok {
		return ga[0].(string)
	}
	return ""
}

// render flattens a CloudFormation value to a string: Fn::Join pieces joined, Refs and
// GetAtts as ${id} or ${id.attr}. It lets tests compare ARNs built from intrinsics.
func render(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if r, ok := v["Ref"].(string); ok {
			return "${" + r + "}"
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("${%s.%s}", ga[0], ga[1])
		}
		if j, ok := v["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, render(p))
			}
			return strings.Join(parts, j[0].(string))
		}
		if s, ok := v["Fn::Sub"].(string); ok {
			return s
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// list returns v as a slice (a single value becomes a one-element slice).
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, render(x))
	}
	return out
}
