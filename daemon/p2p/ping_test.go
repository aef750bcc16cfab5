package p2p

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// TestSilentPeerGoesDown: a member whose connection stays open but which
// stops answering pings (a WAN cut leaves such dead TCP connections) is
// reported down after 4 unanswered pings, although still "connected".
func TestSilentPeerGoesDown(t *testing.T) {
	a := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key")})
	b := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key"), Bootstrap: a.Addrs()[:1]})
	status := func() PeerStatus {
		for _, p := range a.Peers() {
			if p.ID == b.ID().String() {
				return p
			}
		}
		return PeerStatus{}
	}
	waitFor(t, "b up", 10*time.Second, func() bool { return status().Up })
	// b swallows pings without answering.
	b.Libp2p().SetStreamHandler(ping.ID, func(s network.Stream) { _, _ = io.Copy(io.Discard, s) })
	start := time.Now()
	waitFor(t, "b down", 20*time.Second, func() bool { st := status(); return !st.Up && st.Connected })
	t.Logf("silent peer down after %v", time.Since(start))
}
