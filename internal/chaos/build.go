package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RepoRoot finds the repository's root (the directory of Tayori's go.mod)
// from dir upwards.
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/tayori-news/tayori\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Tayori go.mod in %s or above: run from the repository or give -repo", dir)
		}
	}
}

// Build builds cmd/tayori of the repository at repo into dir and returns
// the binary's path.
func Build(ctx context.Context, repo, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("go is not on PATH: build tayori with make build and give it with -tayori")
	}
	out := filepath.Join(dir, "tayori")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/tayori")
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tayori: %w\n%s", err, b)
	}
	return out, nil
}
