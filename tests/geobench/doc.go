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
// Measured on the 2-vCPU lab machine, 27 Nov 2026, with tests/geobench/run.sh
// (all 10 node pairs direct, 1 KiB objects, other builds and tests running
// on the same 2 cores):
//
//	                inter-home RTT mean   Get          Put          Remove       ListObjects
//	before (2 RTT)  104 ms                112.5 (1.08) 223.5 (2.15) 223.5 (2.15) 132.0 (1.27)
//	one-RTT writes  103.7 ms              111.9 (1.08) 112.2 (1.08) 112.0 (1.08) 150.2 (1.45)
//	+ list summary  101.7 ms              115.5 (1.14) 114.6 (1.13) 115.0 (1.13) 139.7 (1.37)
//
// (mean ms, and mean/RTT). GET reads the object entry once (one quorum read);
// unconditional PUT and DELETE write it once without reading it first
// (daemon/model commitObject); ListBuckets reads the fully replicated bucket
// table locally (0.3 ms). The target is 1.1 RTT for Get, Put and
// Remove; the spread between runs (1.08 to 1.14) follows the machine's load.
package geobench
