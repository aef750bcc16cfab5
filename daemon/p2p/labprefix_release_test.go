//go:build !netlab

package p2p

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// TestReleaseBuildIgnoresLabPrefix: a release binary keeps the lab's WAN
// addresses private even when the lab variable is set.
func TestReleaseBuildIgnoresLabPrefix(t *testing.T) {
	t.Setenv(LabPrefixEnv, "10.77.0.0/24")
	if LabBuild {
		t.Fatal("release build reports LabBuild")
	}
	if err := applyLabPrefix(nil); err != nil {
		t.Fatal(err)
	}
	if manet.IsPublicAddr(ma.StringCast("/ip4/10.77.0.11/tcp/3901")) {
		t.Fatal("release build treats 10.77.0.11 as public")
	}
	if LabPublicPrefixes() != nil {
		t.Fatalf("LabPublicPrefixes = %v", LabPublicPrefixes())
	}
}
