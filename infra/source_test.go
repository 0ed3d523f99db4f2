package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/app"
)

// The infra tests read some facts from the functions' source rather than restating them,
// so the stack cannot drift from the code it deploys.

// goSource parses the non-test Go files of dir, a directory of the root module.
func goSource(t *testing.T, dir string) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// spec returns the package-level declaration of name: a *ast.TypeSpec or *ast.ValueSpec.
func spec(t *testing.T, files []*ast.File, name string) ast.Spec {
	t.Helper()
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, sp := range gd.Specs {
				switch sp := sp.(type) {
				case *ast.TypeSpec:
					if sp.Name.Name == name {
						return sp
					}
				case *ast.ValueSpec:
					if slices.ContainsFunc(sp.Names, func(n *ast.Ident) bool { return n.Name == name }) {
						return sp
					}
				}
			}
		}
	}
	t.Fatalf("no package-level declaration of %s", name)
	return nil
}

// interfaceMethods returns the names of the methods interface name declares, sorted.
func interfaceMethods(t *testing.T, files []*ast.File, name string) []string {
	t.Helper()
	ts, ok := spec(t, files, name).(*ast.TypeSpec)
	if !ok {
		t.Fatalf("%s is not a type", name)
	}
	it, ok := ts.Type.(*ast.InterfaceType)
	if !ok {
		t.Fatalf("%s is not an interface", name)
	}
	var out []string
	for _, m := range it.Methods.List {
		if len(m.Names) == 0 {
			t.Fatalf("%s embeds %v; list its methods instead", name, m.Type)
		}
		for _, n := range m.Names {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}

// varStrings returns the elements of the string slice literal package-level var name holds.
func varStrings(t *testing.T, files []*ast.File, name string) []string {
	t.Helper()
	vs, ok := spec(t, files, name).(*ast.ValueSpec)
	if !ok {
		t.Fatalf("%s is not a var", name)
	}
	i := slices.IndexFunc(vs.Names, func(n *ast.Ident) bool { return n.Name == name })
	if i >= len(vs.Values) {
		t.Fatalf("%s has no value", name)
	}
	lit, ok := vs.Values[i].(*ast.CompositeLit)
	if !ok {
		t.Fatalf("%s is not a literal", name)
	}
	var out []string
	for _, e := range lit.Elts {
		out = append(out, stringLit(t, e))
	}
	return out
}

// stringLiterals returns the value of every string literal in files.
func stringLiterals(t *testing.T, files []*ast.File) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				out = append(out, stringLit(t, lit))
			}
			return true
		})
	}
	return out
}

func stringLit(t *testing.T, e ast.Expr) string {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		t.Fatalf("%T is not a string literal", e)
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyvaultActions are the Secrets Manager actions of the calls keyvault.API declares, the
// only way internal/keyvault reaches Secrets Manager.
func keyvaultActions(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range interfaceMethods(t, goSource(t, "internal/keyvault"), "API") {
		out = append(out, "secretsmanager:"+m)
	}
	return out
}

// firstSegments returns the distinct first path segments ("key" for "/key/{key}/x") of
// paths, sorted.
func firstSegments(paths []string) []string {
	var out []string
	for _, p := range paths {
		seg, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if !slices.Contains(out, seg) {
			out = append(out, seg)
		}
	}
	slices.Sort(out)
	return out
}

// The API sends AdminResources to the admin function and app.IsAdminPath sends
// adminPrefixes to the admin handler: both must be exactly the prefixes of the routes the
// admin handler registers, or a path is claimed that nothing serves (or served unreachably).
func TestAPI_AdminResourcesAreTheAdminHandlersRoutes(t *testing.T) {
	var routes []string
	for _, s := range stringLiterals(t, goSource(t, "internal/admin")) {
		// ServeMux patterns: "METHOD /path"
		method, path, ok := strings.Cut(s, " ")
		// The model routes share /model/ with the gateway's /model/info: the completions
		// function serves them (the root {proxy+}), through app's IsModelRoute.
		if ok && strings.HasPrefix(path, "/") && method == strings.ToUpper(method) && !app.IsModelRoute(path) &&
			slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, method) {
			routes = append(routes, path)
		}
	}
	served := firstSegments(routes)
	if len(served) == 0 {
		t.Fatal("found no route patterns in internal/admin")
	}
	if got := slices.Sorted(slices.Values(AdminResources)); !slices.Equal(got, served) {
		t.Errorf("AdminResources = %v, want the admin handler's route prefixes %v", got, served)
	}
	if got := firstSegments(varStrings(t, goSource(t, "internal/app"), "adminPrefixes")); !slices.Equal(got, served) {
		t.Errorf("app adminPrefixes cover %v, want the admin handler's route prefixes %v", got, served)
	}
}

// transactParts are the IAM actions that authorize each part of a TransactWriteItems call
// (a transaction has no action of its own).
var transactParts = map[string]string{
	"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
}

// storeTableActions are the DynamoDB actions of the calls internal/store makes, the only
// package that talks to DynamoDB: every <x>.db.<Op>(...) and dynamodb.New<Op>Paginator, with
// TransactWriteItems replaced by the actions of the parts it builds
// (types.TransactWriteItem{Put: ...}) and TransactGetItems by GetItem. EnsureTable's calls are left out: only the local
// server creates the table; in AWS the stack does.
func storeTableActions(t *testing.T) []string {
	t.Helper()
	var ops []string
	addOp := func(op string) {
		if op == "TransactGetItems" {
			op = "GetItem" // its gets are authorized as GetItem, as a transaction's parts are
		}
		if op != "TransactWriteItems" && !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	for _, f := range goSource(t, "internal/store") {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name == "EnsureTable" {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					if recv, ok := sel.X.(*ast.SelectorExpr); ok && recv.Sel.Name == "db" {
						addOp(sel.Sel.Name)
					}
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "dynamodb" {
						if op, ok := strings.CutPrefix(sel.Sel.Name, "New"); ok && strings.HasSuffix(op, "Paginator") {
							addOp(strings.TrimSuffix(op, "Paginator"))
						}
					}
				case *ast.CompositeLit:
					if typ, ok := n.Type.(*ast.SelectorExpr); ok && typ.Sel.Name == "TransactWriteItem" {
						for _, e := range n.Elts {
							if kv, ok := e.(*ast.KeyValueExpr); ok {
								part, ok := transactParts[kv.Key.(*ast.Ident).Name]
								if !ok {
									t.Fatalf("TransactWriteItem part %v has no IAM action here", kv.Key)
								}
								addOp(part)
							}
						}
					}
				}
				return true
			})
		}
	}
	if len(ops) < 3 {
		t.Fatalf("found only %v in internal/store", ops)
	}
	var out []string
	for _, op := range ops {
		out = append(out, "dynamodb:"+op)
	}
	slices.Sort(out)
	return out
}
