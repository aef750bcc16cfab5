package labe2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/netlab"
)

// TestP2PMappingsSameRouterRestartStop: two nodes behind the same UPnP
// (IGDv2, no NAT-PMP) router listen on the same port and get distinct
// external ports, each confirmed by a member in another home dialling back;
// when miniupnpd restarts on a new SOAP port with its mappings flushed they
// come back within 60 s; a node stopped cleanly has no mapping left 2 s later.
func TestP2PMappingsSameRouterRestartStop(t *testing.T) {
	SkipUnlessLab(t)
	lab := netlab.NewT(t, netlab.Config{Homes: []netlab.HomeConfig{
		{Servers: 2, UPnP: netlab.IGDv2},
		{Servers: 1},
	}})
	r1 := lab.Homes[0].Router
	h1a, h1b, h2a := lab.Homes[0].Servers[0], lab.Homes[0].Servers[1], lab.Homes[1].Servers[0]
	secret := RandomSecret()

	a := startP2P(t, h1a, nodeConf{Secret: secret, NAT: true, CheckSeconds: 10})
	first := WaitFor(t, "h1a's first mapping on r1", 20*time.Second, func() bool { return len(MappingsTo(t, r1, h1a)) > 0 })
	ma := MappingsTo(t, r1, h1a)[0]
	st, _ := a.status()
	var mappedIn time.Duration
	for _, m := range st.NAT.Mappings {
		if m.Up {
			mappedIn = m.MappedAt.Sub(st.Start)
		}
	}
	t.Logf("FIGURE first mapping: visible in r1's nft %v after process start (natpunch: mapped %v after start), %s -> %v",
		first, mappedIn, fmt.Sprint(ma.ExternalPort), ma.Internal)

	b := startP2P(t, h1b, nodeConf{Secret: secret, NAT: true, CheckSeconds: 10,
		Bootstrap: []string{fmt.Sprintf("/ip4/%s/tcp/3901/p2p/%s", h1a.Addr, a.id)}})
	WaitFor(t, "h1b's mapping on r1", 20*time.Second, func() bool { return len(MappingsTo(t, r1, h1b)) > 0 })
	mb := MappingsTo(t, r1, h1b)[0]
	if ma.ExternalPort == mb.ExternalPort {
		t.Fatalf("both nodes got external port %d", ma.ExternalPort)
	}
	if ma.Internal.Port() != 3901 || mb.Internal.Port() != 3901 {
		t.Fatalf("mappings point at %v and %v, want port 3901", ma.Internal, mb.Internal)
	}
	t.Logf("distinct mappings: h1a 10.77.0.11:%d -> %v, h1b 10.77.0.11:%d -> %v", ma.ExternalPort, ma.Internal, mb.ExternalPort, mb.Internal)

	// A member in home 2 reaches both through their mappings and confirms them.
	c := startP2P(t, h2a, nodeConf{Secret: secret, Bootstrap: []string{
		fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r1.Addr, ma.ExternalPort, a.id),
		fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r1.Addr, mb.ExternalPort, b.id),
	}})
	for _, n := range []struct {
		p    *p2pProc
		port uint16
	}{{a, ma.ExternalPort}, {b, mb.ExternalPort}} {
		want := fmt.Sprintf("/ip4/%s/tcp/%d", r1.Addr, n.port)
		d := WaitFor(t, n.p.name+" mapping confirmed by dial-back and advertised", 60*time.Second, func() bool {
			st, err := n.p.status()
			return err == nil && slices.Contains(st.Reach.Confirmed, want) && st.Reach.Public && hasPrefixAddr(st.Addrs, want)
		})
		t.Logf("%s: %s confirmed and advertised (waited %v)", n.p.name, want, d)
		if v := c.peerVia(n.p.id); v != "direct" {
			t.Errorf("h2a reaches %s via %q, want direct", n.p.name, v)
		}
	}

	// Router restart: new SOAP port, mappings flushed.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	oldPort := r1.SOAPPort()
	if err := r1.RestartUPnP(ctx, true); err != nil {
		t.Fatal(err)
	}
	if r1.SOAPPort() == oldPort {
		t.Fatalf("SOAP port did not move")
	}
	if n := len(MappingsTo(t, r1, h1a)) + len(MappingsTo(t, r1, h1b)); n != 0 {
		t.Fatalf("%d mappings survived the flush", n)
	}
	back := WaitFor(t, "both mappings back after the router restart", 60*time.Second, func() bool {
		return len(MappingsTo(t, r1, h1a)) > 0 && len(MappingsTo(t, r1, h1b)) > 0
	})
	t.Logf("FIGURE router restart (SOAP port %d -> %d, flushed): both mappings back in %v", oldPort, r1.SOAPPort(), back)

	// Clean stop: the mapping is gone within 2 s of SIGTERM.
	t0 := time.Now()
	took, err := b.stop(10 * time.Second)
	if err != nil {
		t.Fatalf("stop h1b: %v", err)
	}
	gone := time.Since(t0)
	if left := MappingsTo(t, r1, h1b); len(left) != 0 {
		t.Fatalf("h1b's mapping still on r1 after a clean stop: %+v", left)
	}
	if gone > 2*time.Second {
		t.Fatalf("mapping removal took %v (> 2 s)", gone)
	}
	if len(MappingsTo(t, r1, h1a)) == 0 {
		t.Fatal("stopping h1b removed h1a's mapping")
	}
	t.Logf("FIGURE clean stop: process exited in %v, mapping gone from nft %v after SIGTERM", took, gone)
}

func hasPrefixAddr(addrs []string, prefix string) bool {
	for _, a := range addrs {
		if strings.HasPrefix(a, prefix+"/") {
			return true
		}
	}
	return false
}
