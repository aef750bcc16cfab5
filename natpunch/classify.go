package natpunch

import "net/netip"

var sharedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // RFC 6598 carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments (DS-Lite B4)
}

// usableExternal reports whether ip, reported by a router as its external
// address, can be reached from the internet. Empty, unspecified, loopback,
// RFC 1918, RFC 6598 and link-local addresses cannot, unless they fall in one
// of the public prefixes (a lab whose "internet" uses a private range).
func usableExternal(ip netip.Addr, public []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range public {
		if p.Contains(ip) {
			return true
		}
	}
	if ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range sharedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
