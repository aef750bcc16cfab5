package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/daemon/rpc"
	"github.com/entrepot/entrepot/tests/harness"
)

func threeZones() []harness.NodeSpec {
	return []harness.NodeSpec{{Zone: "a"}, {Zone: "b"}, {Zone: "c"}}
}

// memberAddr returns node i's first bootstrap address as an AddrInfo.
func memberAddr(ctx context.Context, t *testing.T, c *harness.MultiCluster, i int) peer.AddrInfo {
	t.Helper()
	id, err := c.Admin(i).NodeID(ctx)
	if err != nil || len(id.Addrs) == 0 {
		t.Fatalf("node %d id: %+v %v", i, id, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(id.Addrs[0]))
	if err != nil {
		t.Fatal(err)
	}
	return *ai
}

// TestOutsiderCannotConnect: without the cluster secret a process can
// neither finish a handshake with a member nor call any service, and a node
// configured with another secret never joins the layout.
func TestOutsiderCannotConnect(t *testing.T) {
	c := harness.StartClusterT(t, harness.ClusterOptions{RF: 3, Nodes: threeZones()})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	target := memberAddr(ctx, t, c, 0)

	t.Run("plain libp2p host", func(t *testing.T) {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		if err := h.Connect(dctx, target); err == nil {
			t.Fatal("a host without the private-network key connected to a member")
		}
	})
	t.Run("host with another secret", func(t *testing.T) {
		other := make([]byte, 32)
		_, _ = rand.Read(other)
		psk, err := p2p.ParseSecret(hex.EncodeToString(other))
		if err != nil {
			t.Fatal(err)
		}
		h, err := p2p.New(ctx, p2p.Config{IdentityFile: filepath.Join(t.TempDir(), "key"), Secret: psk,
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		if err := h.Connect(dctx, target); err == nil {
			t.Fatal("a host with another cluster secret connected to a member")
		}
		node, err := rpc.New(rpc.Config{Host: h.Libp2p(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		h.Libp2p().Peerstore().AddAddrs(target.ID, target.Addrs, time.Minute)
		for _, call := range [][2]string{{"cluster", "gossip"}, {"node", "info"}, {"table", "read"}, {"block", "get"}} {
			if _, err := node.Call(dctx, target.ID, call[0], call[1], nil); err == nil {
				t.Errorf("rpc %s.%s answered an outsider", call[0], call[1])
			}
		}
	})
	t.Run("node with another secret", func(t *testing.T) {
		i, err := c.AddNode(ctx, harness.NodeSpec{Zone: "d", WrongSecret: true})
		if err != nil {
			t.Fatal(err)
		}
		// Give gossip many rounds to (wrongly) spread it.
		time.Sleep(3 * time.Second)
		st, err := c.Status(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ready || len(st.LiveLayouts) != 0 {
			t.Errorf("the outsider learnt a layout: %+v", st.LiveLayouts)
		}
		for _, m := range st.Nodes {
			if !m.Self && m.Up {
				t.Errorf("the outsider sees member %s up", m.ID)
			}
		}
		outsider := c.ID(i)
		for j := range 3 {
			st, err := c.Status(ctx, j)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range st.Nodes {
				if m.ID == outsider {
					t.Errorf("member %d knows the outsider: %+v", j, m)
				}
			}
		}
		// Its S3 API has no layout to serve from.
		resp, err := http.Get(c.Node(i).Endpoint() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("outsider S3 answered %s; want 503", resp.Status)
		}
		if err := c.Node(i).Stop(ctx); err != nil {
			t.Error(err)
		}
	})
}

// TestRestartOnNewPort: a node restarts on another RPC port; the others,
// whose configuration still names the old port (or nothing), find it again:
// the bootstrap node after a clean restart dials the members in its saved
// peer list; another node SIGKILLed and restarted is found by a member it
// never dials itself, through the members' DHT.
func TestRestartOnNewPort(t *testing.T) {
	c := harness.StartClusterT(t, harness.ClusterOptions{RF: 3, Nodes: threeZones()})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	waitAllUp(ctx, t, c, []int{0, 1, 2})
	cases := []struct {
		name     string
		node     int
		hard     bool
		watchers []int
	}{
		{"bootstrap node, clean restart", 0, false, []int{1, 2}},
		{"other node, SIGKILL", 2, true, []int{0, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.hard {
				err = c.Node(tc.node).Kill()
			} else {
				err = c.Node(tc.node).Stop(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			port, err := c.NewRPCPort(tc.node)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := c.StartNode(ctx, tc.node); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("/tcp/%d", port)
			for _, j := range tc.watchers {
				waitFor(ctx, t, fmt.Sprintf("node %d reaches node %d on its new port %d", j, tc.node, port), func() (bool, string) {
					st, err := c.Status(ctx, j)
					if err != nil {
						return false, err.Error()
					}
					for _, m := range st.Nodes {
						if m.ID == c.ID(tc.node) {
							return m.Up && m.Reachability == "direct" && strings.Contains(strings.Join(m.Addrs, " "), want),
								fmt.Sprintf("%+v", m)
						}
					}
					return false, "node unknown"
				})
			}
			t.Logf("members reached node %d on its new port in %s", tc.node, time.Since(start).Round(time.Millisecond))
		})
	}
}

// waitAllUp waits until each listed node sees every other listed node up.
func waitAllUp(ctx context.Context, t *testing.T, c *harness.MultiCluster, nodes []int) {
	t.Helper()
	for _, i := range nodes {
		waitFor(ctx, t, fmt.Sprintf("node %d sees every member up", i), func() (bool, string) {
			st, err := c.Status(ctx, i)
			if err != nil {
				return false, err.Error()
			}
			up := map[string]bool{}
			for _, m := range st.Nodes {
				up[m.ID] = m.Up
			}
			for _, j := range nodes {
				if !up[c.ID(j)] {
					return false, fmt.Sprintf("node %d not up", j)
				}
			}
			return true, ""
		})
	}
}

// TestConcurrentRoleChanges: two nodes change role at the same moment (both
// restart with a new declared role); every node ends on the same layout,
// which reflects both changes.
func TestConcurrentRoleChanges(t *testing.T) {
	specs := fiveNodes()
	c := harness.StartClusterT(t, harness.ClusterOptions{RF: 3, Nodes: specs})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	before, err := c.Layout(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	prev := before.Versions[len(before.Versions)-1]
	for _, i := range []int{1, 3} {
		if err := c.Node(i).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	s1, s3 := c.Spec(1), c.Spec(3)
	s1.Capacity, s1.Tags = "3G", []string{"grown"}
	s3.Zone = "c"
	c.SetSpec(1, s1)
	c.SetSpec(3, s3)
	errs := make(chan error, 2)
	for _, i := range []int{1, 3} {
		go func() { errs <- c.StartNode(ctx, i) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	var ref admin.LayoutVersion
	for i := range c.Len() {
		l, err := c.Layout(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		v := l.Versions[len(l.Versions)-1]
		if i == 0 {
			ref = v
		} else if v.ID != ref.ID {
			t.Errorf("node %d ended on %s, node 0 on %s", i, v.ID, ref.ID)
		}
	}
	if ref.Version <= prev.Version {
		t.Fatalf("no new layout after the role changes: still %s", ref.ID)
	}
	for _, n := range ref.Nodes {
		switch n.ID {
		case c.ID(1):
			if n.Capacity != 3<<30 || strings.Join(n.Tags, ",") != "grown" {
				t.Errorf("node 1 role in %s: %+v", ref.ID, n)
			}
		case c.ID(3):
			if n.Zone != "c" {
				t.Errorf("node 3 role in %s: %+v", ref.ID, n)
			}
		}
	}
	t.Logf("layout %s -> %s after two simultaneous role changes", prev.ID, ref.ID)
	checkZones(ctx, t, c, 3)
}

// TestZoneDownStatus: with one zone SIGKILLed the others list its node
// under FAILED NODES with a last-seen time, and every partition keeps a
// quorum (2 of 3 replicas up).
func TestZoneDownStatus(t *testing.T) {
	c := harness.StartClusterT(t, harness.ClusterOptions{RF: 3, Nodes: fiveNodes()})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitAllUp(ctx, t, c, []int{0, 1, 2, 3, 4})
	if err := c.Node(4).Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "node 0 reports zone c down", func() (bool, string) {
		st, err := c.Status(ctx, 0)
		if err != nil {
			return false, err.Error()
		}
		for _, m := range st.Nodes {
			if m.ID == c.ID(4) && m.Up {
				return false, "node 4 still up"
			}
		}
		return st.Partitions.WithQuorum == 256 && st.Partitions.AllUp == 0, fmt.Sprintf("%+v", st.Partitions)
	})
	out, err := c.Node(0).CLI(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "FAILED NODES (1)") || !strings.Contains(s, c.ID(4)[:16]) || !strings.Contains(s, " ago") {
		t.Errorf("status does not show node 4 failed with its last-seen time:\n%s", s)
	}
	t.Logf("status with zone c down:\n%s", s)
	if err := c.StartNode(ctx, 4); err != nil {
		t.Fatal(err)
	}
	waitAllUp(ctx, t, c, []int{0, 4})
}

// layoutNodes is the set of node IDs in node i's newest layout.
func layoutNodes(ctx context.Context, t *testing.T, c *harness.MultiCluster, i int) map[string]bool {
	t.Helper()
	l, err := c.Layout(ctx, i)
	if err != nil || len(l.Versions) == 0 {
		t.Fatalf("node %d layout: %+v %v", i, l, err)
	}
	out := map[string]bool{}
	for _, n := range l.Versions[len(l.Versions)-1].Nodes {
		out[n.ID] = true
	}
	return out
}

// TestLeavingTheLayout: a node leaves the layout only explicitly — by
// `decommission = true` in its config, by `entrepot node retire`, or when a
// re-installed node declares `replaces = <old id>` — never for being down;
// and the layout change completes although the leaving node is down.
func TestLeavingTheLayout(t *testing.T) {
	specs := []harness.NodeSpec{{Zone: "a"}, {Zone: "b"}, {Zone: "c"}, {Zone: "a"}, {Zone: "b"}, {Zone: "c"}}
	c := harness.StartClusterT(t, harness.ClusterOptions{RF: 3, Nodes: specs})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	t.Run("decommission in config", func(t *testing.T) {
		s := c.Spec(4)
		s.Decommission = true
		c.SetSpec(4, s)
		if err := c.Node(4).Kill(); err != nil {
			t.Fatal(err)
		}
		if err := c.StartNode(ctx, 4); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		if layoutNodes(ctx, t, c, 0)[c.ID(4)] {
			t.Fatal("decommissioned node still in the layout")
		}
		checkZones(ctx, t, c, 3)
	})
	t.Run("down is not gone", func(t *testing.T) {
		if err := c.Node(5).Kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // > 4 missed pings
		if !layoutNodes(ctx, t, c, 0)[c.ID(5)] {
			t.Fatal("a node that is merely down left the layout")
		}
	})
	t.Run("node retire by id prefix", func(t *testing.T) {
		id := c.ID(5)
		out, err := c.Node(1).CLI(ctx, "node", "retire", id[:16])
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		c.SetSpec(5, harness.NodeSpec{Zone: "c", Decommission: true}) // expected-layout bookkeeping only; it stays down
		if err := c.WaitLayout(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if layoutNodes(ctx, t, c, 0)[id] {
			t.Fatal("retired node still in the layout")
		}
	})
	t.Run("replaces", func(t *testing.T) {
		old := c.ID(3)
		if err := c.Node(3).Kill(); err != nil {
			t.Fatal(err)
		}
		n, err := c.AddNode(ctx, harness.NodeSpec{Zone: "a", Replaces: old})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WaitLayout(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		in := layoutNodes(ctx, t, c, 0)
		if in[old] || !in[c.ID(n)] {
			t.Fatalf("after replaces: old in layout %v, new in layout %v", in[old], in[c.ID(n)])
		}
	})
	t.Run("the change completes with the leaving nodes down", func(t *testing.T) {
		if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		checkZones(ctx, t, c, 3)
	})
}

// TestAddNodeTakesItsShare: a sixth node declaring zone c with the same
// capacity as node 4 gets half of zone c's partitions (each of the 3 zones
// holds one replica of every partition), and the change moves no more
// partition replicas than the minimum.
func TestAddNodeTakesItsShare(t *testing.T) {
	c := harness.StartClusterT(t, harness.ClusterOptions{RF: 3, Nodes: fiveNodes()})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	n, err := c.AddNode(ctx, harness.NodeSpec{Zone: "c", Tags: []string{"new"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	l, err := c.Layout(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := l.Versions[len(l.Versions)-1]
	counts := map[string]int{}
	for _, node := range v.Nodes {
		counts[node.ID] = node.Partitions
	}
	if counts[c.ID(n)] != 128 || counts[c.ID(4)] != 128 {
		t.Errorf("zone c split %d (new) / %d (node 4); want 128 / 128", counts[c.ID(n)], counts[c.ID(4)])
	}
	lc := l.LastChange
	if lc == nil || lc.To != v.Version {
		t.Fatalf("last change %+v, layout %s", lc, v.ID)
	}
	if lc.Moved != lc.Minimum {
		t.Errorf("adding a node moved %d partition replicas; the minimum is %d", lc.Moved, lc.Minimum)
	}
	t.Logf("node added: layout v%d -> v%d moved %d partition replicas (minimum %d), agreed everywhere in %s",
		lc.From, lc.To, lc.Moved, lc.Minimum, time.Since(start).Round(time.Millisecond))
	checkZones(ctx, t, c, 3)
}
