package p2p

import (
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/natpunch"
	"github.com/entrepot/entrepot/natpunch/natpunchtest"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

func freeTCPPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func deadUDPAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// forward accepts on l and pipes each connection to target: the "router"
// forwarding the external port the fake IGD granted.
func forward(t *testing.T, l net.Listener, target string) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				d, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer d.Close()
				go io.Copy(d, c)
				io.Copy(c, d)
			}()
		}
	}()
}

func hasAddr(h *Host, port uint16) bool {
	for _, a := range h.Libp2p().Addrs() {
		if p, ok := tcpPort(a); ok && p == port {
			return true
		}
	}
	return false
}

// TestNATManagerMapsConfirmsAndRemoves runs the natpunch adapter against
// the fake IGD: the p2p listen port is mapped (on another external port,
// the wanted one being held by another LAN host), the mapped address is
// not advertised while no member can dial it back, is advertised once a
// member can, and the mapping is gone from the router when the host closes.
func TestNATManagerMapsConfirmsAndRemoves(t *testing.T) {
	igd, err := natpunchtest.NewIGD(natpunchtest.DescIGDv2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(igd.Close)
	igd.SetExternalIP("127.0.0.1") // so a forwarder can stand in for the router

	port := freeTCPPort(t)
	igd.Reserve("TCP", port, "192.168.1.77") // another LAN host holds our port
	dir := t.TempDir()
	id := identityID(t, filepath.Join(dir, "node.key"))
	start := time.Now()
	a := startCfg(t, Config{
		IdentityFile: filepath.Join(dir, "node.key"),
		ListenAddrs:  []string{"/ip4/127.0.0.1/tcp/" + strconv.Itoa(int(port))},
		NAT: &natpunch.Config{
			Gateway: netip.MustParseAddr("127.0.0.1"), LocalAddr: netip.MustParseAddr("127.0.0.1"),
			SSDPTargets: []netip.AddrPort{igd.SSDPAddr()}, PMPServer: deadUDPAddr(t),
			ProbeTimeout: time.Second, RetryMin: 200 * time.Millisecond,
			// The fake router's "internet" is loopback here.
			PublicPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		},
		UseRelays: RelayOff,
	})
	var ext uint16
	waitFor(t, "the p2p port mapped on the router", 15*time.Second, func() bool {
		for _, m := range igd.Mappings() {
			if m.InternalPort == port && m.Client == "127.0.0.1" {
				ext = m.ExternalPort
				if !strings.Contains(m.Description, id.String()[len(id.String())-8:]) {
					t.Fatalf("mapping description %q does not name the node", m.Description)
				}
				return true
			}
		}
		return false
	})
	t.Logf("first mapping after %v (external port %d)", time.Since(start), ext)
	if ext == port {
		t.Fatalf("mapped on the port another host holds")
	}
	if !a.nat.HasDiscoveredNAT() {
		t.Fatal("HasDiscoveredNAT = false with a mapping held")
	}
	if a.NATStatus().Gateway.IGD == "" && len(a.NATStatus().Mappings) == 0 {
		t.Fatalf("empty NAT status: %+v", a.NATStatus())
	}

	// A member that cannot reach the external port: candidate stays unconfirmed.
	b := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key"), Bootstrap: a.Addrs()[:1], UseRelays: RelayOff})
	waitFor(t, "b connected", 10*time.Second, func() bool {
		return b.Libp2p().Network().Connectedness(a.ID()) == network.Connected
	})
	extAddr := "/ip4/127.0.0.1/tcp/" + strconv.Itoa(int(ext))
	waitFor(t, "candidate checked and refused", 15*time.Second, func() bool {
		st := a.Reachability()
		return len(st.Unconfirmed) == 1 && st.Unconfirmed[0] == extAddr && a.reachChecked(extAddr)
	})
	if hasAddr(a, ext) {
		t.Fatalf("unconfirmed mapping advertised: %v", a.Libp2p().Addrs())
	}

	// The "router" now forwards the external port: b confirms it, a advertises it.
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(int(ext)))
	if err != nil {
		t.Skipf("external port %d taken on this machine: %v", ext, err)
	}
	forward(t, l, "127.0.0.1:"+strconv.Itoa(int(port)))
	waitFor(t, "mapping confirmed and advertised", 30*time.Second, func() bool {
		st := a.Reachability()
		return len(st.Confirmed) == 1 && st.Confirmed[0] == extAddr && hasAddr(a, ext)
	})
	if mp := a.nat.GetMapping(ma.StringCast("/ip4/0.0.0.0/tcp/" + strconv.Itoa(int(port)))); mp == nil || mp.String() != extAddr {
		t.Fatalf("GetMapping = %v, want %s", mp, extAddr)
	}
	// The member learns it (identify push): it is announced, not only advertised.
	waitFor(t, "the member holds the confirmed address for a", 10*time.Second, func() bool {
		for _, x := range b.Libp2p().Peerstore().Addrs(a.ID()) {
			if x.String() == extAddr {
				return true
			}
		}
		return false
	})

	closeStart := time.Now()
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	took := time.Since(closeStart)
	for _, m := range igd.Mappings() {
		if m.Client == "127.0.0.1" {
			t.Fatalf("mapping left on the router after Close: %+v", m)
		}
	}
	if took > 2500*time.Millisecond {
		t.Fatalf("close took %v", took)
	}
	t.Logf("mapping removed, Close took %v", took)
}

func (p *Host) reachChecked(addr string) bool {
	p.reach.mu.Lock()
	defer p.reach.mu.Unlock()
	c := p.reach.cands[addr]
	return c != nil && !c.checked.IsZero() && !c.confirmed
}

// TestNATManagerNoGateway: no router answers; the host starts, maps
// nothing, advertises only its listen address and closes promptly.
func TestNATManagerNoGateway(t *testing.T) {
	a := startCfg(t, Config{
		IdentityFile: filepath.Join(t.TempDir(), "node.key"),
		NAT: &natpunch.Config{Gateway: netip.MustParseAddr("127.0.0.1"), LocalAddr: netip.MustParseAddr("127.0.0.1"),
			SSDPTargets: []netip.AddrPort{deadUDPAddr(t)}, PMPServer: deadUDPAddr(t)},
	})
	time.Sleep(time.Second)
	if a.nat.HasDiscoveredNAT() {
		t.Fatal("discovered a NAT with no gateway")
	}
	if n := len(a.Libp2p().Addrs()); n != 1 {
		t.Fatalf("addrs = %v", a.Libp2p().Addrs())
	}
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("close took %v", d)
	}
}
