package p2p

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestDialbackVerify(t *testing.T) {
	a := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key")})
	other := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key")})
	foreign := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key"), Secret: psk(t, secretB)})
	closedPort := "/ip4/127.0.0.1/tcp/" + itoa(int(freeTCPPort(t)))
	key, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	d := newDialbacker(psk(t, secretA), key, "entrepot")
	addrOf := func(h *Host) string { return tcpListenAddr(t, h).String() }
	cases := []struct {
		name   string
		addr   string
		target peer.ID
		errHas string // "" = confirmed
	}{
		{"the node itself", addrOf(a), a.ID(), ""},
		{"with /p2p suffix", addrOf(a) + "/p2p/" + a.ID().String(), a.ID(), ""},
		{"another member answers", addrOf(other), a.ID(), "handshake"},
		{"a node with another secret", addrOf(foreign), foreign.ID(), "negotiate security"},
		{"closed port", closedPort, a.ID(), "dial"},
		{"relay address", addrOf(a) + "/p2p/" + other.ID().String() + "/p2p-circuit", a.ID(), "relay address"},
		{"udp", "/ip4/127.0.0.1/udp/4001", a.ID(), "not TCP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := d.verify(ctx, ma.StringCast(tc.addr), tc.target)
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.errHas)
			}
		})
	}
	// A check creates no libp2p connection on the checked node.
	time.Sleep(100 * time.Millisecond)
	if n := len(a.Libp2p().Network().Peers()); n != 0 {
		t.Fatalf("checked node has %d peers after dial-backs", n)
	}
}

func TestDialbackAskOverStream(t *testing.T) {
	a := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key")})
	b := startCfg(t, Config{IdentityFile: filepath.Join(t.TempDir(), "node.key"), Bootstrap: a.Addrs()[:1]})
	waitFor(t, "connected", 10*time.Second, func() bool { return len(b.Libp2p().Network().ConnsToPeer(a.ID())) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	good := tcpListenAddr(t, b)
	bad := ma.StringCast("/ip4/127.0.0.1/tcp/" + itoa(int(freeTCPPort(t))))
	ok, err := b.db.ask(ctx, b.Libp2p(), a.ID(), []ma.Multiaddr{good, bad})
	if err != nil {
		t.Fatal(err)
	}
	if len(ok) != 2 || !ok[0] || ok[1] {
		t.Fatalf("results = %v, want [true false]", ok)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

var dialbackCases = []struct {
	name string
	in   string
	n    int // addresses decoded; -1 = error
}{
	{"one", `{"addrs":["/ip4/1.2.3.4/tcp/3901"]}`, 1},
	{"two", `{"addrs":["/ip4/1.2.3.4/tcp/3901","/ip6/::1/tcp/1"]}`, 2},
	{"empty list", `{"addrs":[]}`, -1},
	{"too many", `{"addrs":["/ip4/1.1.1.1/tcp/1","/ip4/1.1.1.1/tcp/2","/ip4/1.1.1.1/tcp/3","/ip4/1.1.1.1/tcp/4","/ip4/1.1.1.1/tcp/5","/ip4/1.1.1.1/tcp/6","/ip4/1.1.1.1/tcp/7","/ip4/1.1.1.1/tcp/8","/ip4/1.1.1.1/tcp/9"]}`, -1},
	{"bad multiaddr", `{"addrs":["1.2.3.4:80"]}`, -1},
	{"not json", `addrs`, -1},
	{"huge", `{"addrs":["` + strings.Repeat("a", 9000) + `"]}`, -1},
}

func TestDecodeDialbackRequest(t *testing.T) {
	for _, tc := range dialbackCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeDialbackRequest(strings.NewReader(tc.in))
			if tc.n < 0 {
				if !errors.Is(err, ErrBadDialback) {
					t.Fatalf("err = %v, want ErrBadDialback", err)
				}
				return
			}
			if err != nil || len(got) != tc.n {
				t.Fatalf("got %v, %v; want %d addresses", got, err, tc.n)
			}
		})
	}
}

func FuzzDecodeDialbackRequest(f *testing.F) {
	for _, tc := range dialbackCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeDialbackRequest(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrBadDialback) {
				t.Fatalf("error not ErrBadDialback: %v", err)
			}
			return
		}
		if len(got) == 0 || len(got) > dialbackMaxAddrs {
			t.Fatalf("accepted %d addresses", len(got))
		}
	})
}

func tcpListenAddr(t *testing.T, h *Host) ma.Multiaddr {
	t.Helper()
	for _, a := range h.Libp2p().Network().ListenAddresses() {
		if _, ok := tcpPort(a); ok {
			return a
		}
	}
	t.Fatal("no TCP listen address")
	return nil
}

func TestSameSubnet(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"/ip4/192.168.11.10/tcp/1", "/ip4/192.168.11.11/tcp/2", true},
		{"/ip4/192.168.11.10/tcp/1", "/ip4/192.168.12.10/tcp/2", false},
		{"/ip4/10.77.0.11/tcp/1", "/ip4/10.77.0.12/tcp/1", true},
		{"/ip6/fd00::1/tcp/1", "/ip6/fd00::2/tcp/1", true},
		{"/ip6/fd00::1/tcp/1", "/ip6/fd01::1/tcp/1", false},
		{"/ip4/192.168.11.10/tcp/1", "/ip6/fd00::1/tcp/1", false},
	}
	for _, c := range cases {
		if got := sameSubnet(ma.StringCast(c.a), ma.StringCast(c.b)); got != c.same {
			t.Errorf("sameSubnet(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}
