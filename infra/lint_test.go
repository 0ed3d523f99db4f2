package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestCfnLint_BothTemplatesAreClean(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not installed (pip install cfn-lint); the synthesized templates must be linted")
	}
	dir := t.TempDir()
	streaming := filepath.Join(dir, "streaming.template.json")
	b, err := json.Marshal(fullStack(t).tpl.raw())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(streaming, b, 0o644); err != nil {
		t.Fatal(err)
	}
	buffered := filepath.Join(localStack(t).outdir, "Llmgate.template.json")
	// W3005: CDK declares a function's DependsOn on its role next to the GetAtt of the role's
	// ARN; the duplicate is harmless and comes from the Function construct itself.
	out, err := exec.Command(bin, "--format", "parseable", "--ignore-checks", "W3005", "--", streaming, buffered).CombinedOutput()
	if err != nil {
		t.Errorf("cfn-lint: %v\n%s", err, out)
	}
}

// samconfig.toml and infra/sam-env.json must name what `make synth STREAMING=false` writes,
// and sam-env.json's master key must be the one events/ authenticate with, so that
// `sam local invoke CompletionsFunction -e events/chat.json` is not a 401.
func TestSamconfig_NamesTheSynthesizedTemplateAndFunctions(t *testing.T) {
	eventsKey := eventsMasterKey(t)
	b, err := os.ReadFile("../samconfig.toml")
	if err != nil {
		t.Fatal(err)
	}
	outdir := localStack(t).outdir
	var cdkJSON struct {
		Output string `json:"output"`
	}
	if err := readJSON("cdk.json", &cdkJSON); err != nil {
		t.Fatal(err)
	}
	assign := regexp.MustCompile(`(?m)^\s*(template_file|env_vars)\s*=\s*"([^"]+)"`)
	matches := assign.FindAllStringSubmatch(string(b), -1)
	var templates, envFiles int
	for _, m := range matches {
		switch m[1] {
		case "template_file":
			templates++
			// the path is relative to the repository root; cdk.json's output is relative to infra/
			rel, err := filepath.Rel(filepath.Join("infra", cdkJSON.Output), m[2])
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("template_file %s is not inside infra/%s, where make synth writes", m[2], cdkJSON.Output)
				continue
			}
			if _, err := os.Stat(filepath.Join(outdir, rel)); err != nil {
				t.Errorf("template_file %s: synth wrote no %s", m[2], rel)
			}
		case "env_vars":
			envFiles++
			var env map[string]map[string]string
			if err := readJSON(filepath.Join("..", m[2]), &env); err != nil {
				t.Fatalf("env_vars %s: %v", m[2], err)
			}
			tpl := localStack(t).tpl
			for id, vars := range env {
				fn, ok := tpl.Resources[id]
				if !ok || fn.Type != "AWS::Lambda::Function" {
					t.Errorf("env_vars %s names %s, not a function of the template", m[2], id)
					continue
				}
				if key, ok := vars["LITELLM_MASTER_KEY"]; ok && key != eventsKey {
					t.Errorf("env_vars %s sets %s.LITELLM_MASTER_KEY %q, but events/ authenticate with %q", m[2], id, key, eventsKey)
				}
				declared := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
				for k := range vars {
					if _, ok := declared[k]; !ok {
						t.Errorf("env_vars %s sets %s.%s, which the template does not declare (sam local ignores it)", m[2], id, k)
					}
				}
			}
		}
	}
	if templates < 2 || envFiles < 2 {
		t.Errorf("samconfig.toml sets template_file %d times and env_vars %d times, want both for local_start_api and local_invoke", templates, envFiles)
	}
}

// eventsMasterKey returns the one bearer key the sample events in events/ carry.
func eventsMasterKey(t *testing.T) string {
	t.Helper()
	paths, err := filepath.Glob("../events/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no events in ../events (%v)", err)
	}
	bearer := regexp.MustCompile(`Bearer (sk-[^"\s]+)`)
	var keys []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bearer.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(keys, m[1]) {
				keys = append(keys, m[1])
			}
		}
	}
	if len(keys) != 1 {
		t.Fatalf("events/ carry bearer keys %v, want one master key", keys)
	}
	return keys[0]
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
