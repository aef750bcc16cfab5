package nix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// skipped collects the reasons of skipped checks, printed by TestMain.
type skipLog struct {
	mu      sync.Mutex
	reasons []string
}

func (s *skipLog) add(name, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reasons = append(s.reasons, name+": "+why)
}

var skips skipLog

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if len(skips.reasons) > 0 {
		sort.Strings(skips.reasons)
		fmt.Println("nix checks skipped:")
		for _, r := range skips.reasons {
			fmt.Println("  skipped:", r)
		}
	}
	os.Exit(code)
}

// skip records why a check cannot run here and skips it.
func skip(t *testing.T, why string) {
	t.Helper()
	skips.add(t.Name(), why)
	t.Skip("skipped: " + why)
}

// repoRoot is the repository root (this package lives in tests/nix).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// needTool returns the path of a tool or skips (fails with
// ENTREPOT_REQUIRE_NIX=1 for the Nix tools).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if strings.HasPrefix(name, "nix") && os.Getenv("ENTREPOT_REQUIRE_NIX") == "1" {
		t.Fatalf("%s not found and ENTREPOT_REQUIRE_NIX=1 (apt-get install nix-bin)", name)
	}
	skip(t, name+" not found on PATH")
	return ""
}

// run runs a command with a deadline and returns stdout; stderr is
// returned in the error.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("run %s %s: %w\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// nixEnv keeps Nix off the network and enables the commands we use.
var nixEnv = []string{
	"NIX_CONFIG=experimental-features = nix-command flakes\nsubstituters =",
}

// evalJSON evaluates a Nix expression strictly (read-write mode, so
// builtins.toFile paths can be read back) and decodes its JSON into v.
func evalJSON(t *testing.T, expr string, v any, extraArgs ...string) error {
	t.Helper()
	ni := needTool(t, "nix-instantiate")
	args := append([]string{"--read-write-mode", "--eval", "--strict", "--json", "-E", expr}, extraArgs...)
	out, err := run(t, repoRoot(t), nixEnv, ni, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("decode nix output %q: %w", out, err)
	}
	return nil
}

// nixString quotes s as a Nix string literal.
func nixString(s string) string {
	b, _ := json.Marshal(s) // JSON string escapes are valid Nix escapes, except "${".
	return strings.ReplaceAll(string(b), "${", `\${`)
}

// canonJSON re-encodes a JSON-compatible value with sorted keys.
func canonJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	b, err = json.MarshalIndent(x, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}
