// Package block is the content-addressed block store.
//
// A block is at most BlockSize bytes of object data named by the SHA-256 of
// its plain bytes. SHA-256 was picked over BLAKE2b-256 by BenchmarkHash on
// this hardware (SHA-NI): 1.2–2.0 GB/s against 0.7 GB/s on 1 MiB, single core
// (the machine is shared, so absolute values vary run to run; the ratio
// does not).
//
// A block is stored once (dedup) in <dir>/<h0h1>/<h2h3>/<hex hash>[.zst]:
// written to a temporary file, fdatasynced, renamed into place, and its
// directory fsynced. Files start with an 8-byte header (magic "EB", format
// version, flags, CRC32C of the stored payload).
//
// Reads: every read checks the CRC32C (7–30 GB/s with SSE4.2, i.e. free);
// Config.VerifyHash adds a SHA-256 re-hash, which BenchmarkRead measured at
// ~5x the cost of the CRC path (10.6 vs 2.1 GB/s on cached 1 MiB blocks) — the
// CRC catches disk corruption, and Verify (full re-hash) is for scrubbing. A
// corrupt block is ErrCorrupt, never served. OpenPlain hands an
// uncompressed block's file (after its CRC check) to callers that can
// sendfile it.
//
// Compression: zstd at Config.CompressionLevel, kept only when it saves at
// least 10 %. A 64 KiB sample of big blocks is trial-compressed first, so
// incompressible data (most photos, videos, archives) skips the full attempt.
//
// Reference counts live in the metadata DB and change inside the same batch
// as the block_ref table entries they derive from (AdjustRef, called from a
// table hook). A block whose count reaches 0 gets a persisted deletion
// deadline GCDelay later; RunGC deletes due blocks (Run calls it
// periodically). Blocks on disk with no reference count at all (written
// before a crash, never referenced) are found by ScanOrphans. Pins protect
// blocks that a request is about to reference, or is reading, from both.
//
// # Replication
//
// EnableReplication makes the store one replica of a cluster (rpc service
// "block", protocol /entrepot/block/1, messages versioned by their first
// byte: put, get, and need — a batch of up to 1,024 hashes answered with
// has/wanted flags). The partition of block h is table.Partition of its
// block_ref partition key (the raw hash), so a block and its references live
// on the same nodes; reference counts stay local and derive from the
// block_ref entries table replication delivers.
//
//   - Write sends the block to the replicas of its partition in every live
//     layout in parallel and returns after W acknowledgements in each. The
//     others go on in the background on a copy counted against BufferMax
//     (64 MiB; beyond it writes wait), and failures enter the persistent
//     resync queue (retried after ResyncRetry, 60 s, doubling up to 2^6).
//     A node stores a block only if it is a replica in some live layout.
//   - Read serves the local copy (OpenPlain/sendfile still apply), else the
//     other replicas in order — same zone, then lowest RTT — falling back on
//     error, then the other storage nodes of the live layouts (a node that
//     left the partition keeps its copy until the new owners have it),
//     verifying the SHA-256 and repairing the local copy of a replica.
//     It fails with ErrNotFound only when every replica answered that it
//     lacks the block, else with ErrUnavailable (= table.ErrUnavailable).
//   - A reference arriving before its block queues a fetch (MissingDelay).
//   - Peers whose calls failed are probed every 5 s; when one is back (or
//     at start) errored blocks are retried at once instead of after their
//     backoff. The dispatcher asks each owner about a batch of queued
//     blocks in one need call.
//   - After a layout change a scan queues blocks to push: copies this node
//     no longer owns (offload; the copy goes once every owner confirmed it)
//     and blocks of partitions that gained replicas (pushed by one holder,
//     the lowest ID present in both layouts); a push decided on a need
//     answer older than 1 s asks again first, as the owner may have
//     fetched the block meanwhile. GC also keeps a copy of a
//     partition this node left until its owners have it. Transfers use
//     ResyncWorkers workers and are paced (below).
//   - Scrub (every ScrubInterval + random ScrubJitter, schedule persisted;
//     ScrubNow on demand) re-hashes every referenced block and repairs
//     missing or corrupt ones from other replicas, sleeping ScrubTranquility
//     times its work.
//
// # Rebalance pacing
//
// Resync and rebalance transfers (background) are paced per peer
// (throttle.go), from what every block transfer with another node shows:
//
//   - Measure. Time is cut in 2 s windows, per peer. A window in which
//     background transfers with the peer were in flight at least 90 % of
//     the time, none waited on a limit, and clients were quiet on both
//     sides shows what the path delivers to background work as much as it
//     wants: its throughput updates the peer's available-bandwidth
//     estimate A (moving average, weight 0.3 per window). Other windows
//     leave A alone. This node's client traffic C (remote reads and
//     writes' puts, bytes/s) is averaged over every window; local reads
//     count as client activity but not as traffic.
//   - Tell. A put reply carries a flag "my clients are active" and the
//     replier's C (older nodes answer a bare version byte: nothing).
//   - Limit. With no client activity here (now or in the last 3 s) and no
//     such flag from the peer in the last 3 s, background traffic with the
//     peer is not limited: the transfers fill the link, which is how
//     rebalance uses ≥ 80 % of what is available. Otherwise the limit is
//     max(0.75·A − C, 0.10·A, 64 KiB/s), C being this node's client
//     traffic plus the peer's: clients get what they use plus 25 %
//     headroom that keeps the bottleneck's queue (and their latency)
//     short, and rebalance still moves. With no A measured, Bandwidth is
//     the base; with neither, a background transfer waits up to 200 ms
//     while client transfers are in flight.
//   - Apply. A token bucket per peer at its limit, and one node-wide at
//     Bandwidth (the fixed cap, if set, always bounds the total; burst 1/8 s
//     of traffic, at least one block), delay each transfer before it
//     starts; while a peer is limited, its background transfers also go
//     one at a time (a request on the same connection then queues behind
//     at most one block). A pull is paced as traffic with the first
//     holder it asks.
//
// The controller sees block traffic only: S3 responses, and other hosts
// sharing a home link, are invisible to it. Status.Pace shows per peer A,
// whether the peer reported clients, and the current limit. Measured in
// the lab (tests/rebench/README.md): unloaded, rebalance moves block data
// at 88–102 % of a raw TCP transfer over the same 20 Mbit/s link; with
// clients of the receiving node active, their GET median fell from
// 0.8–1.0 s to 0.15–0.38 s (p99 from 1.8–2.3 s to 1.3–1.7 s).
//
// Rebalance progress (bytes queued by the scan and moved since, start time,
// rate) is saved in <dir>/rebalance-progress, a versioned JSON file
// written atomically when a rebalance starts, at most every 5 s while
// data moves, and at close; a restart restores it, so status shows the
// same progress and an ETA from the rate measured before the restart.
//
// Status reports the queue, errored blocks, buffer use, rebalance progress
// and ETA, pacing, and scrub progress; metrics are entrepot_block_*.
package block
