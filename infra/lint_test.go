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

// makeVar returns the value of `NAME := value` in the repository's Makefile.
func makeVar(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `\s*:?=\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("Makefile sets no %s", name)
	}
	return string(m[1])
}

// samconfig.toml and infra/sam-env.json must name what `make synth-sam` writes, in a folder
// of its own (make synth writes cdk.out, and would replace a buffered template there);
// sam-env.json must reach the DynamoDB Local and table `make sam-table` creates, through a
// host name the containers resolve on Linux too; and its master key must be the one events/
// authenticate with, so that `sam local invoke CompletionsFunction -e events/chat.json` is
// not a 401.
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
	samOut := makeVar(t, "SAM_OUT")
	if filepath.Clean(samOut) == filepath.Clean(cdkJSON.Output) {
		t.Errorf("synth-sam writes %s, where make synth writes too", samOut)
	}
	wantEndpoint := "http://host.docker.internal:" + makeVar(t, "SAM_DYNAMODB_PORT")
	wantTable := makeVar(t, "SAM_TABLE")
	var sections []string
	section := regexp.MustCompile(`(?m)^\[default\.(local_\w+)\.parameters\]\s*$`)
	bodies := section.Split(string(b), -1)[1:]
	for _, m := range section.FindAllStringSubmatch(string(b), -1) {
		sections = append(sections, m[1])
	}
	if !slices.Equal(sections, []string{"local_start_api", "local_invoke"}) {
		t.Fatalf("samconfig.toml sections %v, want local_start_api and local_invoke", sections)
	}
	assign := regexp.MustCompile(`(?m)^\s*(\w+)\s*=\s*(.+?)\s*$`)
	for i, body := range bodies {
		set := map[string]string{}
		for _, m := range assign.FindAllStringSubmatch(body, -1) {
			set[m[1]] = m[2]
		}
		tplFile, envFile := strings.Trim(set["template_file"], `"`), strings.Trim(set["env_vars"], `"`)
		// the path is relative to the repository root; SAM_OUT is relative to infra/
		rel, err := filepath.Rel(filepath.Join("infra", samOut), tplFile)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s: template_file %q is not inside infra/%s, where make synth-sam writes", sections[i], tplFile, samOut)
		} else if _, err := os.Stat(filepath.Join(outdir, rel)); err != nil {
			t.Errorf("%s: template_file %s: synth wrote no %s", sections[i], tplFile, rel)
		}
		if set["add_host"] != `["host.docker.internal:host-gateway"]` {
			t.Errorf("%s: add_host = %s, want host.docker.internal mapped to the host (Docker on Linux does not resolve it otherwise)", sections[i], set["add_host"])
		}
		var env map[string]map[string]string
		if err := readJSON(filepath.Join("..", envFile), &env); err != nil {
			t.Fatalf("%s: env_vars %q: %v", sections[i], envFile, err)
		}
		tpl := localStack(t).tpl
		for id, vars := range env {
			fn, ok := tpl.Resources[id]
			if !ok || fn.Type != "AWS::Lambda::Function" {
				t.Errorf("env_vars %s names %s, not a function of the template", envFile, id)
				continue
			}
			if key, ok := vars["LITELLM_MASTER_KEY"]; ok && key != eventsKey {
				t.Errorf("env_vars %s sets %s.LITELLM_MASTER_KEY %q, but events/ authenticate with %q", envFile, id, key, eventsKey)
			}
			if vars["LLMGATE_DYNAMODB_ENDPOINT"] != wantEndpoint || vars["LLMGATE_TABLE"] != wantTable {
				t.Errorf("env_vars %s: %s reaches %s table %s, want make sam-table's %s table %s", envFile, id,
					vars["LLMGATE_DYNAMODB_ENDPOINT"], vars["LLMGATE_TABLE"], wantEndpoint, wantTable)
			}
			declared := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
			for k := range vars {
				if _, ok := declared[k]; !ok {
					t.Errorf("env_vars %s sets %s.%s, which the template does not declare (sam local ignores it)", envFile, id, k)
				}
			}
		}
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
