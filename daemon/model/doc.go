// Package model is entrepot's storage model: buckets, access keys, objects,
// versions, multipart uploads and their blocks, on top of CRDT tables
// (daemon/table) and the content-addressed block store (daemon/block).
//
// Store is what the S3 and admin layers call. Open builds it from a Config;
// the tables are reached through the small kvTable interface declared here,
// so the replicated table implementation can replace the single-node one
// without touching this package's logic.
//
// Write ordering (what makes a SIGKILL at any instant safe): an object's
// blocks are written and fsynced first, then its block references and its
// version (block list), together, and last the object entry that makes it
// visible; the call returns only after that last write is synced. A crash in between
// leaves unreferenced blocks (deleted by the orphan scan) or unreferenced
// versions (freed by RepairVersions), never a visible partial object.
//
// Timestamps: an entry's new timestamp is max(now, last+1). A conditional
// write reads the entry first (under a per-key lock) and takes last from it.
// An unconditional PUT or DELETE does not read: it stamps with this node's
// clock (monotonic per node) and the quorum write reports what the replicas
// held; if a newer version was there (a peer's clock ahead, or a racing
// write) the version is written again just above it. So the common case is
// one quorum round trip, and the rare one gives what reading first would.
package model
