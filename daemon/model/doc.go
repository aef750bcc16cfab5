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
// blocks are written and fsynced first, then its block references, then its
// version (block list), and last the object entry that makes it visible; the
// call returns only after that last write is synced. A crash in between
// leaves unreferenced blocks (deleted by the orphan scan) or unreferenced
// versions (freed by RepairVersions), never a visible partial object.
package model
