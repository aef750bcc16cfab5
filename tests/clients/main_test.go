package clients

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/harness"
)

var cluster *harness.DevCluster

func TestMain(m *testing.M) {
	os.Exit(harness.RunWithDev(m, &cluster))
}

const mib = 1 << 20

// requireTool skips (or, under CI, fails) when path is not installed.
func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not installed; run tests/install-deps.sh as root", path)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so a missing client is a failure)", msg)
	}
	t.Skip(msg)
}

// clientEnv returns a clean environment with HOME in a fresh directory.
func clientEnv(t *testing.T) *harness.ClientEnv {
	t.Helper()
	e, err := harness.NewClientEnv(filepath.Join(t.TempDir(), "home"), cluster.Credentials(), cluster.Node(0).Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run executes a tool with env in dir, bounded by timeout, and returns its
// stdout; on failure it fails t with the command line and all output.
func run(t *testing.T, env []string, dir string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(env, dir, timeout, name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

func tryRun(env []string, dir string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v after %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err,
			time.Since(start).Round(time.Millisecond), harness.Tail(stdout.Bytes(), 40), harness.Tail(stderr.Bytes(), 40))
	}
	return stdout.String(), nil
}

// writeFile writes n deterministic pseudo-random bytes to path.
func writeFile(t *testing.T, path string, n int, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 0xc11e))
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(buf))
		for i := 0; i < k; i += 8 {
			v := r.Uint64()
			for j := 0; j < 8 && i+j < k; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// makeTree writes a small tree of files of mixed sizes (empty, inline,
// several blocks) with nested directories and awkward names.
func makeTree(t *testing.T, root string) {
	t.Helper()
	files := []struct {
		path string
		size int
	}{
		{"empty", 0},
		{"a.txt", 13},
		{"inline.bin", 3000},
		{"dir/one block.bin", 1 << 20},
		{"dir/sub/multi.bin", 3*mib + 17},
		{"dir/sub/deeper/ünï cødé.txt", 777},
		{"other/x+y=z.dat", 65536},
	}
	for i, f := range files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(f.path)), f.size, uint64(i+1))
	}
}

// hashTree maps each regular file under root (slash path) to its sha256.
func hashTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = hashFile(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hashFile(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diff []string
	for k, v := range want {
		if got[k] != v {
			diff = append(diff, fmt.Sprintf("%s: got %.12s want %.12s", k, got[k], v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, k+": unexpected")
		}
	}
	if len(diff) > 0 {
		slices.Sort(diff)
		t.Fatalf("%s differs:\n%s", what, strings.Join(diff, "\n"))
	}
}

func sameFile(t *testing.T, what, got, want string) {
	t.Helper()
	if g, w := hashFile(t, got), hashFile(t, want); g != w {
		t.Fatalf("%s: sha256 %s, want %s", what, g, w)
	}
}

func bucketName(t *testing.T) string {
	return fmt.Sprintf("cli-%s-%06x", strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), rand.Uint32()&0xffffff)
}
