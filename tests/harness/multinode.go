package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/daemon/model"
)

// NodeSpec is one cluster node's declared role and extras.
type NodeSpec struct {
	// Zone is the node's zone. Required.
	Zone string
	// Capacity is a config size ("1G"); "" with Gateway false means "1G".
	Capacity string
	// Gateway makes the node store nothing.
	Gateway bool
	// Tags are shown in status.
	Tags []string
	// Decommission and Replaces are written to the config as is.
	Decommission bool
	Replaces     string
	// NoSecret starts the node without the cluster secret file (it must not join).
	NoSecret bool
	// WrongSecret gives the node a different secret (it must not join).
	WrongSecret bool
}

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Bin is the entrepot binary. Required.
	Bin string
	// Dir holds node<i>/ data dirs, their logs and the secret. Required.
	Dir string
	// RF is the replication factor. Default 3.
	RF int
	// Nodes are the nodes to start; node 0 is everyone's bootstrap peer.
	Nodes []NodeSpec
	// BlockSize is the config block_size. Default "1M".
	BlockSize string
	// GossipInterval and PingInterval are short for tests. Defaults 300ms and 500ms.
	GossipInterval, PingInterval time.Duration
	// LogLevel is the nodes' log level. Default "info".
	LogLevel string
	// StartTimeout bounds each node's start. Default 30 s.
	StartTimeout time.Duration
	// Logger receives harness events. Default: discard.
	Logger *slog.Logger
}

// MultiCluster is a set of configured entrepot processes forming a cluster.
type MultiCluster struct {
	opts   ClusterOptions
	secret string

	mu    sync.Mutex
	nodes []*clusterMember
	creds Credentials
}

type clusterMember struct {
	node    *Node
	spec    NodeSpec
	rpcPort int
	id      string
	admin   *adminclient.Client
}

var _ Cluster = (*MultiCluster)(nil)

// SecretFile is the name of the cluster secret file in ClusterOptions.Dir.
const SecretFile = "cluster.secret"

// StartCluster starts node 0, then every other node bootstrapping from it,
// waits until all of them agree on a layout holding every storage node, and
// creates an access key (allowed to create buckets) known to every node.
func StartCluster(ctx context.Context, opts ClusterOptions) (*MultiCluster, error) {
	if opts.Bin == "" || opts.Dir == "" || len(opts.Nodes) == 0 {
		return nil, errors.New("start cluster: Bin, Dir and Nodes are required")
	}
	if opts.RF == 0 {
		opts.RF = 3
	}
	if opts.BlockSize == "" {
		opts.BlockSize = "1M"
	}
	if opts.GossipInterval == 0 {
		opts.GossipInterval = 300 * time.Millisecond
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 500 * time.Millisecond
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &MultiCluster{opts: opts, secret: randomHex(32)}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, SecretFile), []byte(c.secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("start cluster: write secret: %w", err)
	}
	for _, spec := range opts.Nodes {
		if _, err := c.newMember(spec); err != nil {
			c.Close(context.Background())
			return nil, err
		}
	}
	if err := c.startAll(ctx); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("%w\n%s", err, c.LogTails(20))
	}
	if err := c.makeKey(ctx); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newMember prepares a node (ports, config) without starting it.
func (c *MultiCluster) newMember(spec NodeSpec) (int, error) {
	c.mu.Lock()
	i := len(c.nodes)
	c.mu.Unlock()
	addrs, err := FreeAddrs(3)
	if err != nil {
		return 0, err
	}
	_, port, _ := strings.Cut(addrs[2], "127.0.0.1:")
	p, _ := strconv.Atoi(port)
	m := &clusterMember{spec: spec, rpcPort: p}
	dataDir := filepath.Join(c.opts.Dir, fmt.Sprintf("node%d", i))
	n, err := NewNode(NodeConfig{
		Bin: c.opts.Bin, DataDir: dataDir, S3Addr: addrs[0], AdminAddr: addrs[1],
		StartTimeout: c.opts.StartTimeout, Logger: c.opts.Logger,
		Args: func(n *Node) []string {
			path := filepath.Join(n.DataDir(), "entrepot.toml")
			if err := os.WriteFile(path, []byte(c.renderConfig(i)), 0o600); err != nil {
				c.opts.Logger.Error("write node config", "err", err)
			}
			return []string{"server", "-c", path}
		},
	})
	if err != nil {
		return 0, err
	}
	m.node = n
	m.admin, err = adminclient.New(adminclient.Options{Socket: n.AdminSocket(), Timeout: 30 * time.Second})
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, m)
	c.mu.Unlock()
	return i, nil
}

func tomlList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// renderConfig writes node i's TOML from its current spec and port.
func (c *MultiCluster) renderConfig(i int) string {
	c.mu.Lock()
	m := c.nodes[i]
	spec, port := m.spec, m.rpcPort
	var boot []string
	if i != 0 && c.nodes[0].id != "" {
		boot = append(boot, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", c.nodes[0].rpcPort, c.nodes[0].id))
	}
	c.mu.Unlock()
	dd := m.node.DataDir()
	var b strings.Builder
	fmt.Fprintf(&b, "metadata_dir = %q\ndata_dir = %q\nreplication_factor = %d\nblock_size = %q\nfsync = false\n",
		filepath.Join(dd, "meta"), filepath.Join(dd, "data"), c.opts.RF, c.opts.BlockSize)
	fmt.Fprintf(&b, "zone = %q\nhostname = \"node%d\"\ntags = %s\n", spec.Zone, i, tomlList(spec.Tags))
	if spec.Gateway {
		b.WriteString("gateway = true\n")
	} else {
		capacity := spec.Capacity
		if capacity == "" {
			capacity = "1G"
		}
		fmt.Fprintf(&b, "capacity = %q\n", capacity)
	}
	if spec.Decommission {
		b.WriteString("decommission = true\n")
	}
	if spec.Replaces != "" {
		fmt.Fprintf(&b, "replaces = %q\n", spec.Replaces)
	}
	fmt.Fprintf(&b, "\n[s3]\nlisten = %q\n\n[admin]\nsocket = %q\nlisten = %q\n", m.node.S3Addr(), m.node.AdminSocket(), m.node.AdminAddr())
	fmt.Fprintf(&b, "\n[rpc]\nlisten = \"/ip4/127.0.0.1/tcp/%d\"\nbootstrap = %s\ngossip_interval = %q\nping_interval = %q\nmdns = false\n",
		port, tomlList(boot), c.opts.GossipInterval.String(), c.opts.PingInterval.String())
	switch {
	case spec.NoSecret:
	case spec.WrongSecret:
		wrong := filepath.Join(dd, "wrong.secret")
		_ = os.WriteFile(wrong, []byte(randomHex(32)+"\n"), 0o600)
		fmt.Fprintf(&b, "secret_file = %q\n", wrong)
	default:
		fmt.Fprintf(&b, "secret_file = %q\n", filepath.Join(c.opts.Dir, SecretFile))
	}
	fmt.Fprintf(&b, "\n[log]\nlevel = %q\n", c.opts.LogLevel)
	return b.String()
}

// startAll starts node 0, learns its ID, then starts the others in parallel.
func (c *MultiCluster) startAll(ctx context.Context) error {
	if err := c.StartNode(ctx, 0); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i := 1; i < len(c.nodes); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.StartNode(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// StartNode starts (or restarts) node i and records its ID.
func (c *MultiCluster) StartNode(ctx context.Context, i int) error {
	m := c.member(i)
	if err := m.node.Start(ctx); err != nil {
		return fmt.Errorf("node %d: %w", i, err)
	}
	if m.spec.NoSecret {
		return nil
	}
	id, err := m.admin.NodeID(ctx)
	if err != nil {
		return fmt.Errorf("node %d: node id: %w", i, err)
	}
	c.mu.Lock()
	m.id = id.ID
	c.mu.Unlock()
	return nil
}

// inCluster reports whether the member's process runs with the cluster
// secret (so its cluster endpoints speak for the cluster).
func (m *clusterMember) inCluster() bool {
	return m.node.Running() && !m.spec.NoSecret && !m.spec.WrongSecret
}

func (c *MultiCluster) member(i int) *clusterMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// AddNode prepares and starts a new node bootstrapping from node 0; it
// returns its index. It does not wait for the layout.
func (c *MultiCluster) AddNode(ctx context.Context, spec NodeSpec) (int, error) {
	i, err := c.newMember(spec)
	if err != nil {
		return 0, err
	}
	return i, c.StartNode(ctx, i)
}

// SetSpec changes node i's spec; it takes effect at its next start.
func (c *MultiCluster) SetSpec(i int, spec NodeSpec) {
	c.mu.Lock()
	c.nodes[i].spec = spec
	c.mu.Unlock()
}

// Spec returns node i's spec.
func (c *MultiCluster) Spec(i int) NodeSpec {
	return c.member(i).spec
}

// NewRPCPort gives node i a new free RPC port, used at its next start.
func (c *MultiCluster) NewRPCPort(i int) (int, error) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		return 0, err
	}
	_, port, _ := strings.Cut(addrs[0], "127.0.0.1:")
	p, _ := strconv.Atoi(port)
	c.mu.Lock()
	c.nodes[i].rpcPort = p
	c.mu.Unlock()
	return p, nil
}

// ID returns node i's node ID ("" before its first start).
func (c *MultiCluster) ID(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].id
}

// Admin returns the admin client of node i (over its unix socket).
func (c *MultiCluster) Admin(i int) *adminclient.Client { return c.member(i).admin }

// Len is the number of nodes.
func (c *MultiCluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Nodes implements Cluster.
func (c *MultiCluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Node, len(c.nodes))
	for i, m := range c.nodes {
		out[i] = m.node
	}
	return out
}

// Node implements Cluster.
func (c *MultiCluster) Node(i int) *Node { return c.member(i).node }

// Credentials implements Cluster. Endpoint is node 0's.
func (c *MultiCluster) Credentials() Credentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creds
}

// Close implements Cluster: every running node is stopped in parallel.
func (c *MultiCluster) Close(ctx context.Context) error {
	nodes := c.Nodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if !n.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Stop(ctx); err != nil && !errors.Is(err, ErrNotRunning) {
				errs[i] = fmt.Errorf("node %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// storageIDs are the IDs of nodes expected in the layout: storage nodes with
// the secret, not decommissioned, and not replaced by another node.
func (c *MultiCluster) storageIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	replaced := map[string]bool{}
	for _, m := range c.nodes {
		if m.spec.Replaces != "" {
			replaced[m.spec.Replaces] = true
		}
	}
	var ids []string
	for _, m := range c.nodes {
		if m.id == "" || m.spec.Gateway || m.spec.Decommission || m.spec.NoSecret || m.spec.WrongSecret || replaced[m.id] {
			continue
		}
		ids = append(ids, m.id)
	}
	slices.Sort(ids)
	return ids
}

// WaitConverged waits until every running member reports the same newest
// layout holding exactly the expected storage nodes and, when the build
// replicates tables (TablesReplicated), until that layout is synced
// everywhere (reads use it, older versions are gone).
func (c *MultiCluster) WaitConverged(ctx context.Context, timeout time.Duration) error {
	return c.waitLayout(ctx, timeout, true)
}

// WaitLayout waits until every running member reports the same newest
// layout holding exactly the expected storage nodes, synced or not.
func (c *MultiCluster) WaitLayout(ctx context.Context, timeout time.Duration) error {
	return c.waitLayout(ctx, timeout, false)
}

func (c *MultiCluster) waitLayout(ctx context.Context, timeout time.Duration, needSync bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := c.storageIDs()
	var last string
	for {
		synced := needSync && c.TablesReplicated(ctx)
		ok, why := c.converged(ctx, want, synced)
		if ok {
			return nil
		}
		if ctx.Err() == nil || last == "" {
			last = why // a call cut by the deadline explains nothing
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster did not converge within %s: %s", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TablesReplicated reports whether the nodes run table replication (their
// status carries a tables section): only then do layout transitions finish.
func (c *MultiCluster) TablesReplicated(ctx context.Context) bool {
	st, ok := c.firstStatus(ctx)
	return ok && len(st.Tables) > 0
}

// BlocksReplicated reports whether the nodes run block replication.
func (c *MultiCluster) BlocksReplicated(ctx context.Context) bool {
	st, ok := c.firstStatus(ctx)
	return ok && len(st.Blocks) > 0
}

// firstStatus is the cluster status of the first member that runs with the
// cluster secret; false when there is none or it does not answer.
func (c *MultiCluster) firstStatus(ctx context.Context) (admin.ClusterStatus, bool) {
	for i := range c.Len() {
		m := c.member(i)
		if !m.inCluster() {
			continue
		}
		st, err := m.admin.ClusterStatus(ctx)
		return st, err == nil
	}
	return admin.ClusterStatus{}, false
}

func (c *MultiCluster) converged(ctx context.Context, want []string, synced bool) (bool, string) {
	var ref string
	for i := range c.Len() {
		m := c.member(i)
		if !m.inCluster() {
			continue
		}
		l, err := m.admin.Layout(ctx)
		if err != nil {
			return false, fmt.Sprintf("node %d: %v", i, err)
		}
		if len(l.Versions) == 0 {
			return false, fmt.Sprintf("node %d has no layout", i)
		}
		if synced && len(l.Versions) != 1 {
			return false, fmt.Sprintf("node %d has %d live layouts (transition running)", i, len(l.Versions))
		}
		v := l.Versions[len(l.Versions)-1]
		var ids []string
		for _, n := range v.Nodes {
			if n.Capacity > 0 {
				ids = append(ids, n.ID)
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			return false, fmt.Sprintf("node %d layout %s has storage nodes %v, want %v", i, v.ID, ids, want)
		}
		if ref == "" {
			ref = v.ID
		} else if v.ID != ref {
			return false, fmt.Sprintf("node %d has layout %s, node 0..%d have %s", i, v.ID, i-1, ref)
		}
	}
	return true, ""
}

// makeKey creates an access key on node 0 and imports it on the others
// (a replicated key table already has it: AccessKeyExists is fine).
func (c *MultiCluster) makeKey(ctx context.Context) error {
	k, err := c.Admin(0).CreateKey(ctx, admin.KeyCreateRequest{Name: "cluster-test", CanCreateBucket: true})
	if err != nil {
		return fmt.Errorf("create key on node 0: %w", err)
	}
	for i := 1; i < c.Len(); i++ {
		m := c.member(i)
		if m.spec.NoSecret || m.spec.WrongSecret {
			continue
		}
		_, err := m.admin.ImportKey(ctx, admin.KeyImportRequest{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, Name: "cluster-test", CanCreateBucket: true})
		if err != nil && !errors.Is(err, model.ErrAccessKeyExists) {
			return fmt.Errorf("import key on node %d: %w", i, err)
		}
	}
	c.mu.Lock()
	c.creds = Credentials{Endpoint: c.nodes[0].node.Endpoint(), Region: "us-east-1", AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}
	c.mu.Unlock()
	return nil
}

// LogTails returns the last lines of every node's log.
func (c *MultiCluster) LogTails(lines int) string {
	var b strings.Builder
	for i, n := range c.Nodes() {
		fmt.Fprintf(&b, "--- node %d log tail (%s) ---\n%s\n", i, n.LogPath(), n.LogTail(lines))
	}
	return b.String()
}

// CredentialsFor returns the credentials with node i's endpoint.
func (c *MultiCluster) CredentialsFor(i int) Credentials {
	cr := c.Credentials()
	cr.Endpoint = c.Node(i).Endpoint()
	return cr
}

// Status returns node i's cluster status.
func (c *MultiCluster) Status(ctx context.Context, i int) (admin.ClusterStatus, error) {
	return c.Admin(i).ClusterStatus(ctx)
}

// Layout returns node i's layout.
func (c *MultiCluster) Layout(ctx context.Context, i int) (admin.LayoutInfo, error) {
	return c.Admin(i).Layout(ctx)
}

// StartClusterT starts a cluster in t.TempDir(), stops it at cleanup and,
// when t failed, logs the tail of every node's output.
func StartClusterT(t TB, opts ClusterOptions) *MultiCluster {
	t.Helper()
	return startT(t, &opts.Bin, &opts.Dir, "cluster",
		func(ctx context.Context) (*MultiCluster, error) { return StartCluster(ctx, opts) },
		func(c *MultiCluster) {
			for i, n := range c.Nodes() {
				t.Logf("--- node %d log tail (%s) ---\n%s", i, n.LogPath(), n.LogTail(40))
			}
		})
}
