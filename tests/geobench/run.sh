#!/bin/sh
# Runs the geo-latency benchmark in the network lab and prints its table.
# Needs root and the lab tools (tests/netlab/check-tools.sh). Takes 2-4 min.
# Usage: tests/geobench/run.sh   (ENTREPOT_BIN=<netlab-tagged binary> optional;
# GEOBENCH_SIZE=<bytes> for another object size than 1 KiB)
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
GEOBENCH=1 GEOBENCH_OUT="$out" go test -tags netlab -count=1 -timeout 15m \
	-run '^TestGeoLatency$' ./tests/geobench/ >"$out.log" 2>&1 || { cat "$out.log"; rm -f "$out.log"; exit 1; }
rm -f "$out.log"
cat "$out"
