package labe2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/tests/harness"
	"github.com/entrepot/entrepot/tests/netlab"
)

// The real entrepot binary in lab namespaces.

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// entrepotBin returns a netlab-tagged entrepot binary: ENTREPOT_BIN if set
// (it must have been built with -tags netlab), else one built once.
func entrepotBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv(harness.EnvBin); p != "" {
			binPath, binErr = filepath.Abs(p)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		root, err := harness.ModuleRoot(ctx)
		if err != nil {
			binErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "labe2e-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(binDir, "entrepot")
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "netlab", "-o", binPath, harness.MainPackage)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build -tags netlab entrepot: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("entrepot binary: %v", binErr)
	}
	return binPath
}

// entOpts configures an entrepot node in the lab.
type entOpts struct {
	Zone       string
	SecretFile string
	Bootstrap  []string
	UPnP       bool
	Expose     []string // default ["rpc", "s3"] when UPnP
	RF         int      // default 3
}

// entNode is an entrepot process in a lab namespace.
type entNode struct {
	name  string
	host  *netlab.Host
	dir   string
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	admin *adminclient.Client
	id    string
	start time.Time
}

func (n *entNode) config(o entOpts) string {
	if o.RF == 0 {
		o.RF = 3
	}
	if o.UPnP && o.Expose == nil {
		o.Expose = []string{"rpc", "s3"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "metadata_dir = %q\ndata_dir = %q\nreplication_factor = %d\nblock_size = \"1M\"\nfsync = false\n",
		filepath.Join(n.dir, "meta"), filepath.Join(n.dir, "data"), o.RF)
	fmt.Fprintf(&b, "zone = %q\nhostname = %q\ncapacity = \"1G\"\n", o.Zone, n.name)
	fmt.Fprintf(&b, "\n[s3]\nlisten = \"0.0.0.0:3900\"\n\n[admin]\nsocket = %q\nlisten = \"\"\n", filepath.Join(n.dir, "admin.sock"))
	fmt.Fprintf(&b, "\n[rpc]\nlisten = \"/ip4/0.0.0.0/tcp/3901\"\nbootstrap = %s\nsecret_file = %q\ngossip_interval = \"1s\"\nping_interval = \"1s\"\nmdns = true\n",
		tomlList(o.Bootstrap), o.SecretFile)
	fmt.Fprintf(&b, "\n[nat]\nupnp = %v\nexpose = %s\n", o.UPnP, tomlList(o.Expose))
	b.WriteString("\n[log]\nlevel = \"debug\"\n")
	return b.String()
}

func tomlList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func writeSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(p, []byte(randomSecret()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startEntrepot(t *testing.T, host *netlab.Host, o entOpts) *entNode {
	t.Helper()
	bin := entrepotBin(t)
	n := &entNode{name: host.Name, host: host, dir: filepath.Join(t.TempDir(), host.Name), done: make(chan struct{})}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(n.dir, "entrepot.toml")
	if err := os.WriteFile(cfg, []byte(n.config(o)), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(n.dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = host.Command(context.Background(), bin, "server", "-c", cfg)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	n.admin, err = adminclient.New(adminclient.Options{Socket: filepath.Join(n.dir, "admin.sock"), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n.start = time.Now()
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.err = n.cmd.Wait(); logf.Close(); close(n.done) }()
	t.Cleanup(func() {
		_, _ = n.stop(15 * time.Second)
		if t.Failed() {
			t.Logf("--- %s log tail ---\n%s", n.name, tail(n.log(), 40))
		}
	})
	waitFor(t, n.name+" healthy", 60*time.Second, func() bool {
		select {
		case <-n.done:
			t.Fatalf("%s exited: %v\n%s", n.name, n.err, tail(n.log(), 40))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		id, err := n.admin.NodeID(ctx)
		if err == nil {
			n.id = id.ID
		}
		return err == nil
	})
	return n
}

func (n *entNode) log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "node.log"))
	return string(b)
}

func (n *entNode) stop(timeout time.Duration) (time.Duration, error) {
	select {
	case <-n.done:
		return 0, nil
	default:
	}
	t0 := time.Now()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return time.Since(t0), n.err
	case <-time.After(timeout):
		_ = n.cmd.Process.Kill()
		<-n.done
		return time.Since(t0), fmt.Errorf("%s did not stop within %v", n.name, timeout)
	}
}

// requireNATWired skips when the binary does not map ports for [nat] upnp
// (the daemon must pass p2p.Config.NAT): no mapping on the router and no
// natpunch line in the node's log.
func requireNATWired(t *testing.T, n *entNode, r *netlab.Router) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(mappingsTo(t, r, n.host)) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(n.log(), "natpunch") {
		t.Skip("labe2e: this entrepot binary does not wire [nat] upnp into the p2p host yet (p2p.Config.NAT/Expose): no mapping, no natpunch log line")
	}
	t.Fatalf("%s: [nat] upnp on but no mapping on %s after 20 s\n%s", n.name, r.Name, tail(n.log(), 30))
}

// s3From returns an S3 client whose connections are made from inside host's namespace.
func s3From(host *netlab.Host, endpoint string, c harness.Credentials) *s3.Client {
	tr := &http.Transport{DialContext: host.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	return harness.NewS3Client(endpoint, c, &http.Client{Transport: tr, Timeout: 5 * time.Minute})
}

func putGet(ctx context.Context, cl *s3.Client, bucket, key string, body []byte) error {
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return getCheck(ctx, cl, bucket, key, body)
}

func getCheck(ctx context.Context, cl *s3.Client, bucket, key string, body []byte) error {
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	if !bytes.Equal(buf.Bytes(), body) {
		return fmt.Errorf("get %s/%s: %d bytes differ from the %d written", bucket, key, buf.Len(), len(body))
	}
	return nil
}
