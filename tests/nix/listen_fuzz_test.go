package nix_test

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// listen is lib.nix's parseListen result.
type listen struct {
	Host  string `json:"host"`
	Port  int    `json:"port"`
	Proto string `json:"proto"`
}

// refParseListen is an independent Go statement of parseListen's contract.
func refParseListen(s string) *listen {
	port := func(p string) (int, bool) {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return 0, false
		}
		p = strings.TrimLeft(p, "0")
		if len(p) > 5 {
			return 0, false
		}
		if p == "" {
			return 0, false // port 0
		}
		n, _ := strconv.Atoi(p)
		return n, n >= 1 && n <= 65535
	}
	switch {
	case strings.HasPrefix(s, "/"):
		parts := strings.SplitN(s[1:], "/", 5)
		if len(parts) < 4 {
			return nil
		}
		switch parts[0] {
		case "ip4", "ip6", "dns", "dns4", "dns6":
		default:
			return nil
		}
		if parts[1] == "" || (parts[2] != "tcp" && parts[2] != "udp") {
			return nil
		}
		n, ok := port(parts[3])
		if !ok {
			return nil
		}
		return &listen{Host: parts[1], Port: n, Proto: parts[2]}
	case strings.HasPrefix(s, "["):
		i := strings.IndexAny(s[1:], "[]")
		if i < 0 || s[1+i] != ']' || !strings.HasPrefix(s[2+i:], ":") {
			return nil
		}
		n, ok := port(s[3+i:])
		if !ok {
			return nil
		}
		return &listen{Host: s[1 : 1+i], Port: n, Proto: "tcp"}
	default:
		i := strings.IndexByte(s, ':')
		if i < 0 || strings.ContainsAny(s[:i], "[]/") {
			return nil
		}
		n, ok := port(s[i+1:])
		if !ok {
			return nil
		}
		return &listen{Host: s[:i], Port: n, Proto: "tcp"}
	}
}

var listenSeeds = []string{
	"[::]:3900", "0.0.0.0:80", ":443", "localhost:1", "127.0.0.1:3903", "[::1]:3902",
	"/ip4/1.2.3.4/tcp/3901", "/ip6/::/udp/4001/quic-v1", "/dns4/a.example/tcp/5/p2p/x",
	"/run/entrepot/admin.sock", "", "nope", "[::]:0", "[::]:000080", "[::]:65536", "[::]:123456",
	"a:b:1", "[a]b]:1", "/ip4//tcp/1", "/ip4/x/tcp/1/", "host:\n1", "h\nost:1", "${x}:1", "\\:1",
}

// FuzzParseListen compares lib.nix's parseListen (evaluated by Nix) with
// refParseListen. Each input costs one nix-instantiate run.
func FuzzParseListen(f *testing.F) {
	for _, s := range listenSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Skip("Nix strings hold no NUL; JSON output needs UTF-8")
		}
		var got *listen
		expr := "(import " + filepath.Join(repoRoot(t), "nixos-module/lib.nix") + ").parseListen " + nixString(s)
		if err := evalJSON(t, expr, &got); err != nil {
			t.Fatalf("parseListen %q: %v", s, err)
		}
		want := refParseListen(s)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("parseListen %q = %s, reference says %s", s, g, w)
		}
	})
}

// FuzzNixString checks that nixString round-trips any string through Nix.
func FuzzNixString(f *testing.F) {
	for _, s := range append(listenSeeds, `"quoted"`, "$", "$${", "a\\nb", "tab\there", "<&>") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Skip("Nix strings hold no NUL; JSON output needs UTF-8")
		}
		var got string
		if err := evalJSON(t, nixString(s), &got); err != nil {
			t.Fatalf("evaluate %s: %v", nixString(s), err)
		}
		if got != s {
			t.Errorf("nixString(%q) evaluates to %q", s, got)
		}
	})
}
