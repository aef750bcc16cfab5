package block

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRebalanceThroughput moves 1 MiB blocks to a node joining an RF 1
// cluster and reports the rate, uncapped and with a bandwidth cap (which
// it must respect).
func TestRebalanceThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 32 MiB over loopback")
	}
	tests := []struct {
		name      string
		bandwidth int64
		latency   time.Duration // added to every block call (a WAN round trip)
	}{
		{"uncapped", 0, 0},
		{"capped 16 MiB/s", 16 << 20, 0},
		{"uncapped, 50 ms per call", 0, 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newSim(1)
			tweak := func(cfg *ReplicationConfig) { cfg.Bandwidth = tc.bandwidth }
			var nodes []*tnode
			for i := range 2 {
				nodes = append(nodes, c.addTweaked(t, fmt.Sprintf("z%d", i), tweak))
				delayCalls(nodes[i], tc.latency)
			}
			c.relayout(t, false)
			var hs []Hash
			for i := range 96 {
				h := write(t, nodes[i%2], randBlock(t, 1<<20))
				hs = append(hs, h)
				_, own := owners(c.view(nodes[0].id), h)
				ref(t, c.byID(own[0]), h)
			}
			joiner := c.addTweaked(t, "z2", tweak)
			delayCalls(joiner, tc.latency)
			c.relayout(t, true)
			c.prune()
			v := c.view(joiner.id)
			var bytes int64
			for _, h := range hs {
				if _, own := owners(v, h); slices.Contains(own, joiner.id) {
					bytes += 1 << 20
				}
			}
			start := time.Now()
			eventually(t, 60*time.Second, "blocks on their new owner only", func() bool {
				for _, h := range hs {
					if _, want := owners(v, h); !slices.Equal(c.holders(t, h), want) {
						return false
					}
				}
				return true
			})
			el := time.Since(start)
			rate := float64(bytes) / el.Seconds()
			t.Logf("moved %d MiB in %v: %.1f MiB/s (includes up to one layout poll)", bytes>>20, el.Round(time.Millisecond), rate/(1<<20))
			if tc.bandwidth == 0 {
				return
			}
			// The cap is per node: the busiest sender bounds the time.
			var most int64
			for _, n := range nodes {
				most = max(most, n.st.Status().Rebalance.BytesDone)
			}
			minTime := time.Duration(float64(most-limiterMinBurst) / float64(tc.bandwidth) * 0.9 * float64(time.Second))
			t.Logf("busiest sender pushed %d MiB: at least %v at the cap", most>>20, minTime.Round(time.Millisecond))
			if el < minTime {
				t.Fatalf("moved in %v, faster than the %d B/s cap allows (%v)", el, tc.bandwidth, minTime)
			}
		})
	}
}

// A node that lost a partition keeps a block whose references were
// offloaded (count 0) until the new owner, unreachable at first, has it.
func TestGCKeepsOffloadedBlockUntilOwnerHasIt(t *testing.T) {
	c := newSim(1)
	a := c.add(t, "z0", 1<<30)
	gw := c.add(t, "z0", 0)
	c.relayout(t, false)
	var hs []Hash
	for i := range 16 {
		h := write(t, a, randBlock(t, 4096+i))
		ref(t, a, h)
		hs = append(hs, h)
	}
	b := c.add(t, "z1", 1<<30)
	b.stop()
	c.relayout(t, false)
	v := c.view(a.id)
	var moved Hash
	found := false
	for _, h := range hs {
		if _, own := owners(v, h); own[0] == b.id {
			moved, found = h, true
			break
		}
	}
	if !found {
		t.Fatal("no block moved to the new node")
	}
	// The table offload drops a's reference: the count reaches 0.
	batch := a.db.NewBatch()
	if err := a.st.AdjustRef(batch, moved, -1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.db.Write(batch, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.st.RunGC(context.Background(), time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !has(t, a, moved) {
		t.Fatal("block deleted while its new owner was unreachable")
	}
	// A gateway still reads it: its owner is down, the old holder answers.
	got, err := gw.st.Read(context.Background(), moved)
	if err != nil {
		t.Fatalf("read of a block whose only copy is on its previous owner: %v", err)
	}
	if Sum(got) != moved {
		t.Fatal("wrong data")
	}
	gw.st.PutBuffer(got)
	b.start(t)
	c.link()
	ref(t, b, moved) // the table delivered the reference to the new owner
	eventually(t, 20*time.Second, "new owner receiving the block", func() bool { return has(t, b, moved) })
	eventually(t, 20*time.Second, "old holder dropping its copy", func() bool {
		if _, err := a.st.RunGC(context.Background(), time.Now().Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		return !has(t, a, moved)
	})
}

// A replica that gets a reference to a block it lacks fetches the block.
func TestReferenceFetchesMissingBlock(t *testing.T) {
	tests := []struct {
		name  string
		prior bool // a count record exists already (referenced, released, file gone)
	}{
		{"first reference", false},
		{"count back from zero", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newSim(2)
			a := c.add(t, "z0", 1<<30)
			b := c.add(t, "z1", 1<<30)
			c.relayout(t, false)
			h := write(t, a, randBlock(t, 10000))
			eventually(t, 5*time.Second, "2 replicas", func() bool { return len(c.holders(t, h)) == 2 })
			if tc.prior {
				ref(t, b, h)
				batch := b.db.NewBatch()
				if err := b.st.AdjustRef(batch, h, -1, time.Now()); err != nil {
					t.Fatal(err)
				}
				if err := b.db.Write(batch, false); err != nil {
					t.Fatal(err)
				}
			}
			b.st.removeFiles(h)
			ref(t, b, h)
			eventually(t, 10*time.Second, "missing block fetched", func() bool { return has(t, b, h) })
			if err := b.st.Verify(context.Background(), h); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// delayCalls makes n answer every block call d late.
func delayCalls(n *tnode, d time.Duration) {
	if d <= 0 {
		return
	}
	r := n.st.repl.Load()
	for method, h := range map[string]func(context.Context, peer.ID, []byte) ([]byte, error){
		"put": r.handlePut, "get": r.handleGet, "need": r.handleNeed,
	} {
		n.rpc.Handle(Service, method, func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) {
			time.Sleep(d)
			return h(ctx, from, p)
		})
	}
}

// TestPushRechecksStaleNeedAnswer: a push decided on a "lacks it" answer
// older than needFresh asks again first, and sends nothing to a replica
// that got the block meanwhile; a fresh answer is trusted as is.
func TestPushRechecksStaleNeedAnswer(t *testing.T) {
	c := newSim(2)
	a := c.add(t, "z0", 1<<30)
	b := c.add(t, "z1", 1<<30)
	c.relayout(t, false)
	data := randBlock(t, 100_000)
	h := write(t, a, data)
	eventually(t, 10*time.Second, "block on both replicas", func() bool { return has(t, a, h) && has(t, b, h) })
	r := a.st.repl.Load()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		age   time.Duration
		moved int64
	}{
		{"stale answer: asked again, nothing sent", 5 * time.Second, 0},
		{"fresh answer: trusted, block sent", 0, int64(len(data))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.needs.mu.Lock()
			r.needs.m = map[needKey]needVal{{h, b.id}: {0, time.Now().Add(-tc.age)}}
			r.needs.mu.Unlock()
			before := a.st.Status().Rebalance.BytesDone
			if err := r.resyncOne(ctx, h); err != nil {
				t.Fatal(err)
			}
			if moved := a.st.Status().Rebalance.BytesDone - before; moved != tc.moved {
				t.Fatalf("pushed %d bytes, want %d", moved, tc.moved)
			}
		})
	}
}
