package nix_test

import (
	"crypto/rand"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// matchAll evaluates builtins.match of lib.nix's pattern `re` (an
// attribute name) on every input, in one nix-instantiate run.
func matchAll(t *testing.T, re string, inputs []string) []bool {
	t.Helper()
	quoted := make([]string, len(inputs))
	for i, s := range inputs {
		quoted[i] = nixString(s)
	}
	expr := "let l = import " + filepath.Join(repoRoot(t), "nixos-module/lib.nix") +
		"; in map (s: builtins.match l." + re + " s != null) [ " + strings.Join(quoted, " ") + " ]"
	var got []bool
	if err := evalJSON(t, expr, &got); err != nil {
		t.Fatalf("match %s: %v", re, err)
	}
	if len(got) != len(inputs) {
		t.Fatalf("got %d results for %d inputs", len(got), len(inputs))
	}
	return got
}

// numbers are the numeric parts of a Go duration.
var numbers = regexp.MustCompile(`[0-9]+(\.[0-9]*)?|\.[0-9]+`)

// refDuration states durationRe's contract with Go's time.ParseDuration
// (what daemon/config uses): a match is an unsigned duration Go accepts.
// ok is false when Go rejects s only because the value overflows int64
// nanoseconds, which a pattern cannot see (the daemon's range check then
// names the key).
func refDuration(s string) (match, ok bool) {
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		return false, true
	}
	if _, err := time.ParseDuration(s); err == nil {
		return true, true
	}
	// The same units with every number set to 1: if Go accepts that, the
	// original was rejected for its magnitude alone.
	if _, err := time.ParseDuration(numbers.ReplaceAllString(s, "1")); err == nil && s != "" {
		return false, false
	}
	return false, true
}

var durationSeeds = []string{
	"10s", "15s", "100ms", "1h", "1m30s", "1.5h", ".5s", "5.s", "0", "250ms", "1µs", "1μs", "3ns", "2us",
	"", "s", ".", ".s", "10", "-1s", "+1s", "1d", "1 s", " 1s", "1s ", "1S", "1sm", "5m5", "0.0001ns",
	"9223372036854775807ns", "9223372036854775808ns", "2562048h", "00001s", "1e3s", "1h2m3s4ms5us6ns",
}

// FuzzDurationPattern compares lib.nix's durationRe (the check on
// rpc.gossipInterval and rpc.pingInterval) with time.ParseDuration. Each
// input costs one nix-instantiate run.
func FuzzDurationPattern(f *testing.F) {
	for _, s := range durationSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Skip("Nix strings hold no NUL; JSON output needs UTF-8")
		}
		want, ok := refDuration(s)
		if !ok {
			t.Skip("rejected by Go only for overflowing")
		}
		if got := matchAll(t, "durationRe", []string{s})[0]; got != want {
			t.Errorf("durationRe matches %q: %v; time.ParseDuration says %v", s, got, want)
		}
	})
}

// TestPeerIDPattern: every node ID form the daemon accepts matches
// lib.nix's peerIdRe, and the usual mistakes (a multiaddr, a host name) do
// not.
func TestPeerIDPattern(t *testing.T) {
	var ids []string
	for _, gen := range []func() (crypto.PrivKey, error){
		func() (crypto.PrivKey, error) { k, _, err := crypto.GenerateEd25519Key(rand.Reader); return k, err },
		func() (crypto.PrivKey, error) { k, _, err := crypto.GenerateSecp256k1Key(rand.Reader); return k, err },
		func() (crypto.PrivKey, error) { k, _, err := crypto.GenerateECDSAKeyPair(rand.Reader); return k, err },
	} {
		k, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String(), peer.ToCid(id).String())
	}
	for _, s := range ids {
		if _, err := peer.Decode(s); err != nil {
			t.Fatalf("fixture %q is not a node ID: %v", s, err)
		}
	}
	bad := []string{
		"", "nas-paris", "12D3KooW", "/ip4/10.0.0.2/tcp/3901/p2p/" + ids[0], "/p2p/" + ids[0],
		ids[0] + " ", " " + ids[0], strings.ReplaceAll(ids[0], "1", "0"), ids[0] + "," + ids[2],
	}
	got := matchAll(t, "peerIdRe", append(append([]string{}, ids...), bad...))
	for i, s := range ids {
		if !got[i] {
			t.Errorf("peerIdRe rejects node ID %q", s)
		}
	}
	for i, s := range bad {
		if got[len(ids)+i] {
			t.Errorf("peerIdRe accepts %q, which is not a node ID", s)
		}
		if _, err := peer.Decode(s); err == nil {
			t.Errorf("fixture %q is a node ID after all", s)
		}
	}
}
