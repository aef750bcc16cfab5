package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
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

type result struct {
	code           int
	stdout, stderr string
}

// run runs the command tree in-process.
func run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Run(ctx, append([]string{"entrepot"}, args...), Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return result{code, out.String(), errb.String()}
}

type server struct {
	dir            string
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// startServer runs `entrepot server ARGS` in-process until the test ends.
func startServer(t *testing.T, socket string, args ...string) *server {
	t.Helper()
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.done <- Run(ctx, append([]string{"entrepot", "server"}, args...), Env{Stdout: s.stdout, Stderr: s.stderr})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-s.done:
			if code != 0 {
				t.Errorf("server exited %d:\n%s", code, s.stderr)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	c, err := adminclient.New(adminclient.Options{Socket: socket, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Health(context.Background()); err == nil {
			return s
		}
		select {
		case code := <-s.done:
			t.Fatalf("server exited %d before serving:\n%s", code, s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 10 s:\n%s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startDev starts a dev server in <tmp>/entrepot-dev and returns that directory.
func startDev(t *testing.T) (string, *server) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "entrepot-dev")
	s := startServer(t, filepath.Join(dir, "admin.sock"), "--dev", "--data-dir", dir, "--s3-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	s.dir = dir
	return dir, s
}

func TestVersion(t *testing.T) {
	r := run(t, nil, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "entrepot ") {
		t.Errorf("version: %+v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, ""},
		{"key info without key", []string{"--admin-socket", "/nonexistent.sock", "key", "info"}, "exactly one"},
		{"import without secret", []string{"--admin-socket", "/nonexistent.sock", "key", "import", "GKx"}, "no secret"},
		{"allow without flags", []string{"--admin-socket", "/nonexistent.sock", "key", "allow", "k", "--bucket", "b"}, "--read"},
		{"set without change", []string{"--admin-socket", "/nonexistent.sock", "key", "set", "k"}, "nothing to change"},
		{"dev with config", []string{"server", "--dev", "-c", "/x.toml", "--check-config"}, "cannot be combined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, "", tc.args...)
			if r.code == 0 {
				t.Fatalf("exit 0: %+v", r)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.want)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("supersecrettoken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("metadata_dir = \"meta\"\ndata_dir = \"data\"\nblock_size = \"2M\"\n[admin]\ntoken_file = \"token\"\n"), 0o644)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[s3]\nlisten = \"x\"\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknown, []byte("[s3]\nlistn = \"x\"\n"), 0o644)
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte("t"), 0o644)
	os.Chmod(loose, 0o644)
	looseCfg := filepath.Join(dir, "loose.toml")
	os.WriteFile(looseCfg, []byte("[admin]\ntoken_file = \"loose\"\n"), 0o644)

	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   []string
		notInOut string
	}{
		{"good", []string{"server", "-c", good, "--check-config"}, 0,
			[]string{`block_size = "2M"`, filepath.Join(dir, "meta"), "token_file"}, nil, "supersecrettoken"},
		{"global -c", []string{"-c", good, "server", "--check-config"}, 0, []string{`block_size = "2M"`}, nil, ""},
		{"override", []string{"server", "-c", good, "--check-config", "--s3-listen", "127.0.0.1:9999"}, 0, []string{`"127.0.0.1:9999"`}, nil, ""},
		{"bad override", []string{"server", "-c", good, "--check-config", "--admin-listen", "nope"}, 1, nil, []string{"admin.listen", `"nope"`}, ""},
		{"bad value", []string{"server", "-c", bad, "--check-config"}, 1, nil, []string{"s3.listen", `"x"`}, ""},
		{"unknown key", []string{"server", "-c", unknown, "--check-config"}, 1, nil, []string{"s3.listn"}, ""},
		{"world-readable secret", []string{"server", "-c", looseCfg, "--check-config"}, 1, nil, []string{"admin.token_file", loose}, ""},
		{"missing file", []string{"server", "-c", filepath.Join(dir, "none.toml"), "--check-config"}, 1, nil, []string{"none.toml"}, ""},
		{"dev", []string{"server", "--dev", "--data-dir", filepath.Join(dir, "d"), "--check-config"}, 0,
			[]string{"replication_factor = 1", `listen = "127.0.0.1:3900"`, filepath.Join(dir, "d", "admin.sock")}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, "", tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %+v", r.code, tc.code, r)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r.stderr)
				}
			}
			if tc.notInOut != "" && strings.Contains(r.stdout+r.stderr, tc.notInOut) {
				t.Errorf("output shows a secret:\n%s", r.stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
		t.Error("--check-config created the dev directory")
	}
}

func TestDevServerBannerAndCredentials(t *testing.T) {
	dir, s := startDev(t)
	b, err := os.ReadFile(filepath.Join(dir, "dev-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds struct {
		Endpoint        string `json:"endpoint"`
		Region          string `json:"region"`
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if err := json.Unmarshal(b, &creds); err != nil || creds.SecretAccessKey == "" {
		t.Fatalf("credentials %s: %v", b, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.stdout.String(), "aws configure") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, w := range []string{creds.Endpoint, creds.Region, creds.AccessKeyID, creds.SecretAccessKey, "aws configure", "rclone"} {
		if !strings.Contains(s.stdout.String(), w) {
			t.Errorf("stdout banner lacks %q", w)
		}
	}
	if strings.Contains(s.stderr.String(), creds.SecretAccessKey) {
		t.Error("the dev secret appears in the log")
	}
	r := run(t, nil, "", "--data-dir", dir, "key", "info", "dev", "--json")
	var k admin.KeyInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &k) != nil || k.AccessKeyID != creds.AccessKeyID || !k.CanCreateBucket || k.SecretAccessKey != "" {
		t.Errorf("dev key: %+v", r)
	}
}

func TestKeyAndBucketCommands(t *testing.T) {
	dir, _ := startDev(t)
	g := []string{"--data-dir", dir}
	cmd := func(args ...string) []string { return append(append([]string{}, g...), args...) }

	r := run(t, nil, "", cmd("key", "create", "alice", "--json")...)
	var alice admin.KeyInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &alice) != nil || alice.SecretAccessKey == "" || alice.Name != "alice" {
		t.Fatalf("key create: %+v", r)
	}
	r = run(t, nil, "", cmd("key", "create", "--name", "bob", "--can-create-bucket")...)
	if r.code != 0 || !strings.Contains(r.stdout, "Secret key:") || !strings.Contains(r.stdout, "Can create buckets:  yes") {
		t.Fatalf("key create table: %+v", r)
	}

	// Import: secret from stdin, then from a file; never from argv.
	r = run(t, nil, "imported-secret-0123456789\n", cmd("key", "import", "--name", "carol", "GKcarol0000000000000000000")...)
	if r.code != 0 || !strings.Contains(r.stdout, "GKcarol0000000000000000000") || strings.Contains(r.stdout, "imported-secret") {
		t.Fatalf("key import stdin: %+v", r)
	}
	sf := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(sf, []byte("file-secret-0123456789abcdef\n"), 0o600)
	r = run(t, nil, "", cmd("key", "import", "--secret-file", sf, "--name", "dave", "GKdave00000000000000000000")...)
	if r.code != 0 {
		t.Fatalf("key import file: %+v", r)
	}
	r = run(t, nil, "", cmd("key", "info", "--show-secret", "dave")...)
	if r.code != 0 || !strings.Contains(r.stdout, "file-secret-0123456789abcdef") {
		t.Fatalf("key info --show-secret: %+v", r)
	}
	r = run(t, nil, "", cmd("key", "info", "dave")...)
	if r.code != 0 || strings.Contains(r.stdout, "file-secret") {
		t.Fatalf("key info shows the secret without --show-secret: %+v", r)
	}
	r = run(t, nil, "x-secret-value-123\n", cmd("key", "import", "--name", "dup", "GKdave00000000000000000000")...)
	if r.code != 1 || !strings.Contains(r.stderr, "AccessKeyExists") {
		t.Errorf("duplicate import: %+v", r)
	}

	r = run(t, nil, "", cmd("key", "list")...)
	if r.code != 0 {
		t.Fatal(r)
	}
	for _, w := range []string{"ID", "NAME", "alice", "bob", "carol", "dave", "dev"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("key list lacks %q:\n%s", w, r.stdout)
		}
	}

	r = run(t, nil, "", cmd("bucket", "create", "photos")...)
	if r.code != 0 || !strings.Contains(r.stdout, "Created bucket photos") {
		t.Fatalf("bucket create: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "create", "docs", "--owner", "bob")...)
	if r.code != 0 {
		t.Fatalf("bucket create --owner: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "create", "photos")...)
	if r.code != 1 || !strings.Contains(r.stderr, "BucketAlreadyExists") {
		t.Errorf("duplicate bucket: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "allow", "photos", "--key", "alice", "--read", "--write")...)
	if r.code != 0 || !strings.Contains(r.stdout, "read,write") {
		t.Fatalf("bucket allow: %+v", r)
	}
	r = run(t, nil, "", cmd("key", "deny", "alice", "--bucket", "photos", "--write")...)
	if r.code != 0 {
		t.Fatalf("key deny: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "info", "photos", "--json")...)
	var bi admin.BucketInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &bi) != nil || bi.Stats == nil || len(bi.Keys) != 1 ||
		bi.Keys[0].AccessKeyID != alice.AccessKeyID || !bi.Keys[0].Read || bi.Keys[0].Write {
		t.Fatalf("bucket info: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "info", "docs")...)
	if r.code != 0 || !strings.Contains(r.stdout, "read,write,owner") || !strings.Contains(r.stdout, "Objects:") {
		t.Fatalf("bucket info table: %+v", r)
	}
	r = run(t, nil, "", cmd("--json", "bucket", "list")...)
	var bl admin.BucketList
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &bl) != nil || len(bl.Buckets) != 2 || bl.Buckets[0].Name != "docs" {
		t.Fatalf("bucket list --json (global flag): %+v", r)
	}
	r = run(t, nil, "", cmd("key", "set", "alice", "--can-create-bucket")...)
	if r.code != 0 || !strings.Contains(r.stdout, "Can create buckets:  yes") {
		t.Fatalf("key set: %+v", r)
	}
	r = run(t, nil, "", cmd("key", "set", "alice", "--can-create-bucket=false")...)
	if r.code != 0 || !strings.Contains(r.stdout, "Can create buckets:  no") {
		t.Fatalf("key set false: %+v", r)
	}

	r = run(t, nil, "", cmd("bucket", "delete", "photos")...)
	if r.code != 0 || r.stdout != "Deleted bucket photos.\n" {
		t.Fatalf("bucket delete: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "delete", "photos", "--json")...)
	if r.code != 1 || !strings.Contains(r.stderr, "NoSuchBucket") || r.stdout != "" {
		t.Errorf("delete of a deleted bucket: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "delete", "docs", "--json")...)
	var ref admin.BucketRef
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ref) != nil || ref.Bucket != "docs" {
		t.Fatalf("bucket delete --json: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "info", "photos")...)
	if r.code != 1 || !strings.Contains(r.stderr, "NoSuchBucket") {
		t.Errorf("info of deleted bucket: %+v", r)
	}
	r = run(t, nil, "", cmd("key", "delete", "alice")...)
	if r.code != 0 || !strings.Contains(r.stdout, alice.AccessKeyID) {
		t.Fatalf("key delete: %+v", r)
	}
	r = run(t, nil, "", cmd("key", "info", "alice")...)
	if r.code != 1 || !strings.Contains(r.stderr, "NoSuchAccessKey") {
		t.Errorf("info of deleted key: %+v", r)
	}
}

func TestStatusAndAdminDiscovery(t *testing.T) {
	dir, _ := startDev(t)
	sock := filepath.Join(dir, "admin.sock")

	r := run(t, nil, "", "--admin-socket", sock, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "healthy") || !strings.Contains(r.stdout, "dev") || !strings.Contains(r.stdout, "12D3KooW") ||
		!strings.Contains(r.stdout, "S3 endpoint:") || !strings.Contains(r.stdout, "http://127.0.0.1:") {
		t.Fatalf("status: %+v", r)
	}
	r = run(t, map[string]string{EnvAdminSocket: sock}, "", "status", "--json")
	var st admin.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || !st.Healthy || st.Node.Zone != "dev" || st.Node.Version == "" || st.Region != "us-east-1" {
		t.Fatalf("status via $%s: %+v", EnvAdminSocket, r)
	}
	// Nothing given: ./entrepot-dev/admin.sock is found.
	t.Chdir(filepath.Dir(dir))
	r = run(t, nil, "", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "healthy") {
		t.Fatalf("status from the dev directory: %+v", r)
	}
	r = run(t, nil, "", "--admin-socket", filepath.Join(t.TempDir(), "none.sock"), "status")
	if r.code != 1 || !strings.Contains(r.stderr, "is the server running?") {
		t.Errorf("no server: %+v", r)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestConfigServerOverTCPWithToken(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "admin-token")
	os.WriteFile(tok, []byte("tcp-admin-token\n"), 0o600)
	adminAddr := freePort(t)
	sock := filepath.Join(dir, "admin.sock")
	cfgPath := filepath.Join(dir, "entrepot.toml")
	os.WriteFile(cfgPath, []byte(`metadata_dir = "meta"
data_dir = "data"
replication_factor = 1
[s3]
listen = "127.0.0.1:0"
[admin]
socket = "admin.sock"
listen = "`+adminAddr+`"
token_file = "admin-token"
`), 0o644)
	s := startServer(t, sock, "-c", cfgPath)

	url := "http://" + adminAddr
	r := run(t, nil, "", "--admin-url", url, "--admin-token-file", tok, "bucket", "create", "over-tcp")
	if r.code != 0 {
		t.Fatalf("bucket create over TCP: %+v", r)
	}
	r = run(t, map[string]string{EnvAdminURL: url, EnvAdminToken: "tcp-admin-token"}, "", "bucket", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "over-tcp") {
		t.Fatalf("bucket list via env: %+v", r)
	}
	r = run(t, map[string]string{EnvAdminURL: url, EnvAdminToken: "wrong"}, "", "bucket", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "Unauthorized") {
		t.Errorf("wrong token: %+v", r)
	}
	// -c finds the socket in the config file.
	r = run(t, nil, "", "-c", cfgPath, "key", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "NAME") {
		t.Errorf("-c discovery: %+v", r)
	}
	if strings.Contains(s.stderr.String(), "tcp-admin-token") {
		t.Error("admin token appears in the log")
	}
	if s.stdout.String() != "" {
		t.Errorf("a non-dev server printed to stdout: %q", s.stdout.String())
	}
}
