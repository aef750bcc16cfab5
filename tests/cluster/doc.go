// Package cluster holds the multi-process cluster tests of issue 3: real
// entrepot processes on loopback (127.0.0.1 only), each with its own data
// directory and config file, started by tests/harness.StartCluster with short
// gossip (300 ms) and ping (500 ms) intervals so a cluster forms in seconds.
//
// Scenarios:
//   - formation: 5 nodes in 3 zones agree on one layout; every partition's
//     replicas sit in 3 distinct zones; status, node id and layout show;
//   - outsiders: no handshake and no rpc without the cluster secret; a node
//     with another secret never learns or joins the layout;
//   - a node restarting on a new RPC port is found again (saved peer list, DHT);
//   - two nodes changing role at once converge on one layout everywhere;
//   - a node leaves the layout only by retire, decommission or replaces;
//   - a zone down shows FAILED NODES while every partition keeps a quorum;
//   - data (needs table and block replication; skips naming what is
//     missing): 2,000 objects written through every node and read from every
//     node, a zone SIGKILLed while reads and writes go on, anti-entropy and
//     scrub after restart, a node added while a reader checks every answer,
//     with the rebalance figures (moved bytes vs the ideal minimum) logged.
//
// Every wait is bounded; `go test -short` skips the package.
package cluster
