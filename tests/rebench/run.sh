#!/bin/sh
# Runs the rebalance benchmark in the network lab and prints its table.
# Needs root and the lab tools (tests/netlab/check-tools.sh). Takes 2-3 min.
# Usage: tests/rebench/run.sh
#   ENTREPOT_BIN=<go build -tags netlab binary>  (optional; built otherwise)
#   REBENCH_MIB=128  data filled before the join; REBENCH_MBIT=20  home 4's link
#   REBENCH_NOTSENT_LOWAT=<bytes>  sets net.ipv4.tcp_notsent_lowat in the
#     nodes' namespaces (kernel default, no limit, otherwise)
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out" "$out.log"' EXIT
REBENCH=1 REBENCH_OUT="$out" go test -tags netlab -count=1 -timeout 20m \
	-run '^TestRebalanceRate$' ./tests/rebench/ >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
cat "$out"
