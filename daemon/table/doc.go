// Package table stores CRDT-merged entries keyed by (partition key, sort key)
// and replicates them across the cluster.
//
// A Schema says how to encode, decode and merge values of one table; merging
// must be commutative, associative and idempotent (last-writer-wins registers
// with timestamps NextTS = max(now, last+1), tombstones for deletion).
// Local is the single-node implementation over daemon/db: every Insert is
// one atomic, durable leveldb batch, and a Schema may hook into that batch
// (the block_ref table adjusts block reference counts there).
//
// Partition maps a partition key to one of 256 partitions, the unit of
// replication in the cluster.
//
// # Replication
//
// Replicate wraps a Local in a Replicated table driven by a Replicator (rpc
// service "table", /entrepot/table/1, versioned frames). There is no leader:
//
//   - Insert sends the entries, in parallel, to every replica of every live
//     layout version (cluster.View.WriteSets) and returns once W of each set
//     acknowledged; the other replicas finish in the background. Replicas,
//     this node included, apply entries through Local.Insert, so Hooks run
//     on every replica.
//   - Get asks the read layout's replicas in parallel, returns the merge of
//     the first R answers, and writes the merge back to replicas found stale
//     (read repair). Range merges the replicas' pages by sort key and then
//     cuts to the limit. Delete is a tombstone written through Insert.
//   - Sharded tables live on the RF replicas of Partition(pk); FullCopy
//     tables (buckets, bucket names, keys) on every node, written to a
//     majority of each layout's nodes and read locally, falling back to a
//     majority only when the entry is absent here (so an entry created
//     through another node is found at once; changes of existing entries
//     arrive with the write's background completion or the next
//     anti-entropy round, 10 s by default).
//   - Every table keeps a Merkle tree per partition in the db (merkle.go),
//     updated incrementally from a todo queue written in each insert's
//     batch. Anti-entropy compares roots with the other replicas, descends
//     where they differ and pulls and pushes only the differing entries
//     (sync.go). After a layout change a node pulls the partitions it gained
//     and, once every partition it holds reached a read quorum of each live
//     replica set, calls MarkSynced so reads may switch to the new layout.
//     Partitions it holds in no live layout are pushed to the new replicas
//     and then deleted.
//   - A tombstone is collected once older than TombstoneGCDelay and only
//     after every replica of every live layout acknowledged it.
//
// ErrUnavailable reports a missing layout or an unreachable quorum.
package table
