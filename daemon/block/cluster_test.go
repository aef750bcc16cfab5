package block

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/db"
	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/daemon/rpc"
)

const testSecret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// sim is the cluster state the test nodes see.
type sim struct {
	mu      sync.Mutex
	rf      int
	roles   map[string]cluster.RoleEntry
	layouts []*layout.Layout
	nodes   []*tnode
}

func (c *sim) view(self string) cluster.View {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := cluster.View{Self: self, RF: c.rf, Layouts: slices.Clone(c.layouts), Roles: c.roles}
	if len(c.layouts) > 0 {
		v.Read = c.layouts[0]
	}
	return v
}

// relayout computes a new layout from the declared roles; keep says whether
// the previous versions stay live (a transition) or are dropped.
func (c *sim) relayout(t *testing.T, keep bool) *layout.Layout {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	roles := map[string]layout.Role{}
	for id, e := range c.roles {
		roles[id] = e.Role
	}
	var prev *layout.Layout
	if n := len(c.layouts); n > 0 {
		prev = c.layouts[n-1]
	}
	l, err := layout.Compute(prev, roles, c.rf)
	if err != nil {
		t.Fatal(err)
	}
	if keep {
		c.layouts = append(c.layouts, l)
	} else {
		c.layouts = []*layout.Layout{l}
	}
	return l
}

func (c *sim) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.layouts = c.layouts[len(c.layouts)-1:]
}

// tnode is one in-process node: libp2p host, rpc, database, block store.
type tnode struct {
	c     *sim
	dir   string
	id    string
	zone  string
	cap   int64
	rtt   func(string) time.Duration
	tweak func(*ReplicationConfig)

	host *p2p.Host
	rpc  *rpc.Node
	db   *db.DB
	st   *Store
}

func newSim(rf int) *sim { return &sim{rf: rf, roles: map[string]cluster.RoleEntry{}} }

func (c *sim) add(t *testing.T, zone string, capacity int64) *tnode {
	t.Helper()
	return c.addNode(t, &tnode{c: c, dir: t.TempDir(), zone: zone, cap: capacity})
}

func (c *sim) addTweaked(t *testing.T, zone string, tweak func(*ReplicationConfig)) *tnode {
	t.Helper()
	return c.addNode(t, &tnode{c: c, dir: t.TempDir(), zone: zone, cap: 1 << 30, tweak: tweak})
}

func (c *sim) addNode(t *testing.T, n *tnode) *tnode {
	t.Helper()
	n.start(t)
	c.mu.Lock()
	c.roles[n.id] = cluster.RoleEntry{Role: layout.Role{Zone: n.zone, Capacity: n.cap}}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.link()
	t.Cleanup(n.stop)
	return n
}

func (n *tnode) start(t *testing.T) {
	t.Helper()
	k, err := p2p.ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(context.Background(), p2p.Config{
		IdentityFile: filepath.Join(n.dir, "node.key"), Secret: k,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.host = h
	n.id = h.ID().String()
	if n.rpc, err = rpc.New(rpc.Config{Host: h.Libp2p(), Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if n.db, err = db.Open(filepath.Join(n.dir, "meta"), db.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if n.st, err = Open(Config{Dir: filepath.Join(n.dir, "data"), DB: n.db, NoFsync: true, GCDelay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	cfg := ReplicationConfig{
		RPC: n.rpc, View: func() cluster.View { return n.c.view(n.id) }, RTT: n.rtt,
		ResyncRetry: 200 * time.Millisecond, MissingDelay: 100 * time.Millisecond,
		LayoutPoll: 100 * time.Millisecond, CallTimeout: 15 * time.Second,
		Registerer: prometheus.NewRegistry(), ScrubInterval: -1,
	}
	if n.tweak != nil {
		n.tweak(&cfg)
	}
	if err := n.st.EnableReplication(cfg); err != nil {
		t.Fatal(err)
	}
}

// stop is a process exit: everything closes, the data dirs stay.
func (n *tnode) stop() {
	if n.st == nil {
		return
	}
	n.st.Close()
	n.db.Close()
	n.host.Close()
	n.st = nil
}

// link tells every running node the addresses of the others.
func (c *sim) link() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b && a.st != nil && b.st != nil {
				a.host.Libp2p().Peerstore().AddAddrs(b.host.Libp2p().ID(), b.host.Libp2p().Addrs(), time.Hour)
			}
		}
	}
}

func (c *sim) byID(id string) *tnode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func randBlock(t *testing.T, size int) []byte {
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func has(t *testing.T, n *tnode, h Hash) bool {
	t.Helper()
	ok, err := n.st.Has(h)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// holders lists the running nodes storing h.
func (c *sim) holders(t *testing.T, h Hash) []string {
	var out []string
	for _, n := range c.nodes {
		if n.st != nil && has(t, n, h) {
			out = append(out, n.id)
		}
	}
	slices.Sort(out)
	return out
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// ref records one reference to h on node n, as the block_ref hook does.
func ref(t *testing.T, n *tnode, h Hash) {
	t.Helper()
	b := n.db.NewBatch()
	if err := n.st.AdjustRef(b, h, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := n.db.Write(b, false); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, n *tnode, data []byte) Hash {
	t.Helper()
	h, _, err := n.st.Write(context.Background(), data)
	if err != nil {
		t.Fatalf("write via %s: %v", shortID(n.id), err)
	}
	n.st.Unpin(h)
	return h
}

func TestWriteReachesReplicasAndGatewayStoresNothing(t *testing.T) {
	c := newSim(3)
	for i := range 4 {
		c.add(t, fmt.Sprintf("z%d", i%3), 1<<30)
	}
	gw := c.add(t, "z0", 0)
	c.relayout(t, false)
	v := c.view(gw.id)
	for i := range 12 {
		via := c.nodes[i%len(c.nodes)]
		data := randBlock(t, 1000+i)
		h := write(t, via, data)
		_, want := owners(v, h)
		if len(want) != 3 || slices.Contains(want, gw.id) {
			t.Fatalf("owners of %s = %v, want 3 storage nodes", h, want)
		}
		eventually(t, 5*time.Second, "block on its RF replicas", func() bool { return slices.Equal(c.holders(t, h), want) })
		for _, n := range c.nodes {
			got, err := n.st.Read(context.Background(), h)
			if err != nil {
				t.Fatalf("read %s via %s: %v", h, shortID(n.id), err)
			}
			if string(got) != string(data) {
				t.Fatalf("read via %s: wrong data", shortID(n.id))
			}
			n.st.PutBuffer(got)
		}
	}
	if has := c.holders(t, Sum([]byte("never written"))); len(has) != 0 {
		t.Fatal("holders of an unwritten block")
	}
	if st := gw.st.Status(); !st.Replicating || st.ResyncQueue != 0 {
		t.Fatalf("gateway status %+v", st)
	}
}

func TestWriteQuorumThenResyncAfterRestart(t *testing.T) {
	c := newSim(3)
	// The writer's retry backoff is an hour: only its persisted queue, the
	// retry at start and the probe of failed peers can deliver in time.
	a := c.addNode(t, &tnode{c: c, dir: t.TempDir(), zone: "z0", cap: 1 << 30,
		tweak: func(cfg *ReplicationConfig) { cfg.ResyncRetry = time.Hour }})
	b := c.add(t, "z1", 1<<30)
	down := c.add(t, "z2", 1<<30)
	c.relayout(t, false)
	down.stop()

	start := time.Now()
	var hs []Hash
	for i := range 5 {
		hs = append(hs, write(t, a, randBlock(t, 5000+i)))
	}
	t.Logf("5 writes with one replica down: %v", time.Since(start))
	for _, h := range hs {
		if !has(t, a, h) || !has(t, b, h) {
			t.Fatalf("block %s not on the two live replicas", h)
		}
	}
	if q := a.st.Status().ResyncQueue; q == 0 {
		t.Fatal("no resync queued for the down replica")
	}
	eventually(t, 10*time.Second, "first retries failing", func() bool { return a.st.Status().ErroredBlocks == int64(len(hs)) })

	// The writer restarts (process level): its queue is persisted.
	a.stop()
	a.start(t)
	if q := a.st.Status().ResyncQueue; q == 0 {
		t.Fatal("resync queue lost across restart")
	}
	// Only b and the writer know; b gets no queue entry, so this tests a's queue.
	down.start(t)
	c.link()
	eventually(t, 20*time.Second, "down replica receiving the blocks", func() bool {
		for _, h := range hs {
			if !has(t, down, h) {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "queue drained", func() bool { return a.st.Status().ResyncQueue == 0 })
	if e := a.st.Status().ErroredBlocks; e != 0 {
		t.Fatalf("errored blocks after recovery: %d", e)
	}
}

func TestReadFallsBackAndPrefersNear(t *testing.T) {
	c := newSim(3)
	var nodes []*tnode
	for i := range 3 {
		nodes = append(nodes, c.add(t, fmt.Sprintf("z%d", i), 1<<30))
	}
	near := nodes[2]
	gw := &tnode{c: c, dir: t.TempDir(), zone: "z0", rtt: func(id string) time.Duration {
		if id == near.id {
			return time.Millisecond
		}
		return 50 * time.Millisecond
	}}
	gw.start(t)
	t.Cleanup(gw.stop)
	c.mu.Lock()
	c.roles[gw.id] = cluster.RoleEntry{Role: layout.Role{Zone: "z0"}}
	c.nodes = append(c.nodes, gw)
	c.mu.Unlock()
	c.link()
	c.relayout(t, false)

	data := randBlock(t, 64<<10)
	h := write(t, gw, data)
	eventually(t, 5*time.Second, "3 replicas", func() bool { return len(c.holders(t, h)) == 3 })

	r := gw.st.repl.Load()
	order := r.readOrder(c.view(gw.id), h)
	if order[0] != nodes[0].id || order[1] != near.id {
		t.Fatalf("read order %v: want same zone (%s) then lowest RTT (%s)", order, shortID(nodes[0].id), shortID(near.id))
	}
	if _, err := gw.st.Read(context.Background(), Sum([]byte("absent"))); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("read of a block no replica has: %v, want ErrNotFound", err)
	}
	nodes[0].stop()
	near.stop()
	got, err := gw.st.Read(context.Background(), h)
	if err != nil {
		t.Fatalf("read with the two preferred replicas down: %v", err)
	}
	if string(got) != string(data) {
		t.Fatal("wrong data")
	}
	gw.st.PutBuffer(got)
	nodes[1].stop()
	if _, err := gw.st.Read(context.Background(), h); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Fatalf("read with every replica down: %v, want ErrUnavailable", err)
	}
}

func TestScrubRepairsFromPeers(t *testing.T) {
	c := newSim(2)
	a := c.add(t, "z0", 1<<30)
	b := c.add(t, "z1", 1<<30)
	c.relayout(t, false)
	corrupt := write(t, a, randBlock(t, 100<<10))
	missing := write(t, a, randBlock(t, 100<<10))
	fine := write(t, a, randBlock(t, 100<<10))
	for _, h := range []Hash{corrupt, missing, fine} {
		eventually(t, 5*time.Second, "2 replicas", func() bool { return len(c.holders(t, h)) == 2 })
		ref(t, b, h)
	}
	p, _, err := b.st.stat(corrupt)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, p, headerLen+500)
	b.st.removeFiles(missing)

	rep, err := b.st.ScrubNow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := ScrubReport{Checked: 3, Missing: 1, Corrupt: 1, Repaired: 2}
	rep.Bytes = 0
	if rep != want {
		t.Fatalf("scrub report %+v, want %+v", rep, want)
	}
	for _, h := range []Hash{corrupt, missing, fine} {
		if err := b.st.Verify(context.Background(), h); err != nil {
			t.Fatalf("after scrub: %v", err)
		}
	}
	if st := b.st.Status().Scrub; st.Running || st.Checked != 3 || st.Total != 3 || st.Progress != 1 {
		t.Fatalf("scrub status %+v", st)
	}
}

func TestLayoutChangeMovesBlocksThenOldOwnerDeletes(t *testing.T) {
	c := newSim(2)
	a := c.add(t, "z0", 1<<30)
	b := c.add(t, "z1", 1<<30)
	c.relayout(t, false)
	var hs []Hash
	for i := range 40 {
		h := write(t, a, randBlock(t, 20<<10+i))
		hs = append(hs, h)
	}
	for _, h := range hs {
		eventually(t, 5*time.Second, "2 replicas", func() bool { return len(c.holders(t, h)) == 2 })
		ref(t, a, h)
		ref(t, b, h)
	}
	// A third node joins and stays down while the old layout is dropped.
	n := c.add(t, "z2", 1<<30)
	n.stop()
	c.relayout(t, true)
	v := c.view(a.id)
	moved := 0
	for _, h := range hs {
		if _, all := owners(v, h); slices.Contains(all, n.id) {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no block moves to the new node; test needs more blocks")
	}
	c.prune()
	time.Sleep(1500 * time.Millisecond) // several resync rounds with the new owner unreachable
	for _, h := range hs {
		if len(c.holders(t, h)) == 0 {
			t.Fatalf("block %s deleted before its new owner had it", h)
		}
	}
	n.start(t)
	c.link()
	start := time.Now()
	v = c.view(a.id)
	eventually(t, 60*time.Second, "blocks exactly on their new owners", func() bool {
		for _, h := range hs {
			_, want := owners(v, h)
			if !slices.Equal(c.holders(t, h), want) {
				return false
			}
		}
		return true
	})
	t.Logf("%d of %d blocks moved in %v", moved, len(hs), time.Since(start))
	for _, x := range []*tnode{a, b} {
		if st := x.st.Status().Rebalance; st.BytesTotal == 0 || st.Progress < 1 || st.Active {
			t.Fatalf("rebalance status of %s: %+v", shortID(x.id), st)
		}
	}
}

func TestWriteMemoryBounded(t *testing.T) {
	const bufMax = 8 << 20
	c := newSim(3)
	var nodes []*tnode
	for i := range 3 {
		n := &tnode{c: c, dir: t.TempDir(), zone: fmt.Sprintf("z%d", i), tweak: func(cfg *ReplicationConfig) { cfg.BufferMax = bufMax }}
		n.start(t)
		t.Cleanup(n.stop)
		c.mu.Lock()
		c.roles[n.id] = cluster.RoleEntry{Role: layout.Role{Zone: n.zone, Capacity: 1 << 30}}
		c.nodes = append(c.nodes, n)
		c.mu.Unlock()
		nodes = append(nodes, n)
	}
	c.link()
	c.relayout(t, false)
	// The third replica is slow: every put waits 100 ms.
	slow := nodes[2]
	sr := slow.st.repl.Load()
	slow.rpc.Handle(Service, "put", func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) {
		time.Sleep(100 * time.Millisecond)
		return sr.handlePut(ctx, from, p)
	})
	w := nodes[0]
	wr := w.st.repl.Load()
	var peak int64
	var heapPeak uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBase := ms.HeapInuse
	stop := make(chan struct{})
	var mon sync.WaitGroup
	mon.Add(1)
	go func() {
		defer mon.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			peak = max(peak, wr.budget.used())
			if i%10 == 0 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heapPeak = max(heapPeak, ms.HeapInuse)
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var hs []Hash
	start := time.Now()
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 4 {
				data := make([]byte, 1<<20)
				data[0], data[1] = byte(i), byte(j)
				h, _, err := w.st.Write(context.Background(), data)
				if err != nil {
					t.Error(err)
					return
				}
				w.st.Unpin(h)
				mu.Lock()
				hs = append(hs, h)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	eventually(t, 60*time.Second, "slow replica catching up", func() bool { return wr.budget.used() == 0 })
	close(stop)
	mon.Wait()
	growth := int64(heapPeak) - int64(heapBase)
	t.Logf("64 x 1 MiB writes by 16 writers in %v; peak buffered %d KiB of %d KiB; heap in use grew by at most %d MiB (3 nodes in this process)",
		el, peak>>10, bufMax>>10, growth>>20)
	if growth > 256<<20 {
		t.Fatalf("heap grew by %d MiB for 16 writers of 1 MiB blocks", growth>>20)
	}
	if peak > bufMax {
		t.Fatalf("buffered %d bytes, over the %d limit", peak, bufMax)
	}
	if peak == 0 {
		t.Fatal("nothing buffered: the slow replica did not slow anything")
	}
	for _, h := range hs {
		if !has(t, slow, h) {
			t.Fatalf("slow replica lacks %s", h)
		}
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
