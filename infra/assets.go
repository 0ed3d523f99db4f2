package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
)

// assetFolders are the folders `make build` writes in the asset directory, by function.
var assetFolders = map[string]string{
	CompletionsFunctionID: "completions",
	AdminFunctionID:       "admin",
	RotatorFunctionID:     "rotator",
}

// checkAssets makes sure the stack deploys what it was built from: each function's folder
// holds a linux/arm64 bootstrap (the functions run on arm64) and a config.yaml identical to
// the one the stack read, since the secrets and the Bedrock grants come from that one.
func checkAssets(assetDir, configPath string) error {
	want, err := os.ReadFile(configPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	for _, id := range sortedKeys(assetFolders) {
		dir := filepath.Join(assetDir, assetFolders[id])
		if err := checkBootstrap(filepath.Join(dir, "bootstrap")); err != nil {
			return fmt.Errorf("%w (run make build)", err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
		if err != nil {
			return fmt.Errorf("%s: %w (run make build)", id, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s/config.yaml differs from %s, the config the stack reads: build and synthesize with the same CONFIG (make deploy CONFIG=...)", dir, configPath)
		}
	}
	return nil
}

// checkBootstrap fails unless path is a 64-bit ELF executable for arm64.
func checkBootstrap(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("%s is built for %v, want arm64 (GOARCH=arm64, as make build does)", path, f.Machine)
	}
	return nil
}
