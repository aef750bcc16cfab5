#!/usr/bin/env bash
# Side-by-side benchmark: MinIO (single drive) and entrepot --dev on loopback,
# driven by the project's bench tool (tests/bench) with the same parameters.
# Not part of CI: it needs a MinIO binary built from its public source outside
# this repository (never commit it). See README.md in this directory.
#
# usage: tests/s3tests/bench-compare.sh [options] [-- extra tests/bench flags]
#   --minio BIN        MinIO server binary (default $MINIO_BIN or /work/ext/minio/minio-bin)
#   --entrepot BIN     entrepot binary (default: go build ./cli/entrepot)
#   --runs N           runs per server, alternating which goes first (default 3)
#   --workers N        bench -workers (default 16)
#   --duration D       bench -duration per phase (default 20s)
#   --ops LIST         bench -ops (default put,get,mixed,latency; tests/bench only)
#   --tool NAME        bench (default): tests/bench, which sends the same body on every
#                      PUT; uniq: tests/s3tests/uniqbench, PUT/GET only, every body
#                      unique (a deduplicating store must write every byte)
#   --data-root DIR    where the servers' data dirs go (default: $out/data; must be
#                      a real disk, not tmpfs, or fsync costs nothing)
#   --out DIR          results (default ./bench-out/<UTC time>)
#   --only NAME        run only minio or only entrepot
# Both servers get a fresh, empty data directory per run. Reported per server:
# the bench figures (median over runs), time from exec to the first answered
# HTTP request, RSS 2 s after start (idle) and VmHWM at the end (peak).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
minio="${MINIO_BIN:-/work/ext/minio/minio-bin}"
entrepot=""
runs=3
workers=16
duration=20s
ops=put,get,mixed,latency
out=""
data_root=""
only=""
tool=bench
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--minio) minio="$2"; shift 2 ;;
	--entrepot) entrepot="$2"; shift 2 ;;
	--runs) runs="$2"; shift 2 ;;
	--workers) workers="$2"; shift 2 ;;
	--duration) duration="$2"; shift 2 ;;
	--ops) ops="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	--data-root) data_root="$2"; shift 2 ;;
	--only) only="$2"; shift 2 ;;
	--tool) tool="$2"; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "bench-compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$runs" in ''|*[!0-9]*) echo "bench-compare.sh: --runs wants a number" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] && [ "$runs" -le 10 ] || { echo "bench-compare.sh: --runs 1..10" >&2; exit 2; }

[ -n "$out" ] || out="$PWD/bench-out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
[ -n "$data_root" ] || data_root="$out/data"
mkdir -p "$data_root"
if [ "$(stat -f -c %T "$data_root")" = tmpfs ]; then
	echo "bench-compare.sh: $data_root is tmpfs; use --data-root on a disk" >&2
	exit 2
fi

servers=(minio entrepot)
[ -z "$only" ] || servers=("$only")
if [[ " ${servers[*]} " == *" minio "* ]] && [ ! -x "$minio" ]; then
	echo "bench-compare.sh: no MinIO binary at $minio (build it from github.com/minio/minio outside the repo; --minio BIN)" >&2
	exit 2
fi
case "$tool" in
bench) pkg=./tests/bench; tool_args=(-ops "$ops") ;;
uniq) pkg=./tests/s3tests/uniqbench; tool_args=() ;;
*) echo "bench-compare.sh: --tool bench or uniq" >&2; exit 2 ;;
esac
also=""; [ -n "$entrepot" ] || also=" and ./cli/entrepot"
echo "bench-compare.sh: building $pkg$also"
(cd "$repo" && go build -o "$out/bench" "$pkg")
if [ -z "$entrepot" ]; then
	entrepot="$out/entrepot"
	(cd "$repo" && go build -o "$entrepot" ./cli/entrepot)
fi

py=/usr/bin/python3
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_get() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
status_kb() { awk -v f="$2:" '$1==f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now_ns() { date +%s%N; }

pid=""
stop_server() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=""
}
trap stop_server EXIT

# wait_http URL: until any HTTP status comes back (bounded to 30 s).
wait_http() {
	for _ in $(seq 1 3000); do
		code="$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1" 2>/dev/null || true)"
		[ -n "$code" ] && [ "$code" != 000 ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

run_one() { # server run
	local name="$1" run="$2" data="$data_root/$1-$2" port endpoint region key secret t0 t1
	rm -rf "$data"
	mkdir -p "$data"
	port="$(free_port)"
	t0="$(now_ns)"
	case "$name" in
	minio)
		key="bench$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		env -i PATH=/usr/bin:/bin HOME="$data" MINIO_ROOT_USER="$key" MINIO_ROOT_PASSWORD="$secret" \
			MINIO_UPDATE=off MINIO_BROWSER=off \
			"$minio" server "$data/drive" --address "127.0.0.1:$port" --console-address "127.0.0.1:$(free_port)" \
			>"$out/$name-$run.server.log" 2>&1 &
		pid=$!
		endpoint="http://127.0.0.1:$port"
		region=us-east-1
		wait_http "$endpoint/" || { echo "minio did not start; see $out/$name-$run.server.log" >&2; return 1; }
		;;
	entrepot)
		env -i PATH=/usr/bin:/bin HOME="$data" "$entrepot" server --dev --data-dir "$data/dev" \
			--s3-listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$(free_port)" \
			>"$out/$name-$run.server.log" 2>&1 &
		pid=$!
		endpoint="http://127.0.0.1:$port"
		wait_http "$endpoint/" || { echo "entrepot did not start; see $out/$name-$run.server.log" >&2; return 1; }
		for _ in $(seq 1 100); do [ -s "$data/dev/dev-credentials.json" ] && break; sleep 0.05; done
		region="$(json_get "$data/dev/dev-credentials.json" region)"
		key="$(json_get "$data/dev/dev-credentials.json" access_key_id)"
		secret="$(json_get "$data/dev/dev-credentials.json" secret_access_key)"
		;;
	esac
	t1="$(now_ns)"
	sleep 2
	local idle peak
	idle="$(status_kb "$pid" VmRSS)"
	echo "bench-compare.sh: $name run $run: pid $pid, up in $(( (t1 - t0) / 1000000 )) ms, idle RSS $(( idle / 1024 )) MiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
	env -i PATH=/usr/bin:/bin HOME="$data" "$out/bench" -endpoint "$endpoint" -region "$region" \
		-access-key "$key" -secret-key "$secret" -workers "$workers" -duration "$duration" \
		"${tool_args[@]}" -json "$out/$name-$run.json" "${extra[@]}" >"$out/$name-$run.txt" 2>"$out/$name-$run.stderr" \
		|| echo "bench-compare.sh: bench exited $? for $name run $run (see $out/$name-$run.stderr)" >&2
	peak="$(status_kb "$pid" VmHWM)"
	cat >"$out/$name-$run.server.json" <<EOF
{"server": "$name", "run": $run, "start_to_first_response_ms": $(( (t1 - t0) / 1000000 )), "idle_rss_kib": ${idle:-0}, "peak_rss_kib": ${peak:-0}, "loadavg_after": "$(cut -d' ' -f1-3 /proc/loadavg)"}
EOF
	cat "$out/$name-$run.txt"
	stop_server
	rm -rf "$data"
}

{
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
	echo "minio: $minio (source commit $(cat "$(dirname "$minio")/.commit" 2>/dev/null || echo unknown))"
	echo "entrepot: $entrepot ($("$entrepot" version 2>/dev/null | head -n 1); repo HEAD $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null))"
	echo "bench: $pkg -workers $workers -duration $duration ${tool_args[*]} ${extra[*]}"
	echo "data: $data_root ($(stat -f -c %T "$data_root"))"
} | tee "$out/setup.txt"

for run in $(seq 1 "$runs"); do
	order=("${servers[@]}")
	if [ "${#servers[@]}" = 2 ] && [ $((run % 2)) = 0 ]; then order=(entrepot minio); fi
	for s in "${order[@]}"; do
		run_one "$s" "$run"
	done
done

echo
"$py" "$here/bench_table.py" "$out" | tee "$out/table.md"
echo "bench-compare.sh: results in $out"
