package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// noDirect is a connection gater that refuses every direct (non-relay)
// connection with the peers in blocked, both ways.
type noDirect struct {
	mu      sync.Mutex
	blocked map[peer.ID]bool
}

func (g *noDirect) isBlocked(id peer.ID, a ma.Multiaddr) bool {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked[id]
}

func (g *noDirect) InterceptPeerDial(peer.ID) bool                    { return true }
func (g *noDirect) InterceptAddrDial(id peer.ID, a ma.Multiaddr) bool { return !g.isBlocked(id, a) }
func (g *noDirect) InterceptAccept(network.ConnMultiaddrs) bool       { return true }
func (g *noDirect) InterceptSecured(_ network.Direction, id peer.ID, c network.ConnMultiaddrs) bool {
	return !g.isBlocked(id, c.RemoteMultiaddr())
}
func (g *noDirect) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func identityID(t *testing.T, path string) peer.ID {
	t.Helper()
	k, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func startCfg(t *testing.T, cfg Config) *Host {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = psk(t, secretA)
	}
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	cfg.PingInterval = 200 * time.Millisecond
	cfg.ReconnectInterval = 300 * time.Millisecond
	cfg.ReachabilityInterval = 200 * time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); h.Close(); <-done })
	return h
}

const blobProto = "/entrepot-test/blob/1"

// serveBlob answers a blob stream with the sha256 of what it read.
func serveBlob(h *Host) {
	h.Libp2p().SetStreamHandler(blobProto, func(s network.Stream) {
		defer s.Close()
		sum := sha256.New()
		if _, err := io.Copy(sum, s); err != nil {
			s.Reset()
			return
		}
		s.Write(sum.Sum(nil))
	})
}

// TestRelayPathCarriesLargeTransfer: A and B cannot dial each other
// directly (gater); both hold a reservation on member R, which relays
// without the default 128 KiB / 2 min cap: A finds B through the DHT,
// reaches it through R, and 64 MiB cross intact.
func TestRelayPathCarriesLargeTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB relay transfer")
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	idA, idB := identityID(t, filepath.Join(dirA, "node.key")), identityID(t, filepath.Join(dirB, "node.key"))
	gate := &noDirect{blocked: map[peer.ID]bool{idA: true, idB: true}}

	r := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key"), RelayService: RelayOn, UseRelays: RelayOff})
	boot := r.Addrs()[:1]
	b := startCfg(t, Config{IdentityFile: filepath.Join(dirB, "node.key"), Bootstrap: boot, UseRelays: RelayOn,
		RelayService: RelayOff, ExtraOptions: []libp2p.Option{libp2p.ConnectionGater(gate)}})
	a := startCfg(t, Config{IdentityFile: filepath.Join(dirA, "node.key"), Bootstrap: boot, UseRelays: RelayOn,
		RelayService: RelayOff, ExtraOptions: []libp2p.Option{libp2p.ConnectionGater(gate)}})
	serveBlob(b)

	waitFor(t, "b holds a reservation on r and advertises a circuit address", 20*time.Second, func() bool {
		st := b.Reachability()
		if len(st.Relays) != 1 || st.Relays[0] != r.ID().String() {
			return false
		}
		for _, x := range b.Libp2p().Addrs() {
			if _, err := x.ValueForProtocol(ma.P_CIRCUIT); err == nil {
				return true
			}
		}
		return false
	})
	if !r.Reachability().RelayService {
		t.Fatal("r does not report its relay service")
	}
	waitFor(t, "a reaches b through r", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return a.FindAndConnect(ctx, b.ID()) == nil
	})
	for _, c := range a.Libp2p().Network().ConnsToPeer(b.ID()) {
		if !isRelayed(c) {
			t.Fatalf("direct connection despite the gater: %s", c.RemoteMultiaddr())
		}
		if c.Stat().Limited {
			t.Fatal("relayed connection is limited: the relay sent a data/time cap")
		}
	}
	var st PeerStatus
	for _, p := range a.Peers() {
		if p.ID == b.ID().String() {
			st = p
		}
	}
	if st.Via != ViaRelayed || !st.Relayed || !st.Connected {
		t.Fatalf("a's status of b = %+v, want connected via %q", st, ViaRelayed)
	}

	const size = 64 << 20
	payload := make([]byte, size)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := a.Libp2p().NewStream(ctx, b.ID(), blobProto)
	if err != nil {
		t.Fatal(err)
	}
	if !isRelayed(s.Conn()) {
		t.Fatal("stream not on the relayed connection")
	}
	start := time.Now()
	if _, err := io.Copy(s, bytes.NewReader(payload)); err != nil {
		t.Fatalf("send after %v: %v", time.Since(start), err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if !bytes.Equal(got, want[:]) {
		t.Fatalf("64 MiB through the relay arrived corrupted or cut (%d-byte answer)", len(got))
	}
	t.Logf("64 MiB through the relay in %v (%.1f MiB/s)", el, float64(size)/(1<<20)/el.Seconds())
}

func TestRelayServiceAutoNeedsPublicAddress(t *testing.T) {
	// On loopback nothing is public: in auto mode no node relays and every
	// node looks for relays.
	a := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key")})
	b := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key"), Bootstrap: a.Addrs()[:1]})
	waitFor(t, "connected", 10*time.Second, func() bool {
		return b.Libp2p().Network().Connectedness(a.ID()) == network.Connected
	})
	time.Sleep(time.Second)
	for _, h := range []*Host{a, b} {
		st := h.Reachability()
		if st.Public || st.RelayService || len(st.Relays) != 0 {
			t.Fatalf("loopback node reports %+v", st)
		}
	}
}
