package harness

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake entrepot so that process control is
// tested without the real server: HARNESS_FAKE=<mode> selects it.
func TestMain(m *testing.M) {
	if mode := os.Getenv("HARNESS_FAKE"); mode != "" {
		os.Exit(fakeServer(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeServer(mode string, args []string) int {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "")
	s3Listen := fs.String("s3-listen", "", "")
	adminListen := fs.String("admin-listen", "", "")
	_ = fs.Bool("dev", false, "")
	if len(args) == 0 || args[0] != "server" {
		fmt.Fprintln(os.Stderr, "fake: want server")
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fmt.Println("fake entrepot starting", mode)
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "fake: refusing to start")
		return 3
	case "unhealthy":
		time.Sleep(time.Minute)
		return 0
	}
	creds := Credentials{Endpoint: "http://" + *s3Listen, Region: "us-east-1", AccessKeyID: "GKfake", SecretAccessKey: "secret"}
	b, _ := json.Marshal(creds)
	if err := os.WriteFile(filepath.Join(*dataDir, CredentialsFile), b, 0o600); err != nil {
		return 4
	}
	l, err := net.Listen("tcp", *adminListen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 5
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.NotFound(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	if mode == "ignore-term" {
		time.Sleep(time.Minute)
	}
	_ = srv.Close()
	return 0
}

func fakeNode(t *testing.T, mode string) *Node {
	t.Helper()
	dir := t.TempDir()
	n, err := NewNode(NodeConfig{
		Bin:          os.Args[0],
		DataDir:      filepath.Join(dir, "node0"),
		Env:          []string{"HARNESS_FAKE=" + mode},
		StartTimeout: 2 * time.Second,
		StopTimeout:  time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Kill() })
	return n
}

func TestNodeLifecycle(t *testing.T) {
	n := fakeNode(t, "ok")
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.Running() || n.PID() == 0 {
		t.Fatal("node not running after Start")
	}
	if err := n.Start(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start: got %v, want ErrRunning", err)
	}
	c, mode, err := ReadCredentials(filepath.Join(n.DataDir(), CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if mode != 0o600 || c.AccessKeyID != "GKfake" || c.Endpoint != n.Endpoint() {
		t.Fatalf("credentials %+v mode %o", c, mode)
	}
	pid := n.PID()
	if err := n.Restart(ctx, true); err != nil {
		t.Fatal(err)
	}
	if n.PID() == pid || n.Starts() != 2 {
		t.Fatalf("restart kept pid %d or starts=%d", pid, n.Starts())
	}
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if n.Running() || !strings.Contains(n.LastExit(), "killed") {
		t.Fatalf("after Kill: running=%v exit=%q", n.Running(), n.LastExit())
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(ctx); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if n.LastExit() != "exit status 0" {
		t.Fatalf("exit after SIGTERM: %q", n.LastExit())
	}
	if err := n.Stop(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Stop of a stopped node: %v", err)
	}
	log := n.LogTail(100)
	if got := strings.Count(log, "=== harness: start #"); got != 3 {
		t.Fatalf("log has %d start markers, want 3:\n%s", got, log)
	}
}

func TestNodeStartFailures(t *testing.T) {
	cases := []struct {
		name string
		mode string
		want error
	}{
		{name: "exits before health", mode: "exit", want: ErrExited},
		{name: "never healthy", mode: "unhealthy", want: ErrNotHealthy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := fakeNode(t, tc.mode)
			start := time.Now()
			err := n.Start(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("start took %s, bound is 2 s", time.Since(start))
			}
			if !strings.Contains(err.Error(), "fake entrepot starting") {
				t.Fatalf("error lacks the log tail: %v", err)
			}
			if n.Running() {
				t.Fatal("failed node still running")
			}
		})
	}
}

func TestNodeStopTimeout(t *testing.T) {
	n := fakeNode(t, "ignore-term")
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(context.Background()); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("got %v, want ErrStopTimeout", err)
	}
	if n.Running() {
		t.Fatal("node survived the stop timeout")
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := FreeAddrs(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
			t.Fatalf("bad or duplicate address %q in %v", a, addrs)
		}
		seen[a] = true
	}
}

func TestCleanEnv(t *testing.T) {
	base := []string{"PATH=/x", "AWS_CA_BUNDLE=/ca", "AWS_PROFILE=p", "HOME=/root", "KEEP=1"}
	got := CleanEnv(base, "HOME=/tmp/h", "AWS_CONFIG_FILE=/c")
	want := []string{"PATH=/x", "KEEP=1", "HOME=/tmp/h", "AWS_CONFIG_FILE=/c"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestTail(t *testing.T) {
	cases := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "empty", in: "", n: 3, want: ""},
		{name: "fewer lines", in: "a\nb\n", n: 3, want: "a\nb"},
		{name: "exact", in: "a\nb\nc", n: 3, want: "a\nb\nc"},
		{name: "more lines", in: "a\nb\nc\nd\n", n: 2, want: "c\nd"},
		{name: "zero", in: "a\n", n: 0, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Tail([]byte(tc.in), tc.n); got != tc.want {
				t.Fatalf("Tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

var credCases = []struct {
	name    string
	in      string
	want    Credentials
	wantErr bool
}{
	{name: "full", in: `{"endpoint":"http://127.0.0.1:3900","region":"eu","access_key_id":"GK1","secret_access_key":"s"}`,
		want: Credentials{Endpoint: "http://127.0.0.1:3900", Region: "eu", AccessKeyID: "GK1", SecretAccessKey: "s"}},
	{name: "default region", in: `{"access_key_id":"GK1","secret_access_key":"s"}`,
		want: Credentials{Region: "us-east-1", AccessKeyID: "GK1", SecretAccessKey: "s"}},
	{name: "no secret", in: `{"access_key_id":"GK1"}`, wantErr: true},
	{name: "not json", in: `access_key_id=GK1`, wantErr: true},
}

func TestParseCredentials(t *testing.T) {
	for _, tc := range credCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCredentials([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("error %v does not wrap ErrBadCredentials", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseCredentials(f *testing.F) {
	for _, tc := range credCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredentials(b)
		if err != nil {
			return
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.Region == "" {
			t.Fatalf("accepted incomplete credentials %+v", c)
		}
	})
}

func TestNewClientEnv(t *testing.T) {
	home := t.TempDir()
	e, err := NewClientEnv(home, Credentials{Region: "us-east-1", AccessKeyID: "GK1", SecretAccessKey: "sec"}, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range e.Env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "AWS_CA_BUNDLE" || k == "AWS_PROFILE" {
			t.Fatalf("leaked %s", kv)
		}
	}
	if !slices.Contains(e.Env, "HOME="+home) {
		t.Fatalf("HOME not set: %v", e.Env)
	}
	b, err := os.ReadFile(filepath.Join(home, ".aws", "credentials"))
	if err != nil || !strings.Contains(string(b), "aws_secret_access_key = sec") {
		t.Fatalf("credentials file: %q %v", b, err)
	}
}

type fakeTB struct {
	*testing.T
	cleanups []func()
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func TestStartDevT(t *testing.T) {
	t.Setenv("HARNESS_FAKE", "ok") // inherited by the node through os.Environ
	tb := &fakeTB{T: t}
	c := StartDevT(tb, DevOptions{Bin: os.Args[0], StartTimeout: 2 * time.Second})
	var cl Cluster = c
	if len(cl.Nodes()) != 1 || cl.Node(0) != c.Nodes()[0] {
		t.Fatal("dev cluster must have exactly one node")
	}
	if cl.Credentials().AccessKeyID != "GKfake" {
		t.Fatalf("credentials %+v", cl.Credentials())
	}
	if !cl.Node(0).Running() {
		t.Fatal("node not running")
	}
	if len(tb.cleanups) != 1 {
		t.Fatalf("%d cleanups registered, want 1", len(tb.cleanups))
	}
	tb.cleanups[0]()
	if cl.Node(0).Running() || cl.Node(0).LastExit() != "exit status 0" {
		t.Fatalf("after cleanup: running %v, exit %q", cl.Node(0).Running(), cl.Node(0).LastExit())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Node(1) of a dev cluster must panic")
		}
	}()
	cl.Node(1)
}

type fakeM struct {
	c   **DevCluster
	ran bool
}

func (m *fakeM) Run() int {
	m.ran = true
	if *m.c == nil || !(*m.c).Node(0).Running() {
		return 3
	}
	return 0
}

func TestRunWithDev(t *testing.T) {
	t.Setenv("HARNESS_FAKE", "ok")
	t.Setenv(EnvBin, os.Args[0])
	var c *DevCluster
	m := &fakeM{c: &c}
	if code := RunWithDev(m, &c); code != 0 || !m.ran {
		t.Fatalf("RunWithDev = %d, ran %v", code, m.ran)
	}
	if c.Node(0).Running() {
		t.Fatal("node still running after RunWithDev")
	}
	t.Setenv("HARNESS_FAKE", "exit")
	var c2 *DevCluster
	m2 := &fakeM{c: &c2}
	// RunWithDev reports the expected start failure on stderr: keep it out
	// of the test output, but check it.
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = f
	code := RunWithDev(m2, &c2)
	os.Stderr = saved
	msg, _ := os.ReadFile(f.Name())
	if !strings.Contains(string(msg), "node exited before health") {
		t.Errorf("stderr %q does not explain the failure", msg)
	}
	if code != 1 || m2.ran {
		t.Fatalf("RunWithDev with a node that cannot start = %d, ran %v; want 1 without running tests", code, m2.ran)
	}
}
