#!/usr/bin/env bash
# natbench.sh: NAT timing figures of issue 4 on the namespace lab (root).
# Runs TestNATAnnounceTiming RUNS times per router kind, on unshaped links
# and with 25 ms each way on every home's access link (100 ms RTT between
# homes), and prints the min / median / max table: process start to
# mapped, confirmed, advertised, announced (first member, all members),
# removal after SIGTERM, and the "no gateway" decision.
#
# With DNAT_WATCH set (say 6m) it also counts the router writes of a node
# behind a double NAT over that long (TestNATDoubleNATRouterWrites).
#
#   sudo tests/labe2e/natbench.sh            # RUNS=10
#   RUNS=20 DELAYS="0 25ms 50ms" DNAT_WATCH=6m sudo -E tests/labe2e/natbench.sh
#
# ENTREPOT_BIN may point at a binary built with -tags netlab; otherwise one
# is built into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-10}
DELAYS=${DELAYS:-"0 25ms"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z "${ENTREPOT_BIN:-}" ]]; then
	go build -tags netlab -o "$tmp/entrepot" ./cli/entrepot
	export ENTREPOT_BIN="$tmp/entrepot"
fi
for d in $DELAYS; do
	echo "== access-link delay ${d} each way (RTT between homes $([[ $d == 0 ]] && echo "~0" || echo "4 x $d")), ${RUNS} runs per router =="
	LABE2E_NAT_RUNS=$RUNS LABE2E_NAT_LINK_DELAY=$d \
		go test -count=1 -tags netlab -timeout 30m -run '^TestNATAnnounceTiming$' -v ./tests/labe2e/ >"$tmp/out.txt" 2>&1 || {
		tail -n 60 "$tmp/out.txt"
		exit 1
	}
	grep -o 'FIGURE nat-announce summary.*' "$tmp/out.txt" | sed 's/^FIGURE nat-announce summary //'
done
if [[ -n "${DNAT_WATCH:-}" ]]; then
	echo "== double NAT: router writes over ${DNAT_WATCH} =="
	LABE2E_DNAT_WATCH=$DNAT_WATCH \
		go test -count=1 -tags netlab -timeout 30m -run '^TestNATDoubleNATRouterWrites$' -v ./tests/labe2e/ >"$tmp/out.txt" 2>&1 || {
		tail -n 60 "$tmp/out.txt"
		exit 1
	}
	grep -o 'FIGURE double NAT.*' "$tmp/out.txt" | sed 's/^FIGURE //'
fi
