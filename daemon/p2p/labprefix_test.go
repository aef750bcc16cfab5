package p2p

import (
	"net/netip"
	"testing"
)

var labPrefixCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"lab WAN", "10.77.0.0/24", true},
	{"unmasked", "10.77.0.9/24", true},
	{"a /16 inside 10/8", "10.77.0.0/16", true},
	{"all of 10/8", "10.0.0.0/8", false},
	{"home LAN", "192.168.11.0/24", false},
	{"CGNAT", "100.64.0.0/10", false},
	{"ipv6", "fd00::/64", false},
	{"garbage", "10.77.0.0", false},
	{"empty", "", false},
}

func TestParseLabPrefix(t *testing.T) {
	for _, tc := range labPrefixCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLabPrefix(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func FuzzParseLabPrefix(f *testing.F) {
	for _, tc := range labPrefixCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseLabPrefix(s)
		if err != nil {
			return
		}
		if !labEnvelope.Contains(p.Addr()) || p.Bits() < 16 {
			t.Fatalf("accepted %q as %v", s, p)
		}
	})
}

func TestExcludePrefix(t *testing.T) {
	outer, hole := netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.77.0.0/24")
	rest := excludePrefix(outer, hole)
	if len(rest) != 16 {
		t.Fatalf("%d prefixes, want 16", len(rest))
	}
	probes := []struct {
		ip     string
		inRest bool
	}{
		{"10.77.0.1", false}, {"10.77.0.254", false}, {"10.77.1.0", true}, {"10.76.255.255", true},
		{"10.0.0.1", true}, {"10.255.255.255", true},
	}
	for _, pr := range probes {
		in := false
		for _, r := range rest {
			if r.Contains(netip.MustParseAddr(pr.ip)) {
				in = true
			}
		}
		if in != pr.inRest {
			t.Errorf("%s covered = %v, want %v", pr.ip, in, pr.inRest)
		}
	}
}
