package auth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestExtractKey(t *testing.T) {
	tests := []struct {
		name      string
		headers   map[string]string
		custom    string
		want      string
		malformed bool
	}{
		{"bearer authorization", map[string]string{"Authorization": "Bearer sk-a"}, "", "sk-a", false},
		{"lower-case bearer", map[string]string{"Authorization": "bearer sk-a"}, "", "sk-a", false},
		{"basic scheme", map[string]string{"Authorization": "Basic sk-a"}, "", "sk-a", false},
		{"other scheme is malformed", map[string]string{"Authorization": "Token sk-a"}, "", "", true},
		{"x-litellm-api-key wins over authorization", map[string]string{"x-litellm-api-key": "sk-l", "Authorization": "Bearer sk-a"}, "", "sk-l", false},
		{"authorization wins over api-key", map[string]string{"Authorization": "Bearer sk-a", "api-key": "sk-b"}, "", "sk-a", false},
		{"api-key (Azure)", map[string]string{"api-key": "sk-b"}, "", "sk-b", false},
		{"api-key wins over x-api-key", map[string]string{"api-key": "sk-b", "x-api-key": "sk-c"}, "", "sk-b", false},
		{"x-api-key (Anthropic)", map[string]string{"x-api-key": "sk-c"}, "", "sk-c", false},
		{"x-goog-api-key", map[string]string{"x-goog-api-key": "sk-g"}, "", "sk-g", false},
		{"Ocp-Apim-Subscription-Key", map[string]string{"Ocp-Apim-Subscription-Key": "sk-o"}, "", "sk-o", false},
		{"none", map[string]string{}, "", "", false},
		{"custom header only", map[string]string{"X-Gw-Key": "Bearer sk-x", "Authorization": "Bearer sk-a"}, "x-gw-key", "sk-x", false},
		{"custom header without bearer", map[string]string{"X-Gw-Key": "sk-x"}, "X-GW-KEY", "sk-x", false},
		{"custom header absent ignores the others", map[string]string{"Authorization": "Bearer sk-a"}, "x-gw-key", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			got, malformed := ExtractKey(h, tt.custom)
			if got != tt.want || malformed != tt.malformed {
				t.Errorf("ExtractKey = %q, %v; want %q, %v", got, malformed, tt.want, tt.malformed)
			}
		})
	}
}

func FuzzExtractKey(f *testing.F) {
	for _, s := range []string{"Bearer sk-abc", "bearer ", "Basic x", "Token y", "", "Bearer  sk-\x00"} {
		f.Add(s, "")
		f.Add(s, "x-custom")
	}
	f.Fuzz(func(t *testing.T, value, custom string) {
		h := http.Header{}
		h.Set("Authorization", value)
		if custom != "" && validHeaderName(custom) {
			h.Set(custom, value)
		} else {
			custom = ""
		}
		key, malformed := ExtractKey(h, custom)
		if malformed && key != "" {
			t.Fatalf("malformed with key %q", key)
		}
		if key != strings.TrimSpace(key) {
			t.Fatalf("key %q not trimmed", key)
		}
		if !strings.Contains(value, key) {
			t.Fatalf("key %q is not part of header %q", key, value)
		}
	})
}

func validHeaderName(s string) bool {
	return regexp.MustCompile(`^[A-Za-z0-9-]+$`).MatchString(s)
}

func TestNewKey_FormatAndUniqueness(t *testing.T) {
	re := regexp.MustCompile(`^sk-[A-Za-z0-9_-]{22,}$`)
	seen := map[string]bool{}
	for range 100 {
		k, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(k) {
			t.Fatalf("key %q does not match %s", k, re)
		}
		if seen[k] {
			t.Fatalf("duplicate key %q", k)
		}
		seen[k] = true
	}
}

func TestHashAndNames(t *testing.T) {
	// sha256("sk-1234"), as LiteLLM's hash_token computes it.
	const want = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
	if got := Hash("sk-1234"); got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
	if got := TokenOf("sk-1234"); got != want {
		t.Errorf("TokenOf(raw) = %s, want %s", got, want)
	}
	if got := TokenOf(want); got != want {
		t.Errorf("TokenOf(hash) = %s, want it unchanged", got)
	}
	if n := KeyName("sk-abcdefgh1234"); n != "sk-...1234" {
		t.Errorf("KeyName = %q, want sk-...1234", n)
	}
	if m := mask("abcd123456wxyz"); m != "abcd****wxyz" {
		t.Errorf("mask = %q, want abcd****wxyz", m)
	}
}

func TestEqualKeys_UsesConstantTimeCompare(t *testing.T) {
	// equalKeys must be subtle.ConstantTimeCompare: same answers, including for prefixes
	// and different lengths, where a naive early-exit compare would also be right.
	tests := []struct {
		a, b string
		want bool
	}{
		{"sk-1234", "sk-1234", true},
		{"sk-1234", "sk-1235", false},
		{"sk-123", "sk-1234", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := equalKeys(tt.a, tt.b); got != tt.want {
			t.Errorf("equalKeys(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestMasterKeyCompare_IsConstantTime checks the source: the master key is only ever
// compared through equalKeys (or tested for emptiness), and equalKeys is subtle.ConstantTimeCompare.
func TestMasterKeyCompare_IsConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	usesSubtle := false
	for _, f := range pkgs["auth"].Files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && !isEmptyString(n.X) && !isEmptyString(n.Y) {
					for _, side := range []ast.Expr{n.X, n.Y} {
						if sel, ok := side.(*ast.SelectorExpr); ok && sel.Sel.Name == "MasterKey" {
							t.Errorf("%s: master key compared with %s", fset.Position(n.Pos()), n.Op)
						}
					}
				}
			case *ast.FuncDecl:
				if n.Name.Name == "equalKeys" {
					ast.Inspect(n.Body, func(m ast.Node) bool {
						if sel, ok := m.(*ast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
							usesSubtle = true
						}
						return true
					})
				}
			}
			return true
		})
	}
	if !usesSubtle {
		t.Error("equalKeys does not call subtle.ConstantTimeCompare")
	}
}

func isEmptyString(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Value == `""`
}
