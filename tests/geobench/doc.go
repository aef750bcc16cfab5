// Package geobench measures entrepot's S3 latency across homes, with the
// method of Garage's geo-distributed latency chart: 5 nodes in 5 homes of
// the tests/netlab lab, 100 ms ± 20 ms RTT between homes (25 ms ± 5 ms
// added each way on every home's access link), RF 3 with one zone per
// home, a client on the LAN of one node sending one request at a time,
// 100 samples per operation: mean, min and max of GetObject, PutObject,
// RemoveObject, ListObjects and ListBuckets.
//
// It is opt-in (GEOBENCH=1), needs root, the lab tools and the lab build
// tag, and takes about 2 to 4 minutes; it is not part of CI. Run it with
// tests/geobench/run.sh, which prints the table (also written to
// $GEOBENCH_OUT when set). ENTREPOT_BIN may point at a prebuilt
// `go build -tags netlab` binary.
// Measured on the 2-vCPU lab machine (Nov 2026, block and table
// replication wired, all 10 node pairs direct, inter-home RTT mean 109 ms,
// min 86, max 250 under load): GetObject mean 253 ms (2.3 RTT), PutObject
// 238 ms (2.2), RemoveObject 252 ms (2.3), ListObjects 156 ms (1.4),
// ListBuckets 0.4 ms. A p2p request on a new stream costs one RTT
// (tests/labe2e TestP2PRequestLatency), so the second round trip comes from
// sequential quorum reads/writes above the transport; the target
// is 1.1 RTT for Get, Put and Remove.
package geobench
