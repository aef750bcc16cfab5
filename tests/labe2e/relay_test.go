package labe2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/netlab"
)

// TestP2PThreeHomesReachAndRelay: home 1 has a UPnP router (its node maps
// its port, gets it confirmed, becomes public and relays for members),
// home 2 a router without UPnP, home 3 a double NAT. Every pair of nodes
// connects - directly, hole-punched or relayed - and 64 MiB cross a
// relayed path intact (h2b runs without DCUtR, so its link to h3a stays
// relayed).
func TestP2PThreeHomesReachAndRelay(t *testing.T) {
	SkipUnlessLab(t)
	lab := netlab.NewT(t, netlab.Config{Homes: []netlab.HomeConfig{
		{Servers: 1, UPnP: netlab.IGDv2, NATPMP: true},
		{Servers: 2},
		{Servers: 1, UPnP: netlab.IGDv2, DoubleNAT: true},
	}})
	r1 := lab.Homes[0].Router
	h1a := lab.Homes[0].Servers[0]
	h2a, h2b := lab.Homes[1].Servers[0], lab.Homes[1].Servers[1]
	h3a := lab.Homes[2].Servers[0]
	secret := RandomSecret()

	a := startP2P(t, h1a, nodeConf{Secret: secret, NAT: true})
	WaitFor(t, "h1a mapped", 20*time.Second, func() bool { return len(MappingsTo(t, r1, h1a)) > 0 })
	ext := MappingsTo(t, r1, h1a)[0].ExternalPort
	boot := []string{fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r1.Addr, ext, a.id)}
	b := startP2P(t, h2a, nodeConf{Secret: secret, NAT: true, Bootstrap: boot})
	b2 := startP2P(t, h2b, nodeConf{Secret: secret, NAT: true, Bootstrap: boot, NoHolePunch: true})
	c := startP2P(t, h3a, nodeConf{Secret: secret, NAT: true, Bootstrap: boot})
	nodes := []*p2pProc{a, b, b2, c}

	d := WaitFor(t, "h1a public and relaying", 60*time.Second, func() bool {
		st, err := a.status()
		return err == nil && st.Reach.Public && st.Reach.RelayService
	})
	t.Logf("h1a confirmed public and relaying after %v", d)
	for _, n := range []*p2pProc{b, b2, c} {
		WaitFor(t, n.name+" holds a reservation on h1a", 60*time.Second, func() bool {
			st, err := n.status()
			return err == nil && len(st.Reach.Relays) > 0 && !st.Reach.Public
		})
	}
	WaitFor(t, "h3a's natpunch reports double NAT", 20*time.Second, func() bool {
		st, err := c.status()
		return err == nil && st.NAT.Gateway.DoubleNAT
	})

	// Every pair connects.
	pairs := map[string]string{}
	for i, x := range nodes {
		for _, y := range nodes[i+1:] {
			WaitFor(t, x.name+" -> "+y.name, 60*time.Second, func() bool {
				if x.peerVia(y.id) != "" {
					return true
				}
				_ = x.connect(y.id)
				return x.peerVia(y.id) != ""
			})
			time.Sleep(500 * time.Millisecond) // let DCUtR finish
			pairs[x.name+"-"+y.name] = x.peerVia(y.id)
		}
	}
	t.Logf("FIGURE how pairs connect: %v", pairs)
	if v := pairs["h2b-h3a"]; v != "relayed" {
		t.Fatalf("h2b-h3a via %q, want relayed (h2b has no DCUtR, neither side is dialable)", v)
	}

	res, err := b2.send(c.id, 64<<20)
	if err != nil {
		t.Fatalf("64 MiB h2b -> h3a: %v", err)
	}
	if !res.Intact || res.Via != "relayed" {
		t.Fatalf("64 MiB h2b -> h3a: %+v", res)
	}
	t.Logf("FIGURE 64 MiB over the relayed path h2b -> h1a -> h3a: %.2f s, %.1f MiB/s, intact", res.Seconds, 64/res.Seconds)
}

// TestP2PWANCutAndHeal: a home's access link goes down; the other side
// sees its node down within a few ping intervals, and connected again
// after the link returns.
func TestP2PWANCutAndHeal(t *testing.T) {
	SkipUnlessLab(t)
	lab := netlab.NewT(t, netlab.Config{Homes: []netlab.HomeConfig{
		{Servers: 1, UPnP: netlab.IGDv2},
		{Servers: 1},
	}})
	r1 := lab.Homes[0].Router
	secret := RandomSecret()
	a := startP2P(t, lab.Homes[0].Servers[0], nodeConf{Secret: secret, NAT: true})
	WaitFor(t, "h1a mapped", 20*time.Second, func() bool { return len(MappingsTo(t, r1, a.host)) > 0 })
	ext := MappingsTo(t, r1, a.host)[0].ExternalPort
	b := startP2P(t, lab.Homes[1].Servers[0], nodeConf{Secret: secret, NAT: true,
		Bootstrap: []string{fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r1.Addr, ext, a.id)}})
	up := func() bool {
		st, err := a.status()
		if err != nil {
			return false
		}
		for _, p := range st.Peers {
			if p.ID == b.id {
				return p.Up
			}
		}
		return false
	}
	WaitFor(t, "h1a sees h2a up", 30*time.Second, up)
	home2 := lab.Homes[1]
	ctx := t.Context()
	if err := home2.CutWAN(ctx); err != nil {
		t.Fatal(err)
	}
	down := WaitFor(t, "h1a sees h2a down", 60*time.Second, func() bool { return !up() })
	if err := home2.RestoreWAN(ctx); err != nil {
		t.Fatal(err)
	}
	back := WaitFor(t, "h1a sees h2a up again", 60*time.Second, up)
	t.Logf("FIGURE p2p WAN cut (ping interval 1 s): peer down after %v, up again %v after the link returned", down, back)
}

// TestP2PRequestLatency: over a 100 ms RTT path a small request and its
// answer on a new stream take one round trip: stream opening and protocol
// selection add none (the protocol is known from identify).
func TestP2PRequestLatency(t *testing.T) {
	SkipUnlessLab(t)
	link := netlab.LinkConfig{Delay: 25 * time.Millisecond}
	lab := netlab.NewT(t, netlab.Config{Homes: []netlab.HomeConfig{
		{Servers: 1, UPnP: netlab.IGDv2, Link: link},
		{Servers: 1, Link: link},
	}})
	r1 := lab.Homes[0].Router
	secret := RandomSecret()
	a := startP2P(t, lab.Homes[0].Servers[0], nodeConf{Secret: secret, NAT: true})
	WaitFor(t, "h1a mapped", 20*time.Second, func() bool { return len(MappingsTo(t, r1, a.host)) > 0 })
	ext := MappingsTo(t, r1, a.host)[0].ExternalPort
	b := startP2P(t, lab.Homes[1].Servers[0], nodeConf{Secret: secret,
		Bootstrap: []string{fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r1.Addr, ext, a.id)}})
	WaitFor(t, "h2a connected directly to h1a", 30*time.Second, func() bool { return b.peerVia(a.id) == "direct" })
	var d []time.Duration
	for range 20 {
		res, err := b.send(a.id, 1)
		if err != nil || !res.Intact {
			t.Fatalf("request: %+v %v", res, err)
		}
		d = append(d, time.Duration(res.Seconds*float64(time.Second)))
	}
	s := netlab.Summarize(d)
	t.Logf("FIGURE p2p request on a new stream over a 100 ms RTT: min %v p50 %v mean %v max %v", s.Min, s.P50, s.Mean, s.Max)
	if s.P50 > 130*time.Millisecond {
		t.Fatalf("median %v: more than one round trip per request", s.P50)
	}
}
