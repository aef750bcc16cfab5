package p2p

import (
	"net/netip"
	"testing"
)

// TestConnRateLimiter: members behind one public address can reconnect in a
// burst (64 at once, where libp2p's default refuses after 16), a flood from
// one address is still cut, other addresses are unaffected and loopback is
// never limited.
func TestConnRateLimiter(t *testing.T) {
	l := connRateLimiter()
	home := netip.MustParseAddr("203.0.113.7")
	for i := range 64 {
		if !l.Allow(home) {
			t.Fatalf("connection %d from one address refused, want a burst of 64", i+1)
		}
	}
	if l.Allow(home) {
		t.Fatal("a 65th immediate connection from one address was allowed: no limit left")
	}
	if !l.Allow(netip.MustParseAddr("203.0.113.8")) {
		t.Fatal("another address was refused")
	}
	for range 200 {
		if !l.Allow(netip.MustParseAddr("127.0.0.1")) {
			t.Fatal("loopback was rate limited")
		}
	}
}
