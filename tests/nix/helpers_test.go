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
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// skipped collects the reasons of skipped checks, printed by TestMain.
type skipLog struct {
	mu      sync.Mutex
	reasons []string
}

// add records a reason once per top-level test (subtests and fuzz seeds
// that skip for the same reason are reported once).
func (s *skipLog) add(name, why string) {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	line := name + ": " + why
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.reasons, line) {
		s.reasons = append(s.reasons, line)
	}
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

// nixString quotes s as a Nix string literal. Nix strings hold any byte
// but NUL; only \\, ", "${" and the \n \r \t escapes need care.
func nixString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				b.WriteString(`\$`)
			} else {
				b.WriteByte(c)
			}
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
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

// startDevServer runs `entrepot server --dev` on loopback with its data in
// dataDir until the test ends, and waits (bounded) until its admin socket
// answers. It returns the socket path and the server's output.
func startDevServer(t *testing.T, bin, dataDir string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	srv := exec.CommandContext(ctx, bin, "server", "--dev", "--data-dir", dataDir,
		"--s3-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	log := &syncBuffer{}
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		cancel()
		t.Fatalf("start dev server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
		cancel()
	})
	sock := filepath.Join(dataDir, "admin.sock")
	var err error
	for i := 0; i < 200; i++ {
		if _, err = run(t, dataDir, nil, bin, "--admin-socket", sock, "status"); err == nil {
			return sock, log
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dev server did not answer within 20s: %v\nserver log:\n%s", err, log.String())
	return "", nil
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lookPath is exec.LookPath (a seam kept small for readability).
func lookPath(name string) (string, error) { return exec.LookPath(name) }
