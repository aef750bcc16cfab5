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
// (all 10 node pairs direct; other builds and tests running on the same 2
// cores). Mean ms (mean/RTT); each row is one run:
//
//	1 KiB objects (inline)  RTT mean  Get          Put          Remove       ListObjects
//	before this session     104 ms    112.5 (1.08) 223.5 (2.15) 223.5 (2.15) 132.0 (1.27)
//	one-RTT writes          103.7 ms  111.9 (1.08) 112.2 (1.08) 112.0 (1.08) 150.2 (1.45)
//	+ list summaries        101.7 ms  115.5 (1.14) 114.6 (1.13) 115.0 (1.13) 139.7 (1.37)
//	+ same                  108.5 ms  111.9 (1.03) 113.8 (1.05) 112.4 (1.04) 134.3 (1.24)
//	final build             103.7 ms  112.0 (1.09) 113.1 (1.10) 112.9 (1.10) 132.8 (1.29)
//	final build             103.0 ms  114.5 (1.11) 116.0 (1.13) 115.4 (1.12)
//
//	64 KiB objects (blocks), GEOBENCH_SIZE=65536, one content per object
//	before embedded blocks  103.7 ms  290.1 (2.80) 370.8 (3.58) 117.8 (1.14)
//	final build             103.8 ms  171.7 (1.65) 371.8 (3.58) 117.1 (1.13)
//
// GET reads the object entry once (one quorum read); unconditional PUT and
// DELETE write it once without reading it first (daemon/model commitObject);
// freeing a superseded version runs after the answer (DELETE of a 64 KiB
// object was 4.46 RTT before); ListBuckets reads the fully replicated bucket
// table locally (0.3-0.4 ms). For block-stored objects, GET adds the block
// fetch from the nearest replica (none when the client's node holds it), and
// PUT takes three dependent steps: the blocks on their replicas, the
// version and block references, then the object entry. The target
// is 1.1 RTT for Get, Put and Remove; across the six 1 KiB runs above they
// measured 1.03 to 1.14, so the target is met within the lab's run-to-run
// noise, not with a margin.
package geobench
