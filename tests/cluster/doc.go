// Package cluster holds the multi-process cluster tests of issue 3: real
// entrepot processes on loopback, each with its own data directory, started by
// tests/harness. Every test is bounded in time; a scenario whose building
// block is missing from this build skips with a message naming it.
package cluster
