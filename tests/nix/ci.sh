#!/usr/bin/env bash
# Offline Nix checks for CI (.ci/run calls this): runs go test ./tests/nix/...
# and prints each result line plus every skipped check with its reason.
#
#   ENTREPOT_REQUIRE_NIX  default 1 here: a missing nix-instantiate fails
#                         instead of skipping (apt-get install nix-bin).
#   NIXPKGS_LIB_PATH      a nixpkgs lib/ directory: enables the lib-only
#                         evalModules and flake-outputs checks.
#   ENTREPOT_BIN          a built entrepot; otherwise ./cli/entrepot is built.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ENTREPOT_REQUIRE_NIX="${ENTREPOT_REQUIRE_NIX:-1}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

rc=0
go test -count=1 -v ./tests/nix/... >"$log" 2>&1 || rc=$?

grep -E '^(--- (PASS|FAIL|SKIP)|ok |FAIL)' "$log" || true
if grep -q '^nix checks skipped:' "$log"; then
  sed -n '/^nix checks skipped:/,/^\(ok\|FAIL\|PASS\)/p' "$log" | grep -E '^(nix checks skipped:|  skipped:)'
else
  echo "nix checks: nothing skipped"
fi
if [ "$rc" -ne 0 ]; then
  echo "---- full output of the failed run ----"
  cat "$log"
fi
exit "$rc"
