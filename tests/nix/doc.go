// Package nix holds the offline CI checks of the Nix side of entrepot:
// flake.nix, flake.lock and the services.entrepot NixOS module in
// nixos-module/.
//
// Everything here runs without network access and without nixpkgs, using
// only a Nix evaluator (Debian's nix-bin 2.8 is enough) and Go:
//
//   - every .nix file in the repository parses (nix-instantiate --parse);
//   - flake.lock has the expected structure, agrees with flake.nix's input
//     URL and pins nixpkgs to testdata/nixpkgs-pin.json (lockcheck.nix);
//   - vendorHash in flake.nix equals the hash of `go mod vendor`
//     (update-vendorhash.sh recomputes and rewrites it);
//   - the builtins-only logic in nixos-module/lib.nix (rendering, firewall
//     ports, assertions, warnings) matches table cases;
//   - the TOML rendered for the samples in testdata/ matches the golden
//     files, and a built entrepot accepts it with --check-config;
//   - every key daemon/config decodes (read from its struct tags) is either
//     owned by a typed option (lib.nix managedKeys) or listed as reached
//     through settings (settingsOnlyKeys), and has a row in the README's
//     key table; options that stand in for the daemon's default agree with
//     config.Default();
//   - the generated ensure script is idempotent against a fake CLI;
//   - with NIXPKGS_LIB_PATH pointing at a nixpkgs lib/ tree, the module is
//     evaluated with lib.evalModules against stubbed NixOS options
//     (evalmodules.nix).
//
// Checks whose tools are missing skip with a message saying why; set
// ENTREPOT_REQUIRE_NIX=1 to turn a missing nix-instantiate into a failure.
// Run with -v to see the summary of skipped checks.
//
// The NixOS VM tests in vm/ need full nixpkgs, Nix >= 2.18 and KVM; they run
// with `nix flake check` on such a machine, not from go test.
package nix
