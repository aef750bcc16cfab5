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
package geobench
