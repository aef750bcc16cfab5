//go:build netlab

package p2p

import (
	"log/slog"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// TestLabBuildReclassifiesOnlyTheLabPrefix (go test -tags netlab): the
// lab WAN prefix becomes public, the rest of 10/8 and the homes' ranges
// stay private. It mutates manet.Private4 for the whole test binary.
func TestLabBuildReclassifiesOnlyTheLabPrefix(t *testing.T) {
	t.Setenv(LabPrefixEnv, "10.77.0.0/24")
	if err := applyLabPrefix(slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr   string
		public bool
	}{
		{"/ip4/10.77.0.11/tcp/3901", true},
		{"/ip4/10.77.0.254/tcp/1", true},
		{"/ip4/10.77.1.1/tcp/1", false},
		{"/ip4/10.1.2.3/tcp/1", false},
		{"/ip4/192.168.11.10/tcp/1", false},
		{"/ip4/100.64.4.2/tcp/1", false},
		{"/ip4/127.0.0.1/tcp/1", false},
		{"/ip4/1.1.1.1/tcp/1", true},
	}
	for _, c := range cases {
		if got := manet.IsPublicAddr(ma.StringCast(c.addr)); got != c.public {
			t.Errorf("IsPublicAddr(%s) = %v, want %v", c.addr, got, c.public)
		}
	}
	if p := LabPublicPrefixes(); len(p) != 1 || p[0].String() != "10.77.0.0/24" {
		t.Errorf("LabPublicPrefixes = %v", p)
	}
}
