// Package labe2e runs entrepot's NAT-traversal scenarios (issue 4) in the
// network-namespace lab of tests/netlab: real miniupnpd routers, a router
// without UPnP, a double-NAT home, a WAN client.
//
// Run as root, with the lab build tag so the lab's WAN prefix counts as
// public for libp2p and natpunch (see daemon/p2p/labprefix_netlab.go):
//
//	go test -tags netlab -timeout 10m ./tests/labe2e/
//
// Without root or the lab tools every test skips with the reason; without
// the tag they skip and say to add it. The package takes about 2.5
// minutes on the 2-core machine, building entrepot included; run it alone
// (each test builds its own lab and shaped links run inside the test
// process).
//
// Two kinds of nodes run in the lab namespaces:
//
//   - p2p nodes (p2pnode_test.go): the test binary re-executed inside a
//     namespace, running a daemon/p2p host with the natpunch NAT manager,
//     the dial-back check, relays and DCUtR, controlled over a unix socket
//     in its state directory (the filesystem is shared; the network is not).
//     They cover the p2p layer's scenarios: distinct mappings for two nodes
//     behind one UPnP router, mappings back after the router restarts on a
//     new SOAP port, mappings removed on clean stop, members reached
//     directly, hole-punched or relayed, 64 MiB across a relayed path.
//   - entrepot nodes (entrepot.go, cluster_test.go): the real `entrepot` binary, built
//     once with -tags netlab (or ENTREPOT_BIN), configured in cluster
//     mode, for the S3 scenarios: the 3-home, 5-node RF 3 cluster, LAN and
//     WAN clients, a WAN cut and heal, a 64 MiB object across a relayed path.
//
// The entrepot scenarios skip with a message while the daemon does not
// map ports for [nat] upnp, and the cross-home S3 parts while the build
// does not replicate blocks. entrepot.go's helpers are exported for
// tests/geobench.
//
// Each test logs its measured figures (first mapping, removal time, relay
// throughput) with t.Logf; run with -v to see them.
package labe2e
