package p2p

import (
	"fmt"
	"net/netip"
	"os"
)

// LabPrefixEnv names the environment variable through which the network
// lab (tests/netlab) declares its "internet" prefix. Only a binary built
// with the netlab build tag reads it (see labprefix_netlab.go).
const LabPrefixEnv = "ENTREPOT_NETLAB_WAN_PREFIX"

// labEnvelope is the only range a lab may declare public: the lab's WAN
// prefix lives inside 10/8, and a prefix wider than /16 would reclassify
// too much of it.
var labEnvelope = netip.MustParsePrefix("10.0.0.0/8")

// parseLabPrefix validates the value of LabPrefixEnv.
func parseLabPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s=%q: %w", LabPrefixEnv, s, err)
	}
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() < 16 || !labEnvelope.Contains(p.Addr()) {
		return netip.Prefix{}, fmt.Errorf("%s=%q: must be an IPv4 prefix of /16 or longer inside %v", LabPrefixEnv, s, labEnvelope)
	}
	return p, nil
}

// excludePrefix returns prefixes covering outer minus hole (hole inside
// outer, strictly longer), largest first.
func excludePrefix(outer, hole netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	cur := outer.Masked()
	for cur.Bits() < hole.Bits() {
		bits := cur.Bits() + 1
		lo := netip.PrefixFrom(cur.Addr(), bits)
		b := cur.Addr().AsSlice()
		b[cur.Bits()/8] |= 0x80 >> (cur.Bits() % 8)
		hiAddr, _ := netip.AddrFromSlice(b)
		hi := netip.PrefixFrom(hiAddr, bits)
		if lo.Contains(hole.Addr()) {
			out, cur = append(out, hi), lo
		} else {
			out, cur = append(out, lo), hi
		}
	}
	return out
}

// LabPublicPrefixes returns the prefixes this binary treats as public: the
// lab's WAN prefix in a netlab build run inside the lab, nil otherwise.
// Pass it to natpunch.Config.PublicPrefixes when building a natpunch
// client outside this package.
func LabPublicPrefixes() []netip.Prefix {
	if !LabBuild {
		return nil
	}
	p, err := parseLabPrefix(os.Getenv(LabPrefixEnv))
	if err != nil {
		return nil
	}
	return []netip.Prefix{p}
}
