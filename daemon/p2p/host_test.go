package p2p

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	secretA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	secretB = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
)

func psk(t *testing.T, s string) pnet.PSK {
	t.Helper()
	k, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type node struct {
	*Host
	dir string
}

func startNode(t *testing.T, dir, secret string, boot []string, listen string) *node {
	t.Helper()
	if listen == "" {
		listen = "/ip4/127.0.0.1/tcp/0"
	}
	h, err := New(context.Background(), Config{
		IdentityFile:      filepath.Join(dir, "node.key"),
		PeerListFile:      filepath.Join(dir, "peers.json"),
		Secret:            psk(t, secret),
		ListenAddrs:       []string{listen},
		Bootstrap:         boot,
		PingInterval:      200 * time.Millisecond,
		ReconnectInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go h.Run(ctx)
	t.Cleanup(func() { cancel(); h.Close() })
	return &node{Host: h, dir: dir}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func connected(a, b *node) bool {
	return a.Libp2p().Network().Connectedness(b.ID()) == network.Connected
}

func TestMembersConnectAndMeasureRTT(t *testing.T) {
	a := startNode(t, t.TempDir(), secretA, nil, "")
	b := startNode(t, t.TempDir(), secretA, a.Addrs()[:1], "")
	waitFor(t, "b connected to a", 10*time.Second, func() bool { return connected(b, a) })
	waitFor(t, "rtt measured", 10*time.Second, func() bool {
		for _, p := range b.Peers() {
			if p.ID == a.ID().String() && p.RTT > 0 && p.Up {
				return true
			}
		}
		return false
	})
}

func TestNonMemberCannotConnect(t *testing.T) {
	a := startNode(t, t.TempDir(), secretA, nil, "")
	intruder := startNode(t, t.TempDir(), secretB, nil, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ai := peer.AddrInfo{ID: a.ID(), Addrs: a.Libp2p().Addrs()}
	if err := intruder.Connect(ctx, ai); err == nil {
		t.Fatal("a node with another secret completed a connection")
	}
	if _, err := intruder.Libp2p().NewStream(ctx, a.ID(), "/ipfs/ping/1.0.0"); err == nil {
		t.Fatal("a node with another secret opened a stream")
	}
	if connected(a, intruder.node()) {
		t.Fatal("member lists the intruder as connected")
	}
}

func (n *node) node() *node { return n }

func TestNoSecretRefused(t *testing.T) {
	_, err := New(context.Background(), Config{IdentityFile: filepath.Join(t.TempDir(), "k")})
	if !errors.Is(err, ErrNoSecret) {
		t.Fatalf("err = %v, want ErrNoSecret", err)
	}
}

func TestIdentityPersistsAndIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "node.key")
	k1, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("identity mode %o, want 600", st.Mode().Perm())
	}
	k2, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("identity changed across loads")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateIdentity(path); err == nil || !strings.Contains(err.Error(), "readable") {
		t.Fatalf("world-readable identity accepted: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"valid", secretA, true},
		{"valid with newline", secretA + "\n", true},
		{"too short", secretA[:62], false},
		{"not hex", strings.Repeat("zz", 32), false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseSecret(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if tc.ok && len(k) != 32 {
				t.Fatalf("key length %d", len(k))
			}
		})
	}
	a, _ := ParseSecret(secretA)
	b, _ := ParseSecret(secretB)
	if string(a) == string(b) {
		t.Fatal("different secrets gave the same key")
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add(secretA)
	f.Add("")
	f.Add(strings.Repeat("zz", 32))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSecret(s)
		if err == nil && len(k) != 32 {
			t.Fatalf("accepted %q with key length %d", s, len(k))
		}
	})
}

func TestPeerListRemembersMembers(t *testing.T) {
	a := startNode(t, t.TempDir(), secretA, nil, "")
	bdir := t.TempDir()
	b := startNode(t, bdir, secretA, a.Addrs()[:1], "")
	waitFor(t, "b connected to a", 10*time.Second, func() bool { return connected(b, a) })
	// The list is on disk soon after first contact, not only at a clean stop,
	// so a node killed right after joining still knows its peers.
	waitFor(t, "peer list written after first contact", 10*time.Second, func() bool {
		raw, err := os.ReadFile(filepath.Join(bdir, "peers.json"))
		return err == nil && strings.Contains(string(raw), a.ID().String())
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart b with no bootstrap: the persisted peer list is enough.
	b2 := startNode(t, bdir, secretA, nil, "")
	if b2.ID() != b.ID() {
		t.Fatal("restarted node has a new identity")
	}
	waitFor(t, "b reconnected from its peer list", 10*time.Second, func() bool { return connected(b2, a) })
}

func TestMovedPeerFoundThroughDHT(t *testing.T) {
	hub := startNode(t, t.TempDir(), secretA, nil, "")
	bdir := t.TempDir()
	b := startNode(t, bdir, secretA, hub.Addrs()[:1], "")
	a := startNode(t, t.TempDir(), secretA, hub.Addrs()[:1], "")
	waitFor(t, "a and b joined the hub", 10*time.Second, func() bool { return connected(a, hub) && connected(b, hub) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.FindAndConnect(ctx, b.ID()); err != nil {
		t.Fatalf("first contact: %v", err)
	}
	oldAddrs := b.Libp2p().Addrs()
	bID := b.ID()
	b.Close()
	// b comes back on another port (its home IP changed); a still has the old address.
	b2 := startNode(t, bdir, secretA, hub.Addrs()[:1], "")
	if b2.ID() != bID {
		t.Fatal("identity changed")
	}
	if sameAddrs(oldAddrs, b2.Libp2p().Addrs()) {
		t.Skip("kernel reused the same port; nothing to prove")
	}
	waitFor(t, "b2 joined the hub", 10*time.Second, func() bool { return connected(b2, hub) })
	a.Libp2p().Network().ClosePeer(bID)
	waitFor(t, "a finds b at its new address", 20*time.Second, func() bool {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return a.FindAndConnect(c, bID) == nil && connected(a, b2)
	})
}

func sameAddrs(a, b []ma.Multiaddr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
