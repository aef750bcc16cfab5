package netlab

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// TestWANPrefixReclassification demonstrates the lab-only mechanism the
// package documentation proposes for the p2p layer: replacing 10/8 in
// manet.Private4 with Exclude(10/8, WANPrefix) makes exactly the lab's
// WAN addresses public for every libp2p subsystem. The test restores the
// list; a real lab build would do this once, before the first host.
func TestWANPrefixReclassification(t *testing.T) {
	saved := manet.Private4
	t.Cleanup(func() { manet.Private4 = saved })

	ten := netip.MustParsePrefix("10.0.0.0/8")
	rest, err := Exclude(ten, WANPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var repl []*net.IPNet
	found := false
	for _, n := range saved {
		p, ok := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		if ok && netip.PrefixFrom(p.Unmap(), ones) == ten {
			found = true
			for _, r := range rest {
				repl = append(repl, &net.IPNet{IP: r.Addr().AsSlice(), Mask: net.CIDRMask(r.Bits(), 32)})
			}
			continue
		}
		repl = append(repl, n)
	}
	if !found {
		t.Fatalf("manet.Private4 has no 10.0.0.0/8 entry: %v (re-check on go-multiaddr upgrades)", saved)
	}
	public := func(s string) bool { return manet.IsPublicAddr(ma.StringCast(s)) }
	cases := []struct {
		addr       string
		before, in bool // public before / after reclassification
	}{
		{"/ip4/10.77.0.11/tcp/4001", false, true},
		{"/ip4/10.77.0.254/udp/4001/quic-v1", false, true},
		{"/ip4/10.77.1.1/tcp/4001", false, false},
		{"/ip4/10.1.2.3/tcp/4001", false, false},
		{"/ip4/192.168.11.10/tcp/4001", false, false},
		{"/ip4/100.64.4.2/tcp/4001", false, false},
		{"/ip4/1.1.1.1/tcp/4001", true, true},
	}
	for _, c := range cases {
		if got := public(c.addr); got != c.before {
			t.Errorf("before: IsPublicAddr(%s) = %v, want %v", c.addr, got, c.before)
		}
	}
	manet.Private4 = repl
	for _, c := range cases {
		if got := public(c.addr); got != c.in {
			t.Errorf("reclassified: IsPublicAddr(%s) = %v, want %v", c.addr, got, c.in)
		}
	}
	if !slices.Equal(PublicPrefixes(), []netip.Prefix{WANPrefix}) {
		t.Errorf("PublicPrefixes = %v", PublicPrefixes())
	}
}
