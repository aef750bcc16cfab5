package table

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/db"
	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/daemon/rpc"
)

// Multi-node tests: real rpc over loopback libp2p hosts, one db per node in
// t.TempDir(), and a test-controlled cluster view (layouts and acks).

const testSecret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// rschema is a LWW register table with a configurable id; its Hook counts
// the entries that became live on this node (like block references).
type rschema struct {
	id   db.TableID
	live *atomic.Int64
}

func (s rschema) Table() db.TableID            { return s.id }
func (rschema) Encode(v reg) ([]byte, error)   { return json.Marshal(v) }
func (rschema) Timestamp(v reg) uint64         { return v.TS }
func (rschema) Tombstone(_ reg, ts uint64) reg { return reg{TS: ts, Del: true} }
func (rschema) IsTombstone(v reg) bool         { return v.Del }
func (rschema) Merge(a, b reg) reg             { return regSchema{}.Merge(a, b) }
func (rschema) Decode(b []byte) (reg, error)   { var v reg; return v, json.Unmarshal(b, &v) }

// Summary keeps the value's length only (RangeSummary tests see it).
func (rschema) Summary(v reg) reg { v.Val = fmt.Sprintf("summary:%d", len(v.Val)); return v }
func (s rschema) Updated(_ *db.Batch, _, _ string, old reg, hadOld bool, merged reg) error {
	was, is := hadOld && !old.Del, !merged.Del
	switch {
	case is && !was:
		s.live.Add(1)
	case was && !is:
		s.live.Add(-1)
	}
	return nil
}

// fakeCluster stands for cluster.Manager: live layouts, acks, read switch.
type fakeCluster struct {
	mu      sync.Mutex
	rf      int
	layouts []*layout.Layout
	acks    map[string]uint64
	hold    map[string]bool // acks of these nodes are recorded but not applied
	held    map[string]uint64
	synced  map[string][]uint64 // every MarkSynced call, per node
}

func newFakeCluster(rf int) *fakeCluster {
	return &fakeCluster{rf: rf, acks: map[string]uint64{}, hold: map[string]bool{}, held: map[string]uint64{}, synced: map[string][]uint64{}}
}

func (c *fakeCluster) setRoles(t *testing.T, roles map[string]layout.Role) *layout.Layout {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var prev *layout.Layout
	if n := len(c.layouts); n > 0 {
		prev = c.layouts[n-1]
	}
	l, err := layout.Compute(prev, roles, c.rf)
	if err != nil {
		t.Fatal(err)
	}
	c.layouts = append(c.layouts, l)
	c.pruneLocked()
	return l
}

func (c *fakeCluster) readIndexLocked() int {
	for i := len(c.layouts) - 1; i > 0; i-- {
		ok := true
		for _, n := range c.layouts[i].Nodes {
			if !n.Role.Gateway() && c.acks[n.ID] < c.layouts[i].Version {
				ok = false
			}
		}
		if ok {
			return i
		}
	}
	return 0
}

func (c *fakeCluster) pruneLocked() {
	if i := c.readIndexLocked(); i > 0 {
		c.layouts = append([]*layout.Layout{}, c.layouts[i:]...)
	}
}

func (c *fakeCluster) view(self string) func() cluster.View {
	return func() cluster.View {
		c.mu.Lock()
		defer c.mu.Unlock()
		v := cluster.View{Self: self, RF: c.rf, Layouts: append([]*layout.Layout{}, c.layouts...), Acks: map[string]uint64{}}
		for k, a := range c.acks {
			v.Acks[k] = a
		}
		if len(c.layouts) > 0 {
			v.Read = c.layouts[c.readIndexLocked()]
		}
		return v
	}
}

func (c *fakeCluster) markSynced(self string) func(uint64) {
	return func(ver uint64) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.synced[self] = append(c.synced[self], ver)
		if c.hold[self] {
			c.held[self] = max(c.held[self], ver)
			return
		}
		if ver > c.acks[self] {
			c.acks[self] = ver
		}
		c.pruneLocked()
	}
}

func (c *fakeCluster) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.hold, id)
	if c.held[id] > c.acks[id] {
		c.acks[id] = c.held[id]
	}
	c.pruneLocked()
}

func (c *fakeCluster) liveCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.layouts)
}

// tnode is one cluster member.
type tnode struct {
	dir, id string
	host    *p2p.Host
	rpc     *rpc.Node
	d       *db.DB
	live    *atomic.Int64
	sh      *Local[reg] // sharded table (TableObject)
	fc      *Local[reg] // full-copy table (TableBucket)
	rep     *Replicator
	shR     *Replicated[reg]
	fcR     *Replicated[reg]
	cancel  context.CancelFunc
	done    chan struct{}
}

type testNet struct {
	t     *testing.T
	c     *fakeCluster
	nodes []*tnode
	now   atomic.Int64          // ms; 0 = real clock
	reg   prometheus.Registerer // for the next node added (nil = none)
}

func newTestNet(t *testing.T, rf int) *testNet {
	return &testNet{t: t, c: newFakeCluster(rf)}
}

func (n *testNet) clock() time.Time {
	if ms := n.now.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Now()
}

// add starts a node (dir "" = a new one) and links every host.
func (n *testNet) add(dir string) *tnode {
	t := n.t
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	k, err := p2p.ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(context.Background(), p2p.Config{
		IdentityFile: filepath.Join(dir, "node.key"), Secret: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := rpc.New(rpc.Config{Host: h.Libp2p(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(filepath.Join(dir, "db"), db.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	tn := &tnode{dir: dir, id: h.ID().String(), host: h, rpc: r, d: d, live: new(atomic.Int64)}
	tn.sh = NewLocal[reg](d, rschema{id: db.TableObject, live: tn.live})
	tn.fc = NewLocal[reg](d, rschema{id: db.TableBucket, live: new(atomic.Int64)})
	tn.rep, err = NewReplicator(ReplicatorConfig{RPC: r, View: n.c.view(tn.id), MarkSynced: n.c.markSynced(tn.id),
		ShardedSyncInterval: time.Hour, FullCopySyncInterval: time.Hour, TombstoneGCDelay: time.Millisecond,
		CallTimeout: 3 * time.Second, Now: n.clock, Logger: testLogger(), Registerer: n.reg})
	if err != nil {
		t.Fatal(err)
	}
	tn.shR = Replicate(tn.rep, tn.sh, Sharded)
	tn.fcR = Replicate(tn.rep, tn.fc, FullCopy)
	n.nodes = append(n.nodes, tn)
	n.link()
	t.Cleanup(func() { tn.stop() })
	return tn
}

// start runs the node's Replicator in the background.
func (tn *tnode) start() {
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel, tn.done = cancel, make(chan struct{})
	go func() {
		defer close(tn.done)
		tn.rep.Run(ctx)
	}()
}

func (tn *tnode) stop() {
	if tn.host == nil {
		return
	}
	if tn.cancel != nil {
		tn.cancel()
		<-tn.done
		tn.cancel = nil
	}
	tn.host.Close()
	tn.d.Close()
	tn.host = nil
}

// restart stops a node and starts it again with the same identity and db.
func (n *testNet) restart(tn *tnode) *tnode {
	tn.stop()
	for i, x := range n.nodes {
		if x == tn {
			n.nodes = append(n.nodes[:i], n.nodes[i+1:]...)
		}
	}
	nt := n.add(tn.dir)
	if nt.id != tn.id {
		n.t.Fatal("identity changed on restart")
	}
	return nt
}

func (n *testNet) link() {
	for _, a := range n.nodes {
		for _, b := range n.nodes {
			if a != b && a.host != nil && b.host != nil {
				a.host.Libp2p().Peerstore().AddAddrs(b.host.Libp2p().ID(), b.host.Libp2p().Addrs(), time.Hour)
			}
		}
	}
}

// layoutOf computes a layout where each node sits in its own zone.
func (n *testNet) layoutOf(nodes ...*tnode) *layout.Layout {
	roles := map[string]layout.Role{}
	for i, tn := range nodes {
		roles[tn.id] = layout.Role{Zone: fmt.Sprintf("z%d", i), Capacity: 1 << 40}
	}
	return n.c.setRoles(n.t, roles)
}

func (n *testNet) node(id string) *tnode {
	for _, tn := range n.nodes {
		if tn.id == id {
			return tn
		}
	}
	return nil
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %s", what, last)
}

// rootsEqual compares the Merkle roots of every partition across the
// replicas of the read layout (full-copy: across all nodes).
func (n *testNet) rootsEqual(name string) (bool, string) {
	v := n.c.view("")()
	roots := map[string]map[uint8][32]byte{}
	for _, tn := range n.nodes {
		r, err := tn.rep.MerkleRoots(name)
		if err != nil {
			return false, err.Error()
		}
		roots[tn.id] = r
	}
	for p := range 256 {
		var ids []string
		if name == "bucket" {
			for _, tn := range n.nodes {
				ids = append(ids, tn.id)
			}
		} else {
			ids = v.ReadNodes(uint8(p))
		}
		for _, id := range ids[1:] {
			if roots[id][uint8(p)] != roots[ids[0]][uint8(p)] {
				return false, fmt.Sprintf("%s partition %d differs between %s and %s", name, p, short(ids[0]), short(id))
			}
		}
	}
	return true, ""
}

func testLogger() *slog.Logger {
	if os.Getenv("TABLE_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func keyName(i int) (pk, sk string) { return fmt.Sprintf("bucket%d", i%7), fmt.Sprintf("key%04d", i) }
