package nix_test

import (
	"strings"
	"testing"
)

// TestNixFilesParse parses every .nix file git knows about (tracked, or
// untracked but not ignored), which catches syntax errors and undefined
// variables.
func TestNixFilesParse(t *testing.T) {
	ni := needTool(t, "nix-instantiate")
	git := needTool(t, "git")
	root := repoRoot(t)
	out, err := run(t, root, nil, git, "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.nix")
	if err != nil {
		t.Fatalf("list nix files: %v", err)
	}
	files := strings.Fields(out)
	if len(files) < 5 {
		t.Fatalf("found only %d .nix files (%v); expected flake.nix, nixos-module/ and tests/nix/", len(files), files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if _, err := run(t, root, nixEnv, ni, "--parse", f); err != nil {
				t.Errorf("%s does not parse: %v", f, err)
			}
		})
	}
}

// TestParseDetectsErrors proves the parse check can fail.
func TestParseDetectsErrors(t *testing.T) {
	ni := needTool(t, "nix-instantiate")
	cases := map[string]string{
		"syntax":             "{ a = 1 ",
		"undefined variable": "x: y",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := run(t, t.TempDir(), nixEnv, ni, "--parse", "-E", src); err == nil {
				t.Errorf("nix-instantiate --parse accepted %q", src)
			}
		})
	}
}
