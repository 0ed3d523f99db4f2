package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// lambdaResult is what the Lambda build weighs.
type lambdaResult struct {
	// Missing says why there are no figures (no build target yet).
	Missing   string           `json:"missing,omitempty"`
	Functions []lambdaFunction `json:"functions,omitempty"`
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
	return r, nil
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
		parts = append(parts, fmt.Sprintf("%s bootstrap %.1f MiB, zip %.1f MiB", f.Name, mib(f.Bootstrap), mib(f.Zip)))
	}
	fmt.Fprintf(w, "Lambda: %s\n", strings.Join(parts, "; "))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
