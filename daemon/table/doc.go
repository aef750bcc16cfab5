// Package table stores CRDT-merged entries keyed by (partition key, sort key).
//
// A Schema says how to encode, decode and merge values of one table; merging
// must be commutative, associative and idempotent (last-writer-wins registers
// with timestamps NextTS = max(now, last+1), tombstones for deletion), so the
// same schema serves the replicated implementation that will come later.
// Local is the single-node implementation over daemon/db: every Insert is
// one atomic, durable leveldb batch, and a Schema may hook into that batch
// (the block_ref table adjusts block reference counts there).
//
// Partition maps a partition key to one of 256 partitions, the unit of
// replication in the cluster.
package table
