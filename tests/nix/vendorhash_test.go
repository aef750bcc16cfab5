package nix_test

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// pinnedGoMinor is the Go minor version of buildGo126Module in the pinned
// nixpkgs; vendor trees from other minors may differ (vendor/modules.txt).
const pinnedGoMinor = "go1.26"

var vendorHashRe = regexp.MustCompile(`(?m)^\s*vendorHash = (null|"([^"]*)");`)

func flakeVendorHash(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "flake.nix"))
	if err != nil {
		t.Fatal(err)
	}
	m := vendorHashRe.FindAllStringSubmatch(string(b), -1)
	if len(m) != 1 {
		t.Fatalf("flake.nix must contain exactly one `vendorHash = \"sha256-…\";` line, found %d", len(m))
	}
	if m[0][1] == "null" {
		return "null"
	}
	return m[0][2]
}

// TestVendorHash recomputes the hash of `go mod vendor` over the flake's
// Go sources and compares it with flake.nix.
func TestVendorHash(t *testing.T) {
	needTool(t, "nix")
	needTool(t, "go")
	needTool(t, "git")
	want := flakeVendorHash(t)
	if want != "null" && !regexp.MustCompile(`^sha256-[A-Za-z0-9+/]{43}=$`).MatchString(want) {
		t.Fatalf("vendorHash %q in flake.nix is not an SRI sha256 hash", want)
	}
	root := repoRoot(t)
	out, err := run(t, root, []string{"GOFLAGS="}, "bash", filepath.Join(root, "tests/nix/update-vendorhash.sh"), "--print")
	if err != nil {
		t.Fatalf("compute vendorHash: %v", err)
	}
	got := strings.TrimSpace(out)
	if got == want {
		return
	}
	msg := "vendorHash in flake.nix is stale (go.mod/go.sum or the vendored imports changed):\n" +
		"  flake.nix: " + want + "\n  computed:  " + got + "\n" +
		"fix: tests/nix/update-vendorhash.sh   (rewrites flake.nix; run it with Go 1.26.x and commit flake.nix)"
	v := runtime.Version()
	if v == pinnedGoMinor || strings.HasPrefix(v, pinnedGoMinor+".") {
		t.Fatal(msg)
	}
	skip(t, "local "+v+" is not "+pinnedGoMinor+".x, so the computed hash is not authoritative:\n"+msg)
}

// TestVendorHashLineFormat keeps the line the updater rewrites in the
// shape it expects.
func TestVendorHashLineFormat(t *testing.T) {
	cases := map[string]struct {
		src  string
		want int
	}{
		"sri":     {`  vendorHash = "sha256-Do88ZYmNY7R9oLKuZPJJ79Kof7rS8dQOtTefxBJqHKc=";`, 1},
		"null":    {`      vendorHash = null;`, 1},
		"comment": {`# vendorHash = "x"`, 0},
		"inline":  {`{ vendorHash = "x"; }`, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := len(vendorHashRe.FindAllString(tc.src, -1)); got != tc.want {
				t.Errorf("matches in %q = %d, want %d", tc.src, got, tc.want)
			}
		})
	}
}
