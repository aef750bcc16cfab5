package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// EnvBin names the environment variable that points at a prebuilt entrepot
// binary; when set, Build uses it instead of compiling.
const EnvBin = "ENTREPOT_BIN"

// MainPackage is the import path of the entrepot command.
const MainPackage = "github.com/entrepot/entrepot/cli/entrepot"

// ErrBuild reports that the entrepot binary could not be built.
var ErrBuild = errors.New("build entrepot")

// Builder builds the binary at most once and hands the same path to every
// caller. The zero value is ready to use.
type Builder struct {
	once sync.Once
	path string
	dir  string
	err  error
}

// Path returns the binary path, building it on the first call. The build is
// bounded by ctx (callers should give it a few minutes).
func (b *Builder) Path(ctx context.Context) (string, error) {
	b.once.Do(func() {
		if p := os.Getenv(EnvBin); p != "" {
			abs, err := filepath.Abs(p)
			if err != nil {
				b.err = fmt.Errorf("resolve %s=%q: %w", EnvBin, p, err)
				return
			}
			if st, err := os.Stat(abs); err != nil || st.IsDir() {
				b.err = fmt.Errorf("%w: %s=%q is not a file: %v", ErrBuild, EnvBin, p, err)
				return
			}
			b.path = abs
			return
		}
		b.path, b.dir, b.err = goBuild(ctx)
	})
	return b.path, b.err
}

// Cleanup removes a binary that Path built (never an ENTREPOT_BIN one).
func (b *Builder) Cleanup() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// ModuleRoot returns the directory holding the go.mod of the current module,
// found through `go env GOMOD` from the working directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("run go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("%w: not inside a Go module", ErrBuild)
	}
	return filepath.Dir(gomod), nil
}

func goBuild(ctx context.Context) (path, dir string, err error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "entrepot-bin-")
	if err != nil {
		return "", "", fmt.Errorf("make build dir: %w", err)
	}
	path = filepath.Join(dir, "entrepot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, MainPackage)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("%w: go build %s (%s): %v\n%s", ErrBuild, MainPackage, time.Since(start).Round(time.Millisecond), err, out)
	}
	return path, dir, nil
}
