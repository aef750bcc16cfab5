package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Cluster is what an end-to-end test sees of the nodes it runs against.
// DevCluster implements it with one `server --dev` node; the multi-node
// harness of the cluster issue implements it with N configured nodes.
type Cluster interface {
	// Nodes returns every node, index order.
	Nodes() []*Node
	// Node returns node i (0-based); it panics when i is out of range.
	Node(i int) *Node
	// Credentials returns an access key allowed to create buckets.
	Credentials() Credentials
	// Close stops every node (gracefully, then by SIGKILL) and reports the
	// first failure.
	Close(ctx context.Context) error
}

var _ Cluster = (*DevCluster)(nil)

// DevOptions configures StartDev.
type DevOptions struct {
	// Bin is the entrepot binary. Required.
	Bin string
	// Dir holds the data dir ("node0") and its log ("node0.log"). Required.
	Dir string
	// Env is appended to the server environment.
	Env []string
	// StartTimeout bounds each start. Default 30 s.
	StartTimeout time.Duration
	// Logger receives harness events. Default: discard.
	Logger *slog.Logger
}

// DevCluster is a single `entrepot server --dev` node.
type DevCluster struct {
	node  *Node
	creds Credentials
}

// StartDev starts a dev node and reads its credentials. When the first
// start fails because a picked port was taken meanwhile, it retries twice
// with new ports.
func StartDev(ctx context.Context, opts DevOptions) (*DevCluster, error) {
	if opts.Bin == "" || opts.Dir == "" {
		return nil, fmt.Errorf("start dev: Bin and Dir are required")
	}
	var lastErr error
	for attempt := range 3 {
		dataDir := filepath.Join(opts.Dir, "node0")
		if attempt > 0 {
			dataDir = filepath.Join(opts.Dir, fmt.Sprintf("node0-try%d", attempt))
		}
		n, err := NewNode(NodeConfig{Bin: opts.Bin, DataDir: dataDir, Env: opts.Env, StartTimeout: opts.StartTimeout, Logger: opts.Logger})
		if err != nil {
			return nil, err
		}
		err = n.Start(ctx)
		if err == nil {
			creds, err := n.Credentials()
			if err != nil {
				_ = n.Kill()
				return nil, fmt.Errorf("start dev: %w", err)
			}
			return &DevCluster{node: n, creds: creds}, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("start dev: %w", lastErr)
}

// Nodes implements Cluster.
func (c *DevCluster) Nodes() []*Node { return []*Node{c.node} }

// Node implements Cluster.
func (c *DevCluster) Node(i int) *Node {
	if i != 0 {
		panic(fmt.Sprintf("dev cluster has one node, asked for %d", i))
	}
	return c.node
}

// Credentials implements Cluster.
func (c *DevCluster) Credentials() Credentials { return c.creds }

// Close implements Cluster.
func (c *DevCluster) Close(ctx context.Context) error {
	if !c.node.Running() {
		return nil
	}
	err := c.node.Stop(ctx)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	return err
}

// TB is the part of testing.TB the helpers use; declared here so the core
// of this package does not import package testing.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	TempDir() string
}

// DefaultBuilder is the process-wide builder used by Bin and StartDevT.
var DefaultBuilder Builder //nolint:gochecknoglobals // one build per test process is the point

// BuildTimeout bounds the one build of the binary.
const BuildTimeout = 5 * time.Minute

// Bin returns the entrepot binary (built once per process) or fails t.
func Bin(t TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	p, err := DefaultBuilder.Path(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// StartDevT starts a dev node in t.TempDir(), stops it at cleanup and, when
// t failed, logs the tail of the node's output.
func StartDevT(t TB, opts DevOptions) *DevCluster {
	t.Helper()
	return startT(t, &opts.Bin, &opts.Dir, "dev node",
		func(ctx context.Context) (*DevCluster, error) { return StartDev(ctx, opts) },
		func(c *DevCluster) { t.Logf("--- node log tail (%s) ---\n%s", c.node.LogPath(), c.node.LogTail(80)) })
}

// startT is the body of StartDevT and StartClusterT: *bin and *dir default
// to the built binary and t.TempDir(), start runs (2 minutes at most) or
// fails t, and at cleanup the result is closed (30 seconds at most) and,
// when t failed, logTails shows what its nodes printed.
func startT[C interface{ Close(context.Context) error }](t TB, bin, dir *string, what string,
	start func(context.Context) (C, error), logTails func(C)) C {
	t.Helper()
	if *bin == "" {
		*bin = Bin(t)
	}
	if *dir == "" {
		*dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := start(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Logf("close %s: %v", what, err)
		}
		if t.Failed() {
			logTails(c)
		}
	})
	return c
}

// M is the part of *testing.M that RunWithDev needs.
type M interface{ Run() int }

// RunWithDev is a TestMain body: it builds the binary, starts one dev node
// shared by the package's tests (stored in *into), runs m, prints the node's
// log tail when a test failed, stops the node and returns the exit code.
// A build or start failure is reported and exits 1 (it is never a skip).
func RunWithDev(m M, into **DevCluster) int {
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	bin, err := DefaultBuilder.Path(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer DefaultBuilder.Cleanup()
	dir, err := os.MkdirTemp("", "entrepot-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: make temp dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	c, err := StartDev(ctx, DevOptions{Bin: bin, Dir: dir})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	*into = c
	code := m.Run()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	if err := c.Close(stopCtx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: graceful stop of the dev node: %v\n", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- node log tail (%s) ---\n%s\n", c.node.LogPath(), c.node.LogTail(120))
	}
	return code
}
