#!/usr/bin/env bash
# Run the public ceph/s3-tests suite (boto3 functional tests) against entrepot.
# Not part of CI: it needs a checkout of https://github.com/ceph/s3-tests outside
# this repository (never commit it). See README.md in this directory.
#
# usage: tests/s3tests/run.sh [options] [-- extra pytest args]
#   --s3tests DIR        s3-tests checkout (default $S3TESTS_DIR or /work/ext/s3-tests)
#   --set NAME           issue2 (default) | garage | all
#   --group G1,G2        run only these groups (see s3t_plugin.py)
#   --out DIR            results directory (default ./s3tests-out/<UTC time>)
#   --timeout SECONDS    per-test timeout (default 120)
#   --install            apt-get install the Debian packages the suite needs
# Target (default: start `entrepot server --dev` on free loopback ports):
#   --entrepot BIN       entrepot binary to start (default: go build ./cli/entrepot)
#   --endpoint URL       use a running server instead; then also give
#   --region R --main ID:SECRET --alt ID:SECRET [--tenant ID:SECRET]
#                        (--alt: a second key that can create buckets and has no
#                        rights on the main key's buckets; --tenant defaults to --alt)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
s3tests="${S3TESTS_DIR:-/work/ext/s3-tests}"
set_name=issue2
groups=""
out=""
timeout=120
install=0
bin=""
endpoint=""
region=""
main_key=""
alt_key=""
tenant_key=""
extra=()

while [ $# -gt 0 ]; do
	case "$1" in
	--s3tests) s3tests="$2"; shift 2 ;;
	--set) set_name="$2"; shift 2 ;;
	--group) groups="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	--timeout) timeout="$2"; shift 2 ;;
	--install) install=1; shift ;;
	--entrepot) bin="$2"; shift 2 ;;
	--endpoint) endpoint="$2"; shift 2 ;;
	--region) region="$2"; shift 2 ;;
	--main) main_key="$2"; shift 2 ;;
	--alt) alt_key="$2"; shift 2 ;;
	--tenant) tenant_key="$2"; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

py=/usr/bin/python3
if [ "$install" = 1 ]; then
	apt-get install -y --no-install-recommends python3-pytest python3-pytest-timeout \
		python3-boto3 python3-botocore python3-munch python3-gevent python3-isodate \
		python3-requests python3-tz python3-httplib2 python3-lxml python3-yaml python3-dateutil
fi
if ! "$py" -c 'import pytest, pytest_timeout, boto3, munch, isodate, pytz, httplib2, lxml, dateutil' 2>/dev/null; then
	echo "run.sh: missing Python modules for $py; rerun with --install (Debian packages)" >&2
	exit 2
fi
if [ ! -f "$s3tests/s3tests/functional/test_s3.py" ]; then
	echo "run.sh: no s3-tests checkout at $s3tests (git clone https://github.com/ceph/s3-tests there)" >&2
	exit 2
fi

[ -n "$out" ] || out="$PWD/s3tests-out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out/home"
out="$(cd "$out" && pwd)"

server_pid=""
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_get() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

if [ -z "$endpoint" ]; then
	if [ -z "$bin" ]; then
		bin="$out/entrepot"
		echo "run.sh: building entrepot -> $bin"
		(cd "$repo" && go build -o "$bin" ./cli/entrepot)
	fi
	data="$out/data"
	mkdir -p "$data"
	s3port="$(free_port)"
	adminport="$(free_port)"
	"$bin" server --dev --data-dir "$data" --s3-listen "127.0.0.1:$s3port" \
		--admin-listen "127.0.0.1:$adminport" >"$out/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 1 100); do
		[ -s "$data/dev-credentials.json" ] && [ -S "$data/admin.sock" ] && break
		kill -0 "$server_pid" 2>/dev/null || { echo "run.sh: server exited; see $out/server.log" >&2; exit 1; }
		sleep 0.1
	done
	endpoint="$(json_get "$data/dev-credentials.json" endpoint)"
	region="$(json_get "$data/dev-credentials.json" region)"
	main_key="$(json_get "$data/dev-credentials.json" access_key_id):$(json_get "$data/dev-credentials.json" secret_access_key)"
	for who in alt tenant; do
		"$bin" --admin-socket "$data/admin.sock" key create "s3tests-$who" --can-create-bucket --json >"$out/key-$who.json"
		k="$(json_get "$out/key-$who.json" access_key_id):$(json_get "$out/key-$who.json" secret_access_key)"
		if [ "$who" = alt ]; then alt_key="$k"; else tenant_key="$k"; fi
	done
	echo "run.sh: entrepot dev server pid $server_pid at $endpoint (data $data)"
else
	if [ -z "$region" ] || [ -z "$main_key" ] || [ -z "$alt_key" ]; then
		echo "run.sh: --endpoint needs --region, --main and --alt" >&2
		exit 2
	fi
fi
[ -n "$tenant_key" ] || tenant_key="$alt_key"

hostport="${endpoint#*://}"
hostport="${hostport%%/*}"
host="${hostport%:*}"
port="${hostport##*:}"
secure=False
case "$endpoint" in https://*) secure=True ;; esac

conf="$out/s3tests.conf"
section() { # name user key:secret
	cat <<EOF
[$1]
display_name = $2
user_id = $2
email = $2@example.com
access_key = ${3%%:*}
secret_key = ${3#*:}
EOF
}
{
	cat <<EOF
[DEFAULT]
host = $host
port = $port
is_secure = $secure
ssl_verify = False

[fixtures]
bucket prefix = s3t-{random}-

EOF
	section "s3 main" main "$main_key"
	# api_name is the LocationConstraint test_bucket_get_location creates a
	# bucket with and expects back. In us-east-1 S3 takes no LocationConstraint
	# and reports none, so leave it empty there (the test then skips).
	[ "$region" = us-east-1 ] || echo "api_name = $region"
	echo
	section "s3 alt" alt "$alt_key"
	echo
	section "s3 tenant" tenant "$tenant_key"
	echo "tenant = tenant"
	echo
	# IAM/STS tests are never selected; the sections only have to exist.
	section "iam" iam "$alt_key"
	echo
	section "iam root" iamroot "$alt_key"
	echo
	section "iam alt root" iamaltroot "$alt_key"
} >"$conf"
chmod 600 "$conf"

# boto3 settings: path-style addressing and the server's region, nothing else
# from the environment (see the README: AWS_* variables and ~/.aws are ignored).
cat >"$out/home/aws-config" <<EOF
[default]
region = $region
s3 =
    addressing_style = path
EOF

junit="$out/junit.xml"
groups_json="$out/groups.json"
cleanup_log="$out/cleanup.jsonl"
: >"$cleanup_log"
pytest_args=(-p s3t_plugin -p no:cacheprovider --s3t-set "$set_name"
	--s3t-groups "$groups_json" --s3t-cleanup-log "$cleanup_log"
	--timeout "$timeout" --junitxml "$junit" -o junit_family=xunit1 -q -rN
	s3tests/functional/test_s3.py s3tests/functional/test_headers.py)
[ -z "$groups" ] || pytest_args+=(--s3t-only-group "$groups")
pytest_args+=("${extra[@]}")

echo "run.sh: set=$set_name timeout=${timeout}s out=$out"
echo "run.sh: s3-tests $(cat "$s3tests/.commit" 2>/dev/null || git -C "$s3tests" rev-parse HEAD 2>/dev/null || echo '(unknown commit)')"
echo "run.sh: boto3 $("$py" -c 'import boto3, botocore; print(boto3.__version__, "botocore", botocore.__version__)')"
set +e
(cd "$s3tests" && env -i PATH=/usr/bin:/bin HOME="$out/home" LANG=C.UTF-8 \
	PYTHONPATH="$here" PYTHONDONTWRITEBYTECODE=1 S3TEST_CONF="$conf" BOTO_DISABLE_CRT=true \
	AWS_CONFIG_FILE="$out/home/aws-config" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	"$py" -m pytest "${pytest_args[@]}") >"$out/pytest.log" 2>&1
rc=$?
set -e
tail -n 3 "$out/pytest.log"
echo
"$py" "$here/summarize.py" "$junit" "$groups_json" "$cleanup_log" --failures "$out/failures.tsv" | tee "$out/summary.txt"
echo
echo "run.sh: results in $out (summary.txt, failures.tsv, junit.xml, pytest.log, server.log)"
# pytest exits 1 when tests failed: that is a result, not a runner error.
[ "$rc" -le 1 ] || exit "$rc"
