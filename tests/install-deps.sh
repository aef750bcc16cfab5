#!/usr/bin/env bash
# Installs the Debian packages the end-to-end suites need (S3 clients for
# tests/clients, NAT lab tools for tests/netlab, nix, a browser).
# Idempotent: installs only what is missing, runs `apt-get update` at most
# once, never prompts. Works as root on a fresh Debian 12 (uses sudo when
# not root and sudo exists). Prints what it installs.
set -euo pipefail

packages=(
	awscli rclone s3cmd restic python3-boto3        # tests/clients
	miniupnpd miniupnpd-nftables miniupnpc nftables iproute2 iputils-ping util-linux # tests/netlab, labe2e
	nix-bin jq                                      # tests/nix (offline Nix checks)
	curl chromium                                   # tests/webe2e
)

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages already installed"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then
		sudo=(sudo)
	else
		echo "install-deps: missing ${missing[*]}; run this script as root" >&2
		exit 1
	fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" "${missing[@]}"

still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	echo "install-deps: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "install-deps: done"
