package webe2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/entrepot/entrepot/daemon"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/daemon/config"
	"github.com/entrepot/entrepot/tests/harness"
)

// node is one in-process daemon with the web listener on.
type node struct {
	d        *daemon.Daemon
	creds    harness.Credentials
	endpoint string // S3
	web      string // host:port of the web listener
	s3       *s3.Client
	admin    *adminclient.Client
	dir      string
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Dev(filepath.Join(dir, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.S3.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = ""
	cfg.Web.Enabled = true
	cfg.Web.Listen = "127.0.0.1:0"
	cfg.Web.RootDomain = "web.test"
	lvl := slog.LevelWarn
	if os.Getenv("WEBE2E_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: lvl}))
	d, err := daemon.New(context.Background(), cfg, daemon.Options{Logger: logger, Version: "test", Stdout: io.Discard, ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case <-time.After(15 * time.Second):
		t.Fatal("daemon not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Run did not return")
		}
		d.Close()
	})
	dc, ok := d.DevCredentials()
	if !ok {
		t.Fatal("no dev credentials")
	}
	n := &node{d: d, dir: dir, endpoint: dc.Endpoint, web: d.WebAddr().String(),
		creds: harness.Credentials{AccessKeyID: dc.AccessKeyID, SecretAccessKey: dc.SecretAccessKey, Region: dc.Region}}
	n.s3 = harness.NewS3Client(n.endpoint, n.creds, &http.Client{Transport: harness.NewTransport(8)})
	if n.admin, err = adminclient.New(adminclient.Options{Socket: cfg.Admin.Socket}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) bucket(t *testing.T, name string) {
	t.Helper()
	if _, err := n.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

func (n *node) put(t *testing.T, bucket, key, ct string, body []byte) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
	if ct != "" {
		in.ContentType = aws.String(ct)
	}
	if _, err := n.s3.PutObject(context.Background(), in); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// webGet sends a request to the web listener with the given Host.
func (n *node) webDo(t *testing.T, method, host, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.web+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func newSSEKey(seed byte) (key, keyB64, md5B64 string) {
	raw := bytes.Repeat([]byte{seed}, 32)
	sum := md5.Sum(raw)
	return string(raw), base64.StdEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(sum[:])
}

// pattern returns n deterministic bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("%s not installed", path)
	}
}

// run runs a client tool with env and a deadline, failing t on error.
func run(t *testing.T, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(env []string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// awsBin is Debian's awscli (not whatever a developer's PATH holds).
const awsBin = "/usr/bin/aws"
