package nix_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lockProblems runs lockcheck.nix on the given files.
func lockProblems(t *testing.T, lockFile, flakeFile string) []string {
	t.Helper()
	root := repoRoot(t)
	expr := "import " + filepath.Join(root, "tests/nix/lockcheck.nix") + " { lockFile = " + nixString(lockFile) +
		"; flakeFile = " + nixString(flakeFile) + "; pinFile = " + nixString(filepath.Join(root, "tests/nix/testdata/nixpkgs-pin.json")) + "; }"
	var problems []string
	if err := evalJSON(t, expr, &problems); err != nil {
		t.Fatalf("lockcheck: %v", err)
	}
	return problems
}

func TestFlakeLock(t *testing.T) {
	root := repoRoot(t)
	if p := lockProblems(t, filepath.Join(root, "flake.lock"), filepath.Join(root, "flake.nix")); len(p) != 0 {
		t.Errorf("flake.lock problems:\n  %s", strings.Join(p, "\n  "))
	}
}

// TestFlakeLockDetects mutates a copy of the lock (or the flake URL) and
// checks that each mutation is reported.
func TestFlakeLockDetects(t *testing.T) {
	root := repoRoot(t)
	good, err := os.ReadFile(filepath.Join(root, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	flake, err := os.ReadFile(filepath.Join(root, "flake.nix"))
	if err != nil {
		t.Fatal(err)
	}
	const url = `"github:NixOS/nixpkgs/nixos-26.05"`
	if !strings.Contains(string(flake), url) {
		t.Fatalf("flake.nix does not contain %s", url)
	}
	type lockMap = map[string]any
	nixpkgs := func(l lockMap) lockMap { return l["nodes"].(lockMap)["nixpkgs"].(lockMap) }
	cases := []struct {
		name   string
		mutate func(lockMap)
		url    string // replaces the flake URL when set
		want   string
	}{
		{"version", func(l lockMap) { l["version"] = 6 }, "", "version is 6"},
		{"rev not pinned", func(l lockMap) { nixpkgs(l)["locked"].(lockMap)["rev"] = strings.Repeat("a", 40) }, "", "differs from the pin"},
		{"rev malformed", func(l lockMap) { nixpkgs(l)["locked"].(lockMap)["rev"] = "main" }, "", "is not 40 hex digits"},
		{"narHash malformed", func(l lockMap) { nixpkgs(l)["locked"].(lockMap)["narHash"] = "sha256-short=" }, "", "not an SRI sha256"},
		{"lastModified string", func(l lockMap) { nixpkgs(l)["locked"].(lockMap)["lastModified"] = "1790920529" }, "", "not an integer"},
		{"original uses rev", func(l lockMap) {
			o := nixpkgs(l)["original"].(lockMap)
			delete(o, "ref")
			o["rev"] = "774debe7a0d1b496e35677ad955a1011c6ff74f3"
		}, "", "would re-lock"},
		{"extra node", func(l lockMap) { l["nodes"].(lockMap)["flake-utils"] = lockMap{} }, "", "nodes are"},
		{"url on another branch", nil, `"github:NixOS/nixpkgs/nixos-unstable"`, "would re-lock"},
		{"url by rev", nil, `"github:NixOS/nixpkgs/774debe7a0d1b496e35677ad955a1011c6ff74f3"`, "would re-lock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var l lockMap
			if err := json.Unmarshal(good, &l); err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				tc.mutate(l)
			}
			b, _ := json.Marshal(l)
			lf := filepath.Join(dir, "flake.lock")
			ff := filepath.Join(dir, "flake.nix")
			f := string(flake)
			if tc.url != "" {
				f = strings.Replace(f, url, tc.url, 1)
			}
			if err := os.WriteFile(lf, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ff, []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
			p := lockProblems(t, lf, ff)
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Errorf("problems %q do not mention %q", p, tc.want)
			}
		})
	}
}
