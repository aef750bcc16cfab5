//go:build netlab

package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"

	manet "github.com/multiformats/go-multiaddr/net"
)

// LabBuild is true only in a binary built with the netlab tag.
const LabBuild = true

var (
	labOnce sync.Once
	labErr  error
)

// applyLabPrefix, in a lab build, makes the prefix named by LabPrefixEnv
// public for go-multiaddr's manet (and so for every libp2p subsystem:
// AutoNAT, DCUtR, relay addresses, identify) by replacing the 10/8 entry
// of manet.Private4 with 10/8 minus that prefix. This is a process-wide
// mutation; it happens once, before the first host is built. Without the
// variable it changes nothing, so a lab binary outside the lab behaves
// like a release binary. Re-check on every go-multiaddr upgrade (the test
// in labprefix_netlab_test.go fails if the list no longer has 10/8).
func applyLabPrefix(log *slog.Logger) error {
	v := os.Getenv(LabPrefixEnv)
	if v == "" {
		return nil
	}
	labOnce.Do(func() {
		var p netip.Prefix
		p, labErr = parseLabPrefix(v)
		if labErr != nil {
			return
		}
		var repl []*net.IPNet
		found := false
		for _, n := range manet.Private4 {
			a, ok := netip.AddrFromSlice(n.IP)
			ones, _ := n.Mask.Size()
			if ok && netip.PrefixFrom(a.Unmap(), ones) == labEnvelope {
				found = true
				for _, r := range excludePrefix(labEnvelope, p) {
					repl = append(repl, &net.IPNet{IP: r.Addr().AsSlice(), Mask: net.CIDRMask(r.Bits(), 32)})
				}
				continue
			}
			repl = append(repl, n)
		}
		if !found {
			labErr = errors.New("manet.Private4 has no 10.0.0.0/8 entry (go-multiaddr changed)")
			return
		}
		manet.Private4 = repl
		log.Warn("LAB BUILD: treating a private prefix as public for libp2p", "prefix", p.String(), "env", LabPrefixEnv)
	})
	if labErr != nil {
		return fmt.Errorf("lab prefix: %w", labErr)
	}
	return nil
}
