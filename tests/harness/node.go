package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Sentinel errors of node control.
var (
	ErrNotRunning   = errors.New("node not running")
	ErrRunning      = errors.New("node already running")
	ErrNotHealthy   = errors.New("node did not become healthy")
	ErrExited       = errors.New("node exited")
	ErrStopTimeout  = errors.New("node did not stop after SIGTERM")
	ErrUncleanClose = errors.New("node exited non-zero after SIGTERM")
)

// NodeConfig describes one entrepot process.
type NodeConfig struct {
	// Bin is the entrepot binary. Required.
	Bin string
	// DataDir is the node's data directory. Required; created if missing.
	DataDir string
	// LogPath receives stdout and stderr of every run (appended, with a
	// marker line per start). Default: DataDir + ".log".
	LogPath string
	// S3Addr and AdminAddr are host:port listen addresses. Default: free
	// loopback ports picked at NewNode.
	S3Addr, AdminAddr string
	// Args builds the command line. Default: DevArgs.
	Args func(n *Node) []string
	// Env is appended to the server environment (os.Environ without AWS_*).
	Env []string
	// StartTimeout bounds start-up until /health answers 200. Default 30 s.
	StartTimeout time.Duration
	// StopTimeout bounds a graceful stop before SIGKILL. Default 15 s.
	StopTimeout time.Duration
	// Logger receives harness events. Default: discard.
	Logger *slog.Logger
}

// Node is one entrepot process that can be started, stopped, killed and
// restarted on the same data directory and ports.
type Node struct {
	cfg NodeConfig
	log *slog.Logger

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed when the current process has exited
	waitErr   error
	starts    int
	startedAt time.Time
	lastExit  string
}

// DevArgs is the default command line: a single-node dev server.
func DevArgs(n *Node) []string {
	return []string{"server", "--dev",
		"--data-dir", n.cfg.DataDir,
		"--s3-listen", n.cfg.S3Addr,
		"--admin-listen", n.cfg.AdminAddr,
	}
}

// NewNode validates cfg and fills its defaults. It starts nothing.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Bin == "" || cfg.DataDir == "" {
		return nil, fmt.Errorf("new node: Bin and DataDir are required")
	}
	if cfg.LogPath == "" {
		cfg.LogPath = strings.TrimRight(cfg.DataDir, "/") + ".log"
	}
	if cfg.S3Addr == "" || cfg.AdminAddr == "" {
		addrs, err := FreeAddrs(2)
		if err != nil {
			return nil, fmt.Errorf("new node: %w", err)
		}
		if cfg.S3Addr == "" {
			cfg.S3Addr = addrs[0]
		}
		if cfg.AdminAddr == "" {
			cfg.AdminAddr = addrs[1]
		}
	}
	if cfg.Args == nil {
		cfg.Args = DevArgs
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 15 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("new node: make data dir: %w", err)
	}
	return &Node{cfg: cfg, log: log.With("component", "harness", "data_dir", cfg.DataDir)}, nil
}

// DataDir returns the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// LogPath returns the file holding the node's output.
func (n *Node) LogPath() string { return n.cfg.LogPath }

// S3Addr returns the S3 listen address (host:port).
func (n *Node) S3Addr() string { return n.cfg.S3Addr }

// AdminAddr returns the admin listen address (host:port).
func (n *Node) AdminAddr() string { return n.cfg.AdminAddr }

// Endpoint returns the S3 endpoint URL, http://S3Addr.
func (n *Node) Endpoint() string { return "http://" + n.cfg.S3Addr }

// AdminSocket returns the default admin unix socket path in the data dir.
func (n *Node) AdminSocket() string { return filepath.Join(n.cfg.DataDir, "admin.sock") }

// Bin returns the binary the node runs.
func (n *Node) Bin() string { return n.cfg.Bin }

// Starts returns how many times the process was started.
func (n *Node) Starts() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.starts
}

// PID returns the current process id, or 0 when not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.exitedLocked() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (n *Node) Running() bool { return n.PID() != 0 }

// StartedAt returns when the current process was started.
func (n *Node) StartedAt() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.startedAt
}

func (n *Node) exitedLocked() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Start launches the process and waits until /health answers 200, bounded
// by ctx and StartTimeout. On failure the process is killed and the error
// carries the tail of the log.
func (n *Node) Start(ctx context.Context) error {
	if err := n.Spawn(); err != nil {
		return err
	}
	if err := n.WaitHealthy(ctx); err != nil {
		_ = n.Kill()
		return fmt.Errorf("start node: %w\n--- log tail (%s) ---\n%s", err, n.cfg.LogPath, n.LogTail(60))
	}
	return nil
}

// Spawn launches the process without waiting for health.
func (n *Node) Spawn() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && !n.exitedLocked() {
		return ErrRunning
	}
	logf, err := os.OpenFile(n.cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open node log: %w", err)
	}
	args := n.cfg.Args(n)
	n.starts++
	fmt.Fprintf(logf, "=== harness: start #%d at %s: %s %s\n", n.starts, time.Now().UTC().Format(time.RFC3339Nano), n.cfg.Bin, strings.Join(args, " "))
	cmd := exec.Command(n.cfg.Bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = CleanEnv(os.Environ(), n.cfg.Env...)
	// Dies with the test process even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", n.cfg.Bin, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.waitErr, n.startedAt = cmd, done, nil, time.Now()
	n.log.Info("node spawned", "pid", cmd.Process.Pid, "start", n.starts)
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		n.mu.Lock()
		n.waitErr = err
		n.lastExit = describeExit(cmd, err)
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

func describeExit(cmd *exec.Cmd, err error) string {
	if cmd.ProcessState == nil {
		return fmt.Sprintf("wait: %v", err)
	}
	return cmd.ProcessState.String()
}

// LastExit describes how the previous process ended ("exit status 0",
// "signal: killed"), or "" if none ended yet.
func (n *Node) LastExit() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastExit
}

// WaitHealthy polls GET http://AdminAddr/health until it answers 200, the
// process exits, ctx ends, or StartTimeout passes.
func (n *Node) WaitHealthy(ctx context.Context) error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return ErrNotRunning
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + n.cfg.AdminAddr + "/health"
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-done:
			return fmt.Errorf("%w before health: %s", ErrExited, n.LastExit())
		case <-ctx.Done():
			return fmt.Errorf("%w within %s: last answer %s", ErrNotHealthy, n.cfg.StartTimeout, last)
		case <-tick.C:
		}
	}
}

// Kill sends SIGKILL and waits for the process to be reaped.
func (n *Node) Kill() error {
	return n.signalAndWait(syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM and waits up to StopTimeout; then it SIGKILLs and
// returns ErrStopTimeout. A non-zero exit after SIGTERM returns
// ErrUncleanClose (the process is gone either way).
func (n *Node) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.StopTimeout)
	defer cancel()
	cmd, done, err := n.current()
	if err != nil {
		return err
	}
	if exited(done) {
		return fmt.Errorf("%w: already exited: %s", ErrNotRunning, n.LastExit())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-ctx.Done():
		_ = n.Kill()
		return fmt.Errorf("%w within %s", ErrStopTimeout, n.cfg.StopTimeout)
	}
	n.mu.Lock()
	werr := n.waitErr
	n.mu.Unlock()
	if werr != nil {
		return fmt.Errorf("%w: %s", ErrUncleanClose, n.LastExit())
	}
	return nil
}

// current returns the process of the last start and the channel closed
// when it exits, or ErrNotRunning when the node was never started.
func (n *Node) current() (*exec.Cmd, <-chan struct{}, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil, nil, ErrNotRunning
	}
	return n.cmd, n.done, nil
}

// exited reports whether done is closed (the process has been reaped).
func exited(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

func (n *Node) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	cmd, done, err := n.current()
	if err != nil {
		return err
	}
	if exited(done) {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("process %d not reaped %s after %v", cmd.Process.Pid, timeout, sig)
	}
}

// Restart kills the process if it runs (SIGKILL when hard, SIGTERM
// otherwise) and starts it again on the same data dir and ports.
func (n *Node) Restart(ctx context.Context, hard bool) error {
	if n.Running() {
		var err error
		if hard {
			err = n.Kill()
		} else {
			err = n.Stop(ctx)
		}
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	return n.Start(ctx)
}

// Credentials reads DataDir/dev-credentials.json.
func (n *Node) Credentials() (Credentials, error) {
	c, _, err := ReadCredentials(filepath.Join(n.cfg.DataDir, CredentialsFile))
	return c, err
}

// CLI runs `entrepot --admin-socket DataDir/admin.sock ARGS...` with a
// clean environment, bounded by ctx, and returns stdout. The error carries
// stderr.
func (n *Node) CLI(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--admin-socket", n.AdminSocket()}, args...)
	cmd := exec.CommandContext(ctx, n.cfg.Bin, full...)
	cmd.Env = CleanEnv(os.Environ(), n.cfg.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("entrepot %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// LogTail returns the last lines of the node's log file.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.cfg.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return Tail(b, lines)
}

// Tail returns the last n lines of b.
func Tail(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" || n <= 0 {
		return ""
	}
	idx := len(s)
	for range n {
		i := strings.LastIndexByte(s[:idx], '\n')
		if i < 0 {
			return s
		}
		idx = i
	}
	return s[idx+1:]
}

// CleanEnv returns base without AWS_* variables and without the keys set in
// extra, followed by extra. It keeps the machine's AWS_CA_BUNDLE, AWS_PROFILE
// and the like away from processes under test.
func CleanEnv(base []string, extra ...string) []string {
	override := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		override[k] = true
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || override[k] {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}
