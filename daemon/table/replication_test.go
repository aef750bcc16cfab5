package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/prometheus/client_golang/prometheus"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNoLayoutIsUnavailable(t *testing.T) {
	n := newTestNet(t, 3)
	a := n.add("")
	ctx := ctxT(t, 10*time.Second)
	if _, err := a.shR.Insert(ctx, Entry[reg]{PK: "b", SK: "k", Value: reg{TS: 1, Val: "x"}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("insert without layout: %v, want ErrUnavailable", err)
	}
	if _, _, err := a.shR.Get(ctx, "b", "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("get without layout: %v, want ErrUnavailable", err)
	}
	if err := a.rep.SyncNow(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sync without layout: %v, want ErrUnavailable", err)
	}
}

// One replica down: writes reach W = 2 of 3, reads through another
// coordinator see them, the downed replica catches up by anti-entropy and
// its hook (reference counting) ran for every entry it received.
func TestQuorumWriteOneDownThenCatchUp(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c := n.add(""), n.add(""), n.add("")
	n.layoutOf(a, b, c)
	ctx := ctxT(t, 60*time.Second)
	c.stop()
	const N = 150
	for i := range N {
		pk, sk := keyName(i)
		if _, err := a.shR.Insert(ctx, Entry[reg]{PK: pk, SK: sk, Value: reg{TS: 10, Val: fmt.Sprint(i)}}); err != nil {
			t.Fatalf("insert %d with one replica down: %v", i, err)
		}
	}
	// Read-after-write through another coordinator.
	for i := range N {
		pk, sk := keyName(i)
		v, ok, err := b.shR.Get(ctx, pk, sk)
		if err != nil || !ok || v.Val != fmt.Sprint(i) {
			t.Fatalf("get %d via b: %+v %v %v", i, v, ok, err)
		}
	}
	// Listing through b: merged from a read quorum, cut to the limit.
	es, err := b.shR.Range(ctx, "bucket3", "", 5)
	if err != nil || len(es) != 5 || es[0].SK != "key0003" || es[4].SK != "key0031" {
		t.Fatalf("range: %v %v", es, err)
	}
	// Two replicas down: no quorum.
	b.stop()
	if _, err := a.shR.Insert(ctx, Entry[reg]{PK: "x", SK: "y", Value: reg{TS: 1}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("insert with 2 of 3 down: %v, want ErrUnavailable", err)
	}
	b = n.restart(b)
	c = n.restart(c)
	if c.live.Load() != 0 {
		t.Fatal("restarted replica has live entries before sync")
	}
	// c pulls everything; a also holds the entry of the failed write
	// (applied locally before the quorum failed), which b then receives too.
	for _, x := range []*tnode{c, a, b} {
		if err := x.rep.SyncNow(ctx); err != nil {
			t.Fatalf("sync on %s: %v", short(x.id), err)
		}
	}
	waitUntil(t, "equal Merkle roots", 10*time.Second, func() (bool, string) { return n.rootsEqual("object") })
	if got := c.live.Load(); got != N+1 {
		t.Fatalf("hook on c counted %d live entries after catch-up, want %d", got, N+1)
	}
	st := c.rep.Status()
	var obj TableStatus
	for _, ts := range st.Tables {
		if ts.Name == "object" {
			obj = ts
		}
	}
	if obj.SyncItemsReceived != N+1 || obj.Items != N+1 || st.SyncedVersion != 1 {
		t.Fatalf("status after catch-up: %+v (synced %d)", obj, st.SyncedVersion)
	}
}

// Read repair: a replica holding a stale value is rewritten after a read.
func TestReadRepair(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c := n.add(""), n.add(""), n.add("")
	n.layoutOf(a, b, c)
	ctx := ctxT(t, 30*time.Second)
	if _, err := a.shR.Insert(ctx, Entry[reg]{PK: "p", SK: "s", Value: reg{TS: 5, Val: "old"}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "all replicas have the first write", 5*time.Second, func() (bool, string) {
		for _, x := range n.nodes {
			if v, ok, _ := x.sh.Get(ctx, "p", "s"); !ok || v.Val != "old" {
				return false, "missing on " + short(x.id)
			}
		}
		return true, ""
	})
	// A newer value lands on one replica only (as if the others missed it).
	if _, err := b.sh.Insert(ctx, Entry[reg]{PK: "p", SK: "s", Value: reg{TS: 9, Val: "new"}}); err != nil {
		t.Fatal(err)
	}
	// Reads from every coordinator until one read quorum includes b; every
	// answer must be "new" or "old", never anything else, and eventually
	// every replica holds "new".
	waitUntil(t, "read repair to reach every replica", 10*time.Second, func() (bool, string) {
		for _, x := range n.nodes {
			v, ok, err := x.shR.Get(ctx, "p", "s")
			if err != nil || !ok || (v.Val != "new" && v.Val != "old") {
				t.Fatalf("get: %+v %v %v", v, ok, err)
			}
		}
		for _, x := range n.nodes {
			if v, _, _ := x.sh.Get(ctx, "p", "s"); v.Val != "new" {
				return false, "stale on " + short(x.id)
			}
		}
		return true, ""
	})
	var repairs int64
	for _, x := range n.nodes {
		for _, ts := range x.rep.Status().Tables {
			repairs += ts.ReadRepairs
		}
	}
	if repairs < 2 {
		t.Fatalf("%d read repairs counted, want >= 2", repairs)
	}
}

// Concurrent writes of the same entries through different coordinators
// converge to the same merged value everywhere.
func TestConcurrentWritesConverge(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c := n.add(""), n.add(""), n.add("")
	n.layoutOf(a, b, c)
	ctx := ctxT(t, 60*time.Second)
	var wg sync.WaitGroup
	for w, x := range n.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				pk, sk := keyName(i)
				ts := uint64(100 + (i*7+w*3)%11)
				if _, err := x.shR.Insert(ctx, Entry[reg]{PK: pk, SK: sk, Value: reg{TS: ts, Val: fmt.Sprintf("w%d", w)}}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, x := range n.nodes {
		if err := x.rep.SyncNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "equal Merkle roots", 10*time.Second, func() (bool, string) { return n.rootsEqual("object") })
	for i := range 40 {
		pk, sk := keyName(i)
		var want reg
		for w := range 3 {
			want = regSchema{}.Merge(want, reg{TS: uint64(100 + (i*7+w*3)%11), Val: fmt.Sprintf("w%d", w)})
		}
		for _, x := range n.nodes {
			if v, ok, _ := x.shR.Get(ctx, pk, sk); !ok || v != want {
				t.Fatalf("entry %d via %s = %+v, want %+v", i, short(x.id), v, want)
			}
		}
	}
}

// Adding a node: writes reach both layouts, reads stay on the old one until
// every node synced, the new owner pulls its partitions and calls
// MarkSynced, and old owners delete what they lost only after the switch.
// A reader checks throughout that nothing acknowledged is missing or stale.
func TestLayoutChangeAddNode(t *testing.T) {
	n := newTestNet(t, 2)
	a, b, c := n.add(""), n.add(""), n.add("")
	l1 := n.layoutOf(a, b, c)
	ctx := ctxT(t, 120*time.Second)
	const N = 300
	acked := make([]uint64, N) // newest acknowledged TS per key
	var amu sync.Mutex
	stopRead := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stopRead:
			return true
		default:
			return false
		}
	}
	write := func(x *tnode, i int, ts uint64) {
		pk, sk := keyName(i)
		if _, err := x.shR.Insert(ctx, Entry[reg]{PK: pk, SK: sk, Value: reg{TS: ts, Val: fmt.Sprint(ts)}}); err != nil {
			if stopped() {
				return // the test is ending: nodes are closing
			}
			t.Errorf("write %d: %v", i, err)
			return
		}
		amu.Lock()
		acked[i] = max(acked[i], ts)
		amu.Unlock()
	}
	for i := range N {
		write(n.nodes[i%3], i, 1)
	}
	for _, x := range n.nodes {
		x.start()
	}
	var reads, bad int64
	var rwg sync.WaitGroup
	var stopOnce sync.Once
	stopAll := func() {
		stopOnce.Do(func() { close(stopRead) })
		rwg.Wait()
	}
	t.Cleanup(stopAll) // also when a check below fails
	rwg.Add(2)
	go func() { // reader
		defer rwg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for k := 0; k < 100000; k++ {
			select {
			case <-stopRead:
				return
			default:
			}
			i := rng.IntN(N)
			amu.Lock()
			want := acked[i]
			nodes := append([]*tnode(nil), n.nodes...)
			amu.Unlock()
			x := nodes[rng.IntN(len(nodes))]
			pk, sk := keyName(i)
			v, ok, err := x.shR.Get(ctx, pk, sk)
			reads++
			if stopped() {
				return
			}
			if err != nil || !ok || v.TS < want {
				bad++
				t.Errorf("reader: key %d via %s: %+v ok=%v err=%v, acknowledged ts %d", i, short(x.id), v, ok, err, want)
				if bad > 5 {
					return
				}
			}
		}
	}()
	go func() { // writer keeps updating during the transition
		defer rwg.Done()
		for ts := uint64(2); ts < 2000; ts++ {
			select {
			case <-stopRead:
				return
			case <-time.After(5 * time.Millisecond):
			}
			amu.Lock()
			nodes := append([]*tnode(nil), n.nodes...)
			amu.Unlock()
			write(nodes[int(ts)%len(nodes)], int(ts*13)%N, ts)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	// Add d; hold c's acknowledgement so the old layout stays live.
	n.c.mu.Lock()
	n.c.hold[c.id] = true
	n.c.mu.Unlock()
	amu.Lock()
	d := n.add("")
	amu.Unlock()
	l2 := n.layoutOf(a, b, c, d)
	d.start()
	waitUntil(t, "d marks v2 synced", 90*time.Second, func() (bool, string) {
		n.c.mu.Lock()
		defer n.c.mu.Unlock()
		for _, v := range n.c.synced[d.id] {
			if v == l2.Version {
				return true, ""
			}
		}
		return false, fmt.Sprint(n.c.synced[d.id])
	})
	// Old owners keep what they lose while v1 is live.
	lost := map[*tnode][]uint8{}
	for _, x := range []*tnode{a, b, c} {
		for p := range 256 {
			if contains(l1.NodesOf(uint8(p)), x.id) && !contains(l2.NodesOf(uint8(p)), x.id) {
				lost[x] = append(lost[x], uint8(p))
			}
		}
	}
	if len(lost) == 0 {
		t.Fatal("adding a node moved nothing")
	}
	time.Sleep(1500 * time.Millisecond)
	if n.c.liveCount() != 2 {
		t.Fatal("old layout pruned while c's ack is held")
	}
	kept := 0
	for x, ps := range lost {
		for _, p := range ps {
			nd, _ := x.sh.merkleNode(p, nil)
			kept += int(nd.Count)
		}
	}
	if kept == 0 {
		t.Fatal("old owners dropped partitions before the read layout switched")
	}
	n.c.release(c.id)
	if n.c.liveCount() != 1 {
		t.Fatal("v1 not pruned after every node acknowledged v2")
	}
	waitUntil(t, "old owners offload and delete lost partitions", 90*time.Second, func() (bool, string) {
		for x, ps := range lost {
			for _, p := range ps {
				if nd, _ := x.sh.merkleNode(p, nil); nd.Count != 0 {
					return false, fmt.Sprintf("%s still holds %d items of partition %d", short(x.id), nd.Count, p)
				}
			}
		}
		return true, ""
	})
	stopAll()
	if reads < 50 {
		t.Fatalf("only %d reads during the transition", reads)
	}
	for _, x := range n.nodes {
		if err := x.rep.SyncNow(ctx); err != nil {
			t.Fatalf("final sync on %s: %v", short(x.id), err)
		}
	}
	waitUntil(t, "equal Merkle roots on v2", 10*time.Second, func() (bool, string) { return n.rootsEqual("object") })
	var held int64
	for p := range 256 {
		if contains(l2.NodesOf(uint8(p)), d.id) {
			nd, _ := d.sh.merkleNode(uint8(p), nil)
			held += int64(nd.Count)
		}
	}
	if held == 0 || d.live.Load() != held {
		t.Fatalf("d holds %d items in its partitions, hook counted %d", held, d.live.Load())
	}
	// The Hook ran for every offloaded entry: each node's live count is
	// what it still holds (no deletions in this test).
	for _, x := range n.nodes {
		var has int64
		for p := range 256 {
			nd, _ := x.sh.merkleNode(uint8(p), nil)
			has += int64(nd.Count)
		}
		if x.live.Load() != has {
			t.Fatalf("%s: hook counts %d live entries, tree holds %d", short(x.id), x.live.Load(), has)
		}
	}
	t.Logf("%d reads during the transition; d pulled %d items", reads, held)
}

// Tombstones are collected only once every replica holds them.
func TestTombstoneGCWaitsForAllReplicas(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c := n.add(""), n.add(""), n.add("")
	n.layoutOf(a, b, c)
	ctx := ctxT(t, 60*time.Second)
	if _, err := a.shR.Insert(ctx, Entry[reg]{PK: "p", SK: "s", Value: reg{TS: 5, Val: "v"}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "c has the value", 5*time.Second, func() (bool, string) {
		_, ok, _ := c.sh.Get(ctx, "p", "s")
		return ok, ""
	})
	c.stop()
	if err := a.shR.Delete(ctx, "p", "s"); err != nil {
		t.Fatal(err)
	}
	n.now.Store(time.Now().Add(time.Hour).UnixMilli())
	got, err := a.shR.PurgeTombstones(ctx, uint64(n.clock().UnixMilli()))
	if got != 0 || err == nil {
		t.Fatalf("purge with a replica down deleted %d (err %v), want 0 and an error", got, err)
	}
	if v, ok, _ := a.sh.Get(ctx, "p", "s"); !ok || !v.Del {
		t.Fatalf("tombstone gone while c is down: %+v %v", v, ok)
	}
	c = n.restart(c)
	if v, _, _ := c.sh.Get(ctx, "p", "s"); v.Del {
		t.Fatal("c should still have the live value")
	}
	got, err = a.shR.PurgeTombstones(ctx, uint64(n.clock().UnixMilli()))
	if got != 1 || err != nil {
		t.Fatalf("purge with every replica up deleted %d, %v; want 1", got, err)
	}
	for _, x := range n.nodes {
		if v, ok, _ := x.sh.Get(ctx, "p", "s"); ok {
			t.Fatalf("%s still holds %+v after GC", short(x.id), v)
		}
	}
	// The counter restarted at 0 with c; the tombstone released c's live entry.
	if c.live.Load() != -1 {
		t.Fatalf("c's hook counted %d, want -1 (its live entry released)", c.live.Load())
	}
	if v, ok, err := b.shR.Get(ctx, "p", "s"); ok || err != nil {
		t.Fatalf("entry resurrected: %+v %v %v", v, ok, err)
	}
}

// Full-copy tables: every node (gateway included) holds everything; a write
// needs a majority; a node missing an entry locally reads a majority.
func TestFullCopy(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c, g := n.add(""), n.add(""), n.add(""), n.add("")
	l := n.c.setRoles(t, rolesWithGateway(a, b, c, g))
	if len(l.Nodes) != 4 {
		t.Fatalf("layout has %d nodes", len(l.Nodes))
	}
	ctx := ctxT(t, 60*time.Second)
	c.stop()
	if _, err := a.fcR.Insert(ctx, Entry[reg]{SK: "bucket1", Value: reg{TS: 1, Val: "one"}}); err != nil {
		t.Fatalf("full-copy write with 3 of 4 up: %v", err)
	}
	// g may not have it yet: a local miss falls back to a majority read.
	if v, ok, err := g.fcR.Get(ctx, "", "bucket1"); err != nil || !ok || v.Val != "one" {
		t.Fatalf("get via gateway: %+v %v %v", v, ok, err)
	}
	b.stop()
	if _, err := a.fcR.Insert(ctx, Entry[reg]{SK: "bucket2", Value: reg{TS: 1}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("full-copy write with 2 of 4 up: %v, want ErrUnavailable", err)
	}
	b = n.restart(b)
	c = n.restart(c)
	for _, x := range n.nodes {
		if err := x.rep.SyncNow(ctx); err != nil {
			t.Fatalf("sync %s: %v", short(x.id), err)
		}
	}
	waitUntil(t, "equal full-copy roots", 10*time.Second, func() (bool, string) { return n.rootsEqual("bucket") })
	for _, x := range n.nodes {
		if v, ok, _ := x.fc.Get(ctx, "", "bucket1"); !ok || v.Val != "one" {
			t.Fatalf("%s lacks bucket1 locally", short(x.id))
		}
	}
}

func TestMerkleIncremental(t *testing.T) {
	// Two single-node tables fed the same entries in different orders (with
	// overwrites and purges) end with equal roots; the tree matches a rebuild.
	mk := func() *Local[reg] {
		tb, _ := newTable(t)
		tb.enableTracking()
		return tb
	}
	x, y := mk(), mk()
	ctx := context.Background()
	var es []Entry[reg]
	for i := range 300 {
		pk, sk := keyName(i)
		es = append(es, Entry[reg]{PK: pk, SK: sk, Value: reg{TS: uint64(i % 5), Val: fmt.Sprint(i)}})
	}
	for _, e := range es {
		x.Insert(ctx, e)
	}
	for i := len(es) - 1; i >= 0; i-- {
		y.Insert(ctx, es[i])
		if i%3 == 0 {
			y.Insert(ctx, Entry[reg]{PK: es[i].PK, SK: es[i].SK, Value: reg{TS: 0, Val: ""}})
		}
	}
	del := Entry[reg]{PK: "bucket1", SK: "key0001", Value: reg{TS: 99, Del: true}}
	x.Insert(ctx, del)
	y.Insert(ctx, del)
	if _, err := y.PurgeTombstones(ctx, 100); err != nil {
		t.Fatal(err)
	}
	y.Insert(ctx, del) // purged then written again: the tree follows
	for _, tb := range []*Local[reg]{x, y} {
		for {
			n, err := tb.updateMerkle(ctx, 64)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
	}
	rx, _ := x.merkleRoots()
	ry, _ := y.merkleRoots()
	if rx != ry {
		t.Fatal("roots differ for equal contents")
	}
	var total uint64
	for _, r := range rx {
		total += r.Count
	}
	if total != 300 {
		t.Fatalf("trees count %d items, want 300", total)
	}
	y.Insert(ctx, Entry[reg]{PK: "bucket1", SK: "key0001", Value: reg{TS: 1 << 50, Val: "newer"}})
	y.updateMerkle(ctx, 100)
	ry, _ = y.merkleRoots()
	if rx == ry {
		t.Fatal("roots equal after a change")
	}
}

func rolesWithGateway(storage ...*tnode) map[string]layout.Role {
	roles := map[string]layout.Role{}
	for i, x := range storage {
		roles[x.id] = layout.Role{Zone: fmt.Sprintf("z%d", i), Capacity: 1 << 40}
	}
	gw := storage[len(storage)-1]
	roles[gw.id] = layout.Role{Zone: "z0"} // the last one is a gateway
	return roles
}

// Range merges the replicas' pages and cuts to the limit: entries only one
// replica of the read quorum has are listed, newest values win.
func TestRangeMergesReplicas(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c := n.add(""), n.add(""), n.add("")
	n.layoutOf(a, b, c)
	ctx := ctxT(t, 30*time.Second)
	// Write directly into single replicas, as if writes had reached only part of them.
	for i := range 20 {
		x := n.nodes[i%3]
		if _, err := x.sh.Insert(ctx, Entry[reg]{PK: "bkt", SK: fmt.Sprintf("k%02d", i), Value: reg{TS: 1, Val: "v"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, x := range n.nodes {
		x.sh.Insert(ctx, Entry[reg]{PK: "bkt", SK: "k00", Value: reg{TS: 1 + uint64(i), Val: "w"}})
	}
	for _, x := range n.nodes {
		es, err := x.shR.Range(ctx, "bkt", "k03", 4)
		if err != nil || len(es) != 4 {
			t.Fatalf("range via %s: %v %v", short(x.id), es, err)
		}
		// Only two of three replicas answer: every listed key must be one a
		// quorum member had, in order, with no gap among those it saw.
		for j := 1; j < len(es); j++ {
			if es[j-1].SK >= es[j].SK {
				t.Fatalf("range not sorted: %v", es)
			}
		}
	}
	// With all three replicas' content merged by anti-entropy, every
	// coordinator lists exactly k03..k06.
	for _, x := range n.nodes {
		if err := x.rep.SyncNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range n.nodes {
		es, err := x.shR.Range(ctx, "bkt", "k03", 4)
		if err != nil || len(es) != 4 || es[0].SK != "k03" || es[3].SK != "k06" {
			t.Fatalf("range via %s after sync: %v %v", short(x.id), es, err)
		}
		all, err := x.shR.Range(ctx, "bkt", "", 0)
		if err != nil || len(all) != 20 || all[0].Value.TS != 3 {
			t.Fatalf("full range via %s: %d entries, first %+v, %v", short(x.id), len(all), all[0], err)
		}
	}
}

// RangeSummary lists the replicas' summaries (the schema's Summary), merged
// like Range, and never writes a summary back to a stale replica.
func TestRangeSummary(t *testing.T) {
	n := newTestNet(t, 3)
	a, b, c := n.add(""), n.add(""), n.add("")
	n.layoutOf(a, b, c)
	ctx := ctxT(t, 30*time.Second)
	for i := range 10 {
		if _, err := a.shR.Insert(ctx, Entry[reg]{PK: "bkt", SK: fmt.Sprintf("k%02d", i), Value: reg{TS: 1, Val: strings.Repeat("x", 100+i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// One replica holds a newer value the others lack: Range would repair them.
	if _, err := c.sh.Insert(ctx, Entry[reg]{PK: "bkt", SK: "k05", Value: reg{TS: 2, Val: "newer"}}); err != nil {
		t.Fatal(err)
	}
	for _, x := range n.nodes {
		es, err := x.shR.RangeSummary(ctx, "bkt", "", 0)
		if err != nil || len(es) != 10 {
			t.Fatalf("range summary via %s: %d entries, %v", short(x.id), len(es), err)
		}
		for i, e := range es {
			want := fmt.Sprintf("summary:%d", 100+i)
			if e.SK == "k05" && e.Value.TS == 2 {
				want = "summary:5"
			}
			if e.Value.Val != want {
				t.Fatalf("via %s: %s = %q, want %q", short(x.id), e.SK, e.Value.Val, want)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // a repair, if any were sent, lands
	for _, x := range n.nodes {
		es, err := x.sh.Range(ctx, "bkt", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if strings.HasPrefix(e.Value.Val, "summary:") {
				t.Fatalf("replica %s stored a summary for %s", short(x.id), e.SK)
			}
		}
	}
}

func TestStatusAndMetrics(t *testing.T) {
	n := newTestNet(t, 1)
	registry := prometheus.NewRegistry()
	n.reg = registry
	a := n.add("")
	n.layoutOf(a)
	ctx := ctxT(t, 20*time.Second)
	for i := range 3 {
		pk, sk := keyName(i)
		if _, err := a.shR.Insert(ctx, Entry[reg]{PK: pk, SK: sk, Value: reg{TS: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.rep.SyncNow(ctx); err != nil {
		t.Fatal(err)
	}
	mfs, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "entrepot_table_items" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "object" {
				found = m.GetGauge().GetValue() == 3
			}
		}
	}
	if !found {
		t.Fatal("entrepot_table_items{table=object} is not 3")
	}
	b, err := json.Marshal(a.rep.Status())
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.Unmarshal(b, &st)
	for _, k := range []string{"synced_version", "partitions_with_quorum", "last_full_sync", "tables"} {
		if _, ok := st[k]; !ok {
			t.Fatalf("status JSON lacks %q: %s", k, b)
		}
	}
	if st["synced_version"].(float64) != 1 || st["partitions_with_quorum"].(float64) != 256 {
		t.Fatalf("status: %s", b)
	}
}

// A table that held entries before it was replicated gets a complete tree.
func TestMerkleInitCoversExistingEntries(t *testing.T) {
	tb, _ := newTable(t)
	ctx := context.Background()
	for i := range 50 {
		pk, sk := keyName(i)
		if _, err := tb.Insert(ctx, Entry[reg]{PK: pk, SK: sk, Value: reg{TS: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	tb.enableTracking()
	if _, err := tb.Insert(ctx, Entry[reg]{PK: "new", SK: "one", Value: reg{TS: 1}}); err != nil {
		t.Fatal(err)
	}
	count := func() uint64 {
		rs, err := tb.merkleRoots()
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, r := range rs {
			n += r.Count
		}
		return n
	}
	tb.updateMerkle(ctx, 1000)
	if got := count(); got != 1 {
		t.Fatalf("before init the tree holds %d items, want 1 (only the tracked write)", got)
	}
	for range 2 { // idempotent
		if err := tb.initMerkle(ctx); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := tb.updateMerkle(ctx, 7)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		if got := count(); got != 51 {
			t.Fatalf("after init the tree holds %d items, want 51", got)
		}
	}
	items, more, err := tb.merkleItems(Partition("new"), nil, nil, 100)
	if err != nil || more || len(items) == 0 {
		t.Fatalf("items of the partition of pk new: %v %v %v", items, more, err)
	}
}
