// Command uniqbench is a minimal S3 throughput bench whose every PUT body is
// unique: each worker stamps its id, a sequence number, a run nonce and the chunk index
// into its copy of a random payload every -stamp-every bytes before each
// PUT. A store that deduplicates content-addressed blocks (entrepot) then
// writes every byte like a store that does not (MinIO); with one payload
// reused for all PUTs, as tests/bench does, it writes each block once and
// the comparison measures metadata only.
//
// It runs, per size, a PUT phase and then a GET phase over the objects that
// phase wrote, each with -workers workers for -duration, and prints (and
// with -json writes, in the tests/bench Summary field names) ops/s, MB/s
// (10^6 bytes) and p50/p99 latency. It is used by ../bench-compare.sh
// (--tool uniq) and is not part of CI.
//
//	go run ./tests/s3tests/uniqbench -endpoint http://127.0.0.1:3900 -access-key K -secret-key S
package main
