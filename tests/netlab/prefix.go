package netlab

import (
	"fmt"
	"net/netip"
)

// WANPrefixEnv is set, to WANPrefix, in the environment of every command
// started with Host.Command. A lab-only build of the daemon should
// reclassify WANPrefix as public only when this variable names it (see
// the package documentation), so such a binary run outside a lab behaves
// like a release build.
const WANPrefixEnv = "ENTREPOT_NETLAB_WAN_PREFIX"

// PublicPrefixes lists the prefixes the p2p layer and natpunch must treat
// as public inside the lab (just WANPrefix): pass it to
// natpunch.Config.PublicPrefixes and to the lab-only libp2p address
// classifier.
func PublicPrefixes() []netip.Prefix { return []netip.Prefix{WANPrefix} }

// Exclude returns prefixes covering outer minus hole, largest first, e.g.
// 10.0.0.0/8 minus 10.77.0.0/24 as 16 prefixes. A lab-only build can use
// it to replace the 10/8 entry of go-multiaddr's private list so that
// exactly WANPrefix becomes public. If hole does not lie inside outer, the
// result is outer alone; if hole covers outer, it is empty.
func Exclude(outer, hole netip.Prefix) ([]netip.Prefix, error) {
	outer, hole = outer.Masked(), hole.Masked()
	if !outer.IsValid() || !hole.IsValid() || outer.Addr().Is4() != hole.Addr().Is4() {
		return nil, fmt.Errorf("%w: exclude %v from %v", ErrConfig, hole, outer)
	}
	if !outer.Overlaps(hole) {
		return []netip.Prefix{outer}, nil
	}
	if hole.Bits() <= outer.Bits() {
		return nil, nil
	}
	var out []netip.Prefix
	cur := outer
	for cur.Bits() < hole.Bits() {
		lo, hi := halves(cur)
		if lo.Contains(hole.Addr()) {
			out = append(out, hi)
			cur = lo
		} else {
			out = append(out, lo)
			cur = hi
		}
	}
	return out, nil
}

// halves splits p into its two sub-prefixes one bit longer.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	i := p.Bits() / 8
	b[i] |= 0x80 >> (p.Bits() % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(hiAddr, bits)
}
