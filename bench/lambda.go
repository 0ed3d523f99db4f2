package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// lambdaResult is what the Lambda build weighs.
type lambdaResult struct {
	// Missing says why there are no figures (no build target yet).
	Missing   string           `json:"missing,omitempty"`
	Functions []lambdaFunction `json:"functions,omitempty"`
	// InitMS and FirstInvokeMS are each function's init duration and first invoke's duration
	// under aws-lambda-rie, as the functions package's emulator test reports them (a build
	// for this machine's architecture, not arm64; the invoke's DynamoDB calls go to
	// DynamoDB Local).
	InitMS        map[string]float64 `json:"rie_init_ms,omitempty"`
	FirstInvokeMS map[string]float64 `json:"rie_first_invoke_ms,omitempty"`
}

// lambdaFunction is one function's build output.
type lambdaFunction struct {
	Name      string `json:"name"`
	Bootstrap int64  `json:"bootstrap_bytes"`
	Zip       int64  `json:"zip_bytes"`
}

// measureLambda runs `make build` and reports the size of each bootstrap and its zip under
// dist/. A tree without a build target gets a result that says so.
func measureLambda(ctx context.Context, root, tmp string) (*lambdaResult, error) {
	probe := exec.CommandContext(ctx, "make", "-n", "build")
	probe.Dir = root
	if probe.Run() != nil {
		return &lambdaResult{Missing: "the Makefile has no build target"}, nil
	}
	build := exec.CommandContext(ctx, "make", "build")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make build: %w\n%s", err, out)
	}
	bootstraps, _ := filepath.Glob(filepath.Join(root, "dist", "*", "bootstrap"))
	if len(bootstraps) == 0 {
		return nil, fmt.Errorf("make build left no dist/<function>/bootstrap")
	}
	r := &lambdaResult{}
	for _, b := range bootstraps {
		dir := filepath.Dir(b)
		f := lambdaFunction{Name: filepath.Base(dir), Bootstrap: size(b)}
		if zips, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), f.Name+"*.zip")); len(zips) > 0 {
			f.Zip = size(zips[0])
		}
		r.Functions = append(r.Functions, f)
	}
	var err error
	r.InitMS, r.FirstInvokeMS, err = rieTimes(ctx, root)
	return r, err
}

// timesLine is what the functions package's emulator test logs for each cold start.
var timesLine = regexp.MustCompile(`(\w+): init ([0-9.]+) ms, first invoke ([0-9.]+) ms`)

// rieTimes runs the functions package's test of the bootstraps under aws-lambda-rie and
// collects the init and first-invoke durations it logs (the first per function).
func rieTimes(ctx context.Context, root string) (init, invoke map[string]float64, err error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "TestBootstrapsUnderTheRuntimeInterfaceEmulator", "./functions/")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("go test ./functions/ (aws-lambda-rie): %w\n%s", err, out)
	}
	init, invoke = map[string]float64{}, map[string]float64{}
	for _, m := range timesLine.FindAllStringSubmatch(string(out), -1) {
		if _, seen := init[m[1]]; !seen {
			init[m[1]], _ = strconv.ParseFloat(m[2], 64)
			invoke[m[1]], _ = strconv.ParseFloat(m[3], 64)
		}
	}
	if len(init) == 0 {
		return nil, nil, fmt.Errorf("the emulator test logged no init duration:\n%s", out)
	}
	return init, invoke, nil
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func printLambda(w io.Writer, l *lambdaResult) {
	if l.Missing != "" {
		fmt.Fprintf(w, "Lambda: no figures: %s\n", l.Missing)
		return
	}
	var parts []string
	for _, f := range l.Functions {
		p := fmt.Sprintf("%s bootstrap %.1f MiB, zip %.1f MiB", f.Name, mib(f.Bootstrap), mib(f.Zip))
		if ms, ok := l.InitMS[f.Name]; ok {
			p += fmt.Sprintf(", init %.0f ms, first invoke %.0f ms under aws-lambda-rie", ms, l.FirstInvokeMS[f.Name])
		}
		parts = append(parts, p)
	}
	fmt.Fprintf(w, "Lambda (linux/arm64 builds; init measured on a build for this machine):\n  %s\n", strings.Join(parts, "\n  "))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
