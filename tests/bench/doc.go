// Command bench drives any S3 endpoint (entrepot, MinIO, ...) with N
// parallel workers for a fixed time per phase and reports throughput (MB/s
// with MB = 10^6 bytes, ops/s) and p50/p99 latency for PUT and GET of each
// size (default 1 MiB and 4 KiB), a mixed 50/50 GET/PUT phase of 4 KiB
// objects, and one-request-at-a-time latency of GET, PUT, DELETE, LIST
// (ListObjectsV2) and ListBuckets.
//
// The client is aws-sdk-go-v2 with a transport that keeps one idle
// connection per worker, retries off (errors are counted, not hidden), and
// UNSIGNED-PAYLOAD with checksums only when required by default, so the
// payload is hashed by nobody on the client (-payload-signing sha256 signs
// it instead: one SHA-256 pass per PUT). Payloads are generated once
// before the run; GET bodies are drained into a per-worker buffer.
//
//	go run ./tests/bench -start-dev                    # builds and starts entrepot server --dev
//	go run ./tests/bench -endpoint http://127.0.0.1:9000 -access-key K -secret-key S   # e.g. MinIO
//
// With -start-dev it also reports the server's RSS when idle and its peak
// (VmRSS sampled every 50 ms per phase, VmHWM overall, from
// /proc/<pid>/status), its CPU time per phase, and the time from exec to
// the first served S3 request. Every phase is bounded by -duration and
// -max-ops.
package main
