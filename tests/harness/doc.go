// Package harness runs real entrepot processes for end-to-end tests and
// tools: it builds the binary once per process (or takes ENTREPOT_BIN),
// picks free loopback ports, starts, stops, SIGKILLs and restarts nodes,
// waits for /health with a bounded timeout, captures each node's output to a
// log file whose tail is shown when a test fails, reads the dev credentials,
// and builds aws-sdk-go-v2 and minio-go clients plus a clean environment for
// external command-line clients.
//
// A test sees nodes through the Cluster interface so that multi-node
// scenarios (a later issue) can reuse the same tests: DevCluster is the
// single-node `entrepot server --dev` implementation.
//
// The core (Node, DevCluster, Build) does not import package testing, so the
// bench tool can start a dev server with it; helpers taking a TB are the
// test-facing wrappers.
package harness
