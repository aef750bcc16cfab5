#!/bin/sh
# Reports which tools the netlab package needs and which are missing.
# Installs nothing. Exit status 1 when a required tool is missing.
required="ip nft nsenter miniupnpd"
test_tools="upnpc"
optional="ping natpmpc iperf3 tc"
PATH="$PATH:/usr/sbin:/sbin"
status=0
check() {
	group=$1; shift
	for t in "$@"; do
		if command -v "$t" >/dev/null 2>&1; then
			printf '%-9s %-10s ok (%s)\n' "$group" "$t" "$(command -v "$t")"
		else
			printf '%-9s %-10s MISSING\n' "$group" "$t"
			[ "$group" = required ] && status=1
		fi
	done
}
check required $required
check test $test_tools
check optional $optional
if [ "$(id -u)" != 0 ]; then
	echo "note: the lab needs root (network namespaces); its tests skip otherwise"
fi
if [ $status != 0 ]; then
	echo "Debian: apt-get install iproute2 nftables util-linux miniupnpd-nftables miniupnpc"
fi
exit $status
