package p2p

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestAddrsNudgeAdvertisesAtOnce: an address added through the
// AddrsFactory is in the host's advertised set (EvtLocalAddressesUpdated,
// what identify pushes) right after a nudge, not at libp2p's next 5 s
// recomputation. It guards the libp2p internals the nudge relies on.
func TestAddrsNudgeAdvertisesAtOnce(t *testing.T) {
	h, err := New(context.Background(), Config{IdentityFile: filepath.Join(t.TempDir(), "node.key"),
		Secret: psk(t, secretA), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	sub, err := h.Libp2p().EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Let libp2p's first recomputation pass, so the next tick is ~5 s away.
	time.Sleep(300 * time.Millisecond)
	added := ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/" + h.ID().String() + "/p2p-circuit")
	h.reach.mu.Lock()
	h.reach.circuits = []ma.Multiaddr{added}
	h.reach.mu.Unlock()
	start := time.Now()
	h.nudger.nudge()
	deadline := time.After(2500 * time.Millisecond) // half the libp2p tick
	for {
		select {
		case e := <-sub.Out():
			for _, u := range e.(event.EvtLocalAddressesUpdated).Current {
				if u.Address.Equal(added) {
					t.Logf("advertised %v after the nudge", time.Since(start))
					return
				}
			}
		case <-deadline:
			t.Fatalf("address not advertised within 2.5 s of the nudge: %v", h.Libp2p().Addrs())
		}
	}
}

// TestCandidateUnasked: a member outside our LAN not yet asked about a
// candidate makes it due at once; LAN members never do (they cannot test
// a router mapping).
func TestCandidateUnasked(t *testing.T) {
	a, b, lan := peer.ID("member-a"), peer.ID("member-b"), peer.ID("lan-member")
	tests := []struct {
		name  string
		asked map[peer.ID]bool
		vs    []verifier
		want  bool
	}{
		{"no verifier", nil, nil, false},
		{"new outside member", nil, []verifier{{id: a}}, true},
		{"only a LAN member", nil, []verifier{{id: lan, lan: true}}, false},
		{"outside member already asked", map[peer.ID]bool{a: true}, []verifier{{id: a}, {id: lan, lan: true}}, false},
		{"a second outside member appears", map[peer.ID]bool{a: true}, []verifier{{id: a}, {id: b}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &candState{asked: tc.asked}
			if got := c.unasked(tc.vs); got != tc.want {
				t.Fatalf("unasked = %v, want %v", got, tc.want)
			}
		})
	}
}
