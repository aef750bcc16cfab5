// Package rebench measures how fast a rebalance moves data to a node that
// joins behind a rate-limited home link, against the raw TCP rate of the
// same link, and what it does to client GET latency.
//
// In the tests/netlab lab: nodes 1-3 in homes 1-3 (unshaped links, RF 3,
// one zone per home) are filled with REBENCH_MIB MiB (default 128) of
// random 4 MiB objects; a raw TCP transfer (one stream, 8 s, first second
// excluded) from home 1 to home 4 measures the available bandwidth over
// home 4's REBENCH_MBIT link (default 20 Mbit/s, 10 ms each way); 60 GETs
// of 64 KiB objects from home 4's LAN through node 1 give the idle
// latency. Then node 4 joins in home 4: the rebalance is measured for up to
// 15 s without client load (block bytes sent, summed over the nodes'
// status; growth of node 4's block directory; bytes into home 4 on the
// wire), then for up to 30 s with GETs from home 4's LAN alternately
// through node 1 (WAN) and node 4 (LAN), and runs to its end.
//
// It is opt-in (REBENCH=1), needs root, the lab tools and the netlab build
// tag, and takes 2 to 3 minutes; it is not part of CI (without REBENCH
// it skips). Run it with
// tests/rebench/run.sh (ENTREPOT_BIN may point at a prebuilt
// `go build -tags netlab -o /tmp/rebench/entrepot-netlab ./cli/entrepot`).
// REBENCH_NOTSENT_LOWAT=<bytes> sets net.ipv4.tcp_notsent_lowat in the
// nodes' namespaces; the table header prints the value in force and the
// machine's load average. Measured figures are in README.md.
package rebench
