package labe2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/daemon/p2p"
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

// EntrepotBin returns a netlab-tagged entrepot binary: ENTREPOT_BIN if set
// (it must have been built with -tags netlab), else one built once.
func EntrepotBin(t testing.TB) string {
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

// EntOpts configures an entrepot node in the lab.
type EntOpts struct {
	Zone       string
	SecretFile string
	Bootstrap  []string
	UPnP       bool
	Expose     []string // default ["rpc", "s3"] when UPnP
	RF         int      // default 3
	RPCPort    uint16   // p2p listen port, default 3901
	Dir        string   // state directory, reused across restarts (default: a new one)
}

// EntNode is an entrepot process in a lab namespace.
type EntNode struct {
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

func (n *EntNode) config(o EntOpts) string {
	if o.RF == 0 {
		o.RF = 3
	}
	if o.RPCPort == 0 {
		o.RPCPort = 3901
	}
	if o.UPnP && o.Expose == nil {
		o.Expose = []string{"rpc", "s3"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "metadata_dir = %q\ndata_dir = %q\nreplication_factor = %d\nblock_size = \"1M\"\nfsync = false\n",
		filepath.Join(n.dir, "meta"), filepath.Join(n.dir, "data"), o.RF)
	fmt.Fprintf(&b, "zone = %q\nhostname = %q\ncapacity = \"1G\"\n", o.Zone, n.name)
	fmt.Fprintf(&b, "\n[s3]\nlisten = \"0.0.0.0:3900\"\n\n[admin]\nsocket = %q\nlisten = \"\"\n", filepath.Join(n.dir, "admin.sock"))
	fmt.Fprintf(&b, "\n[rpc]\nlisten = \"/ip4/0.0.0.0/tcp/%d\"\nbootstrap = %s\nsecret_file = %q\ngossip_interval = \"1s\"\nping_interval = \"1s\"\nmdns = true\n",
		o.RPCPort, tomlList(o.Bootstrap), o.SecretFile)
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

func WriteSecret(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(p, []byte(RandomSecret()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func StartEntrepot(t testing.TB, host *netlab.Host, o EntOpts) *EntNode {
	t.Helper()
	bin := EntrepotBin(t)
	n := &EntNode{name: host.Name, host: host, dir: o.Dir, done: make(chan struct{})}
	if n.dir == "" {
		n.dir = filepath.Join(t.TempDir(), host.Name)
	}
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
		if t.Failed() || os.Getenv("LABE2E_LOGS") != "" {
			t.Logf("--- %s log tail ---\n%s", n.name, Tail(n.log(), 40))
		}
	})
	WaitFor(t, n.name+" healthy", 60*time.Second, func() bool {
		select {
		case <-n.done:
			t.Fatalf("%s exited: %v\n%s", n.name, n.err, Tail(n.log(), 40))
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

// ID is the node's peer ID.
func (n *EntNode) ID() string { return n.id }

// Host is the lab namespace the node runs in.
func (n *EntNode) Host() *netlab.Host { return n.host }

// Admin is the node's admin client (over its unix socket).
func (n *EntNode) Admin() *adminclient.Client { return n.admin }

// Stop sends SIGTERM and waits up to timeout, then kills; it returns how
// long the process took to exit.
func (n *EntNode) Stop(timeout time.Duration) (time.Duration, error) { return n.stop(timeout) }

func (n *EntNode) log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "node.log"))
	return string(b)
}

func (n *EntNode) stop(timeout time.Duration) (time.Duration, error) {
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

// RequireNATWired skips when the binary does not map ports for [nat] upnp
// (the daemon must pass p2p.Config.NAT): no mapping on the router and no
// natpunch line in the node's log.
func RequireNATWired(t testing.TB, n *EntNode, r *netlab.Router) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(MappingsTo(t, r, n.host)) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(n.log(), "natpunch") {
		t.Skip("labe2e: this entrepot binary does not wire [nat] upnp into the p2p host yet (p2p.Config.NAT/Expose): no mapping, no natpunch log line")
	}
	t.Fatalf("%s: [nat] upnp on but no mapping on %s after 20 s\n%s", n.name, r.Name, Tail(n.log(), 30))
}

// S3From returns an S3 client whose connections are made from inside host's namespace.
func S3From(host *netlab.Host, endpoint string, c harness.Credentials) *s3.Client {
	tr := &http.Transport{DialContext: host.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	return harness.NewS3Client(endpoint, c, &http.Client{Transport: tr, Timeout: 5 * time.Minute})
}

func PutGet(ctx context.Context, cl *s3.Client, bucket, key string, body []byte) error {
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return GetCheck(ctx, cl, bucket, key, body)
}

func GetCheck(ctx context.Context, cl *s3.Client, bucket, key string, body []byte) error {
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

// LayoutHas reports whether every node's newest layout has want storage nodes.
func LayoutHas(ctx context.Context, nodes []*EntNode, want int) bool {
	var ref string
	for _, n := range nodes {
		l, err := n.admin.Layout(ctx)
		if err != nil || len(l.Versions) == 0 {
			return false
		}
		v := l.Versions[len(l.Versions)-1]
		c := 0
		for _, x := range v.Nodes {
			if x.Capacity > 0 {
				c++
			}
		}
		if c != want || (ref != "" && v.ID != ref) {
			return false
		}
		ref = v.ID
	}
	return true
}

// PairReach reports how each node sees each other ("h1a-h2a": "direct").
func PairReach(ctx context.Context, nodes []*EntNode) (map[string]string, bool) {
	out := map[string]string{}
	names := map[string]string{}
	for _, n := range nodes {
		names[n.id] = n.name
	}
	ok := true
	for _, n := range nodes {
		st, err := n.admin.ClusterStatus(ctx)
		if err != nil {
			return out, false
		}
		for _, m := range st.Nodes {
			if m.Self || names[m.ID] == "" {
				continue
			}
			pair := []string{n.name, names[m.ID]}
			slices.Sort(pair)
			key := pair[0] + "-" + pair[1]
			if !m.Up || m.Reachability == "unreachable" || m.Reachability == "" {
				ok = false
			}
			if prev, seen := out[key]; !seen || prev == "relayed" {
				out[key] = m.Reachability
			}
		}
	}
	return out, ok && len(out) == len(nodes)*(len(nodes)-1)/2
}

func BlocksReplicated(ctx context.Context, n *EntNode) bool {
	st, err := n.admin.ClusterStatus(ctx)
	return err == nil && len(st.Blocks) > 0
}

// SkipUnlessLab skips unless the lab can run and this is a lab build.
func SkipUnlessLab(t testing.TB) {
	t.Helper()
	netlab.Skip(t)
	if !p2p.LabBuild {
		t.Skip("labe2e: build with -tags netlab (go test -tags netlab ./tests/labe2e/): the lab's WAN prefix must count as public")
	}
}

func RandomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for time.Since(t0) < d {
		if cond() {
			return time.Since(t0)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
	return 0
}

// MappingsTo returns the router's DNAT mappings to the given LAN host.
func MappingsTo(t testing.TB, r *netlab.Router, h *netlab.Host) []netlab.Mapping {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms, err := r.Mappings(ctx)
	if err != nil {
		t.Fatalf("read %s mappings: %v", r.Name, err)
	}
	var out []netlab.Mapping
	for _, m := range ms {
		if m.Internal.Addr() == h.Addr {
			out = append(out, m)
		}
	}
	return out
}
