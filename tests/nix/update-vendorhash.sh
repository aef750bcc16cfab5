#!/usr/bin/env bash
# Recomputes the vendorHash of flake.nix the way buildGoModule does:
# `go mod vendor` over the flake's goSrcPaths (tracked files only, as a flake
# sees them), then `nix hash path vendor`.
#
#   tests/nix/update-vendorhash.sh          rewrite vendorHash in flake.nix
#   tests/nix/update-vendorhash.sh --print  only print the computed value
#
# Needs Go 1.26.x (the pinned nixpkgs' minor version) and nix (nix-command).
set -euo pipefail

mode=write
case "${1:-}" in
  --print) mode=print ;;
  "") ;;
  *) echo "usage: $0 [--print]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
flake="$root/flake.nix"

paths=$(sed -n 's/^ *goSrcPaths = \[\(.*\)\];.*/\1/p' "$flake" | tr -d '"')
if [ -z "$paths" ]; then
  echo "update-vendorhash: no 'goSrcPaths = [ ... ];' line in $flake" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

# Copy what the flake would see: tracked files when in a git work tree.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  (cd "$root" && git ls-files -z -- $paths) |
    (cd "$root" && xargs -0 -r cp --parents -t "$tmp" --)
else
  # shellcheck disable=SC2086
  (cd "$root" && for p in $paths; do if [ -e "$p" ]; then cp -r --parents "$p" "$tmp"; fi; done)
fi
rm -rf "$tmp/vendor"
if [ ! -f "$tmp/go.mod" ]; then
  echo "update-vendorhash: go.mod is not tracked by git (git add go.mod go.sum first)" >&2
  exit 1
fi

(
  cd "$tmp"
  GOTOOLCHAIN=local GOFLAGS= GOWORK=off go mod vendor
  mkdir -p vendor
)

if [ -z "$(ls -A "$tmp/vendor")" ]; then
  new=null
else
  new=$(nix --extra-experimental-features nix-command hash path "$tmp/vendor")
fi

if [ "$mode" = print ]; then
  echo "$new"
  exit 0
fi

if [ "$new" = null ]; then
  repl='vendorHash = null;'
else
  repl="vendorHash = \"$new\";"
fi
sed -i -E "s|^( *)vendorHash = (null\|\"[^\"]*\");|\1$repl|" "$flake"
grep -q -F "$repl" "$flake" || { echo "update-vendorhash: could not rewrite vendorHash in $flake" >&2; exit 1; }
echo "vendorHash = $new ($(go version | awk '{print $3}'))"
