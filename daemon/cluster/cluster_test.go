package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/daemon/rpc"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

const tb = int64(1) << 40

func stateWith(rf int, roles map[string]RoleEntry) *State {
	s := newState(rf)
	for k, v := range roles {
		s.Roles[k] = v
	}
	return s
}

func TestMergeIsACRDT(t *testing.T) {
	a := stateWith(3, map[string]RoleEntry{
		"n1": {Role: layout.Role{Zone: "z1", Capacity: tb}, Timestamp: 10},
		"n2": {Role: layout.Role{Zone: "z2", Capacity: tb}, Timestamp: 10},
	})
	b := stateWith(3, map[string]RoleEntry{
		"n1": {Role: layout.Role{Zone: "z1", Capacity: 2 * tb}, Timestamp: 20},
		"n3": {Role: layout.Role{Zone: "z3", Capacity: tb}, Timestamp: 5},
	})
	b.Acks["n3"] = 4
	encode := func(s *State) string {
		x, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return string(x)
	}
	clone := func(s *State) *State {
		x, _ := s.Encode()
		c, err := DecodeState(x)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ab, ba := clone(a), clone(b)
	ab.Merge(b)
	ba.Merge(a)
	if encode(ab) != encode(ba) {
		t.Fatal("merge is not commutative")
	}
	again := clone(ab)
	if again.Merge(b) || again.Merge(a) {
		t.Fatal("merging again reported a change: not idempotent")
	}
	if ab.Roles["n1"].Role.Capacity != 2*tb {
		t.Fatal("newer role entry lost")
	}
	if ab.Acks["n3"] != 4 {
		t.Fatal("ack lost")
	}
}

func TestConcurrentLayoutsConvergeToOne(t *testing.T) {
	base := stateWith(3, map[string]RoleEntry{
		"n1": {Role: layout.Role{Zone: "z1", Capacity: tb}, Timestamp: 1},
		"n2": {Role: layout.Role{Zone: "z2", Capacity: tb}, Timestamp: 1},
		"n3": {Role: layout.Role{Zone: "z3", Capacity: tb}, Timestamp: 1},
	})
	if l, err := base.Advance(); err != nil || l == nil || l.Version != 1 {
		t.Fatalf("first layout: %v %v", l, err)
	}
	x, _ := base.Encode()
	s1, _ := DecodeState(x)
	s2, _ := DecodeState(x)
	// Two nodes change role at the same moment; each computes v2 from what it sees.
	s1.Roles["n1"] = RoleEntry{Role: layout.Role{Zone: "z1", Capacity: 3 * tb}, Timestamp: 2}
	s2.Roles["n4"] = RoleEntry{Role: layout.Role{Zone: "z2", Capacity: tb}, Timestamp: 2}
	l1, _ := s1.Advance()
	l2, _ := s2.Advance()
	if l1.Version != 2 || l2.Version != 2 || l1.Digest == l2.Digest {
		t.Fatal("setup: expected two different v2 layouts")
	}
	// Gossip both ways, then each node re-derives from the merged roles.
	e1, _ := s1.Encode()
	e2, _ := s2.Encode()
	o1, _ := DecodeState(e1)
	o2, _ := DecodeState(e2)
	s1.Merge(o2)
	s2.Merge(o1)
	s1.Advance()
	s2.Advance()
	n1, n2 := s1.Newest(), s2.Newest()
	if n1.ID() != n2.ID() {
		t.Fatalf("nodes disagree: %s vs %s", n1.ID(), n2.ID())
	}
	if n1.Version != 3 || !n1.SameRoles(s1.ActiveRoles(), 3) {
		t.Fatalf("final layout %s does not reflect every declared role", n1.ID())
	}
	if v2 := s1.Layouts; len(v2) < 2 {
		t.Fatal("older live versions dropped before sync")
	}
}

func TestRetireAndReplace(t *testing.T) {
	s := stateWith(1, map[string]RoleEntry{
		"old":  {Role: layout.Role{Zone: "z1", Capacity: tb}, Timestamp: 1},
		"new":  {Role: layout.Role{Zone: "z1", Capacity: tb}, Replaces: "old", Timestamp: 2},
		"gone": {Role: layout.Role{Zone: "z2", Capacity: tb}, Retired: true, Timestamp: 3},
	})
	roles := s.ActiveRoles()
	if _, ok := roles["old"]; ok {
		t.Fatal("replaced node still active")
	}
	if _, ok := roles["gone"]; ok {
		t.Fatal("retired node still active")
	}
	if _, ok := roles["new"]; !ok {
		t.Fatal("replacement not active")
	}
}

func TestReadSwitchesOnlyAfterSync(t *testing.T) {
	s := stateWith(1, map[string]RoleEntry{"a": {Role: layout.Role{Zone: "z1", Capacity: tb}, Timestamp: 1}})
	s.Advance()
	s.Roles["b"] = RoleEntry{Role: layout.Role{Zone: "z2", Capacity: tb}, Timestamp: 2}
	s.Advance()
	if len(s.Layouts) != 2 || s.ReadIndex() != 0 {
		t.Fatalf("reads must stay on v1 until v2 is synced: %d layouts, read %d", len(s.Layouts), s.ReadIndex())
	}
	s.Acks["a"] = 2
	if s.ReadIndex() != 0 {
		t.Fatal("switched with one node still syncing")
	}
	s.Acks["b"] = 2
	s.prune()
	if len(s.Layouts) != 1 || s.Newest().Version != 2 {
		t.Fatal("v1 not dropped once v2 synced")
	}
}

func FuzzDecodeState(f *testing.F) {
	s := stateWith(3, map[string]RoleEntry{"n1": {Role: layout.Role{Zone: "z1", Capacity: tb}, Timestamp: 1}})
	b, _ := s.Encode()
	f.Add(b)
	f.Add([]byte{1, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		if _, err := s.Encode(); err != nil {
			t.Fatal(err)
		}
	})
}

// --- gossip between real nodes ---

const secret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

type member struct {
	host *p2p.Host
	mgr  *Manager
	dir  string
}

func startMember(t *testing.T, dir string, rf int, role layout.Role, boot []string) *member {
	t.Helper()
	k, _ := p2p.ParseSecret(secret)
	h, err := p2p.New(context.Background(), p2p.Config{
		IdentityFile: filepath.Join(dir, "node.key"), Secret: k,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot,
		PingInterval: 200 * time.Millisecond, ReconnectInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rpc.New(rpc.Config{Host: h.Libp2p(), Timeout: 5 * time.Second})
	peers := func() []peer.ID { return h.Libp2p().Network().Peers() }
	m, err := New(Config{RPC: r, Peers: peers, StateFile: filepath.Join(dir, "cluster_state"), RF: rf, Role: role, GossipInterval: 100 * time.Millisecond})
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go h.Run(ctx)
	go m.Run(ctx)
	t.Cleanup(func() { cancel(); h.Close() })
	return &member{host: h, mgr: m, dir: dir}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out: %s", what)
}

func sameLayout(ms ...*member) bool {
	var id string
	for _, m := range ms {
		v := m.mgr.View()
		if v.Read == nil {
			return false
		}
		n := v.Layouts[len(v.Layouts)-1]
		if id == "" {
			id = n.ID()
		} else if n.ID() != id {
			return false
		}
		if len(n.Nodes) != len(ms) {
			return false
		}
	}
	return true
}

func TestGossipFormsLayoutFromDeclaredRoles(t *testing.T) {
	a := startMember(t, t.TempDir(), 3, layout.Role{Zone: "z1", Capacity: tb}, nil)
	boot := a.host.Addrs()[:1]
	b := startMember(t, t.TempDir(), 3, layout.Role{Zone: "z2", Capacity: tb}, boot)
	if a.mgr.View().Ready() {
		t.Fatal("layout with fewer nodes than RF")
	}
	c := startMember(t, t.TempDir(), 3, layout.Role{Zone: "z3", Capacity: tb}, boot)
	waitFor(t, "one layout with the three nodes everywhere", 15*time.Second, func() bool { return sameLayout(a, b, c) })
	// Restarting a node with a new role in its config changes the layout everywhere.
	cdir := c.dir
	c.host.Close()
	c2 := startMember(t, cdir, 3, layout.Role{Zone: "z3", Capacity: 2 * tb, Tags: []string{"ssd"}}, boot)
	waitFor(t, "layout reflects the new role", 15*time.Second, func() bool {
		if !sameLayout(a, b, c2) {
			return false
		}
		v := a.mgr.View()
		n := v.Layouts[len(v.Layouts)-1]
		return n.Roles()[c2.host.ID().String()].Capacity == 2*tb
	})
}

func TestRFMismatchRefused(t *testing.T) {
	a := startMember(t, t.TempDir(), 3, layout.Role{Zone: "z1", Capacity: tb}, nil)
	b := startMember(t, t.TempDir(), 2, layout.Role{Zone: "z2", Capacity: tb}, a.host.Addrs()[:1])
	waitFor(t, "connected", 10*time.Second, func() bool {
		return b.host.Libp2p().Network().Connectedness(a.host.ID()) == network.Connected
	})
	time.Sleep(500 * time.Millisecond)
	if _, ok := a.mgr.View().Roles[b.host.ID().String()]; ok {
		t.Fatal("a member with another replication factor was merged")
	}
	// The state file keeps the RF: reopening with another one fails clearly.
	a.host.Close()
	_, err := New(Config{RPC: b.mgr.cfg.RPC, Peers: b.mgr.cfg.Peers, StateFile: filepath.Join(b.dir, "cluster_state"), RF: 3})
	if !errors.Is(err, ErrRFMismatch) {
		t.Fatalf("reopen with another RF: %v", err)
	}
}

func TestGoneNodesLowerQuorums(t *testing.T) {
	v := View{Roles: map[string]RoleEntry{
		"a": {Role: layout.Role{Zone: "z1", Capacity: tb}},
		"b": {Role: layout.Role{Zone: "z2", Capacity: tb}, Retired: true},
		"c": {Role: layout.Role{Zone: "z3", Capacity: tb}},
		"d": {Role: layout.Role{Zone: "z3", Capacity: tb}, Replaces: "c"},
	}}
	cases := []struct {
		name string
		set  []string
		q    int
		want int
	}{
		{"nobody gone", []string{"a", "d"}, 2, 2},
		{"one retired", []string{"a", "b", "d"}, 2, 2},
		{"retired and replaced", []string{"a", "b", "c"}, 2, 1},
		{"all gone", []string{"b", "c"}, 2, 0},
		{"unknown nodes count as alive", []string{"x", "y"}, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := v.Need(tc.set, tc.q); got != tc.want {
				t.Fatalf("Need(%v, %d) = %d, want %d", tc.set, tc.q, got, tc.want)
			}
		})
	}
	if !v.Gone("b") || !v.Gone("c") || v.Gone("a") || v.Gone("d") {
		t.Fatal("Gone misclassifies")
	}
}

// TestOperatorRetireSurvivesRestart: `node retire` is final for an identity
// (a restart with a configuration that does not decommission keeps it out),
// while a decommission by the node's own configuration is undone by its
// configuration.
func TestOperatorRetireSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	role := layout.Role{Zone: "z1", Capacity: tb}
	start := func(retire bool) (*Manager, func()) {
		k, _ := p2p.ParseSecret(secret)
		h, err := p2p.New(context.Background(), p2p.Config{IdentityFile: filepath.Join(dir, "node.key"), Secret: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := rpc.New(rpc.Config{Host: h.Libp2p(), Timeout: 5 * time.Second})
		m, err := New(Config{RPC: r, Peers: func() []peer.ID { return nil }, StateFile: filepath.Join(dir, "cluster_state"), RF: 1, Role: role, Retire: retire})
		if err != nil {
			h.Close()
			t.Fatal(err)
		}
		return m, func() { h.Close() }
	}
	self := func(m *Manager) RoleEntry { return m.View().Roles[m.self] }
	for _, step := range []struct {
		name        string
		retire      bool // the configuration's decommission
		operator    bool // then `node retire` on this node
		wantRetired bool
	}{
		{"configured as a member", false, false, false},
		{"decommissioned by its configuration", true, false, true},
		{"configuration takes it back", false, false, false},
		{"retired by the operator", false, true, true},
		{"restart keeps the operator's retirement", false, false, true},
	} {
		m, stop := start(step.retire)
		if step.operator {
			if err := m.Retire(m.self); err != nil {
				t.Fatal(err)
			}
		}
		if got := self(m).Retired; got != step.wantRetired {
			t.Fatalf("%s: retired = %v, want %v", step.name, got, step.wantRetired)
		}
		stop()
	}
}
