#!/usr/bin/env bash
# The whole entrepot test suite: installs what it needs (Debian packages), then runs
# vet, unit/integration tests (root-only suites included when run as root), short fuzz
# runs of every fuzz target, and the offline Nix checks. Used by README and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
: "${FUZZTIME:=10s}"

if [ "$(id -u)" = 0 ]; then
  bash tests/install-deps.sh
else
  echo "run-all: not root: skipping apt installs; namespace/NAT suites will skip" >&2
fi

command -v go >/dev/null || { echo "run-all: Go >= 1.26 is required on PATH" >&2; exit 1; }
echo "== go vet"
go vet ./...

echo "== go test"
go test -count=1 -timeout 25m ./... 2>&1 | tee /tmp/entrepot-gotest.log
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || { echo "run-all: go test failed" >&2; exit "$status"; }

echo "== fuzz (each target ${FUZZTIME})"
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . | while read -r f; do
  dir=$(dirname "$f")
  for t in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
    echo "-- $dir $t"
    go test -run='^$' -fuzz="^${t}\$" -fuzztime="$FUZZTIME" "./${dir#./}" >/tmp/entrepot-fuzz.log 2>&1 || { cat /tmp/entrepot-fuzz.log; echo "run-all: fuzz $t failed" >&2; exit 1; }
  done
done

echo "run-all: all suites passed"
