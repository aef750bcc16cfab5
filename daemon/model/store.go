package model

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/db"
	"github.com/entrepot/entrepot/daemon/table"
)

// Config configures Open.
type Config struct {
	// MetadataDir holds the metadata database (required).
	MetadataDir string
	// DataDir holds the blocks (required).
	DataDir string
	// BlockSize is the size objects are cut into. Default 1 MiB. Changing it
	// only affects new data (and breaks dedup against old data).
	BlockSize int
	// CompressionLevel is the zstd level for blocks; 0 stores them plain.
	// Default 0 here; the daemon's config defaults it to 1.
	CompressionLevel int
	// InlineThreshold: objects of at most this many bytes live inline in the
	// metadata. Default 4096; a negative value disables inlining.
	InlineThreshold int
	// GCDelay is how long after its reference count reached 0 an unreferenced
	// block is deleted. Default 10 minutes.
	GCDelay time.Duration
	// NoFsync disables fsync of metadata and blocks (tests, benchmarks).
	// Default false: every acknowledged write is durable.
	NoFsync bool
	// VerifyHash re-hashes every block read with SHA-256 on top of the
	// always-on CRC32C check. Default false.
	VerifyHash bool
	// NodeID, Hostname, Zone, Capacity (bytes) and Version are reported by
	// Status. Defaults: empty / 0.
	NodeID, Hostname, Zone string
	Capacity               int64
	Version                string
	// Replicator, when set, replicates the tables across the cluster
	// (bucket, bucket name and key tables on every node, the others on the
	// replicas of their partition). Nil: single node. The caller runs it.
	Replicator *table.Replicator
	// Logger; nil discards.
	Logger *slog.Logger
}

// kvTable is what this package needs from a table; table.Local implements
// it on one node, the replicated table will later.
type kvTable[V any] interface {
	Get(ctx context.Context, pk, sk string) (V, bool, error)
	Insert(ctx context.Context, es ...table.Entry[V]) ([]table.Change[V], error)
	// InsertLazy may defer durability to the caller's next Insert.
	InsertLazy(ctx context.Context, es ...table.Entry[V]) ([]table.Change[V], error)
	Range(ctx context.Context, pk, from string, limit int) ([]table.Entry[V], error)
	// RangeSummary is Range for listings: values may lack what the schema's
	// Summary leaves out (inline object data); never write them back.
	RangeSummary(ctx context.Context, pk, from string, limit int) ([]table.Entry[V], error)
	Delete(ctx context.Context, pk, sk string) error
	// Scan visits every locally stored entry (repair jobs).
	Scan(ctx context.Context, fn func(table.Entry[V]) error) error
}

// purger is implemented by tables that can drop old tombstones.
type purger interface {
	PurgeTombstones(ctx context.Context, before uint64) (int, error)
}

var (
	_ kvTable[objectRec] = (*table.Local[objectRec])(nil)
	_ kvTable[objectRec] = (*table.Replicated[objectRec])(nil)
)

// Store is the storage model of one node. Safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	db      *db.DB
	blocks  *block.Store
	started time.Time
	now     func() time.Time

	buckets     kvTable[lww[Bucket]]
	bucketNames kvTable[lww[string]]
	keys        kvTable[lww[Key]]
	objects     kvTable[objectRec]
	versions    kvTable[versionRec]
	blockRefs   kvTable[lww[struct{}]]
	uploads     kvTable[uploadRec]
	purgers     []purger

	adminMu  sync.Mutex // serializes bucket and key creation/deletion
	seed     maphash.Seed
	objLocks [256]sync.Mutex // conditional writes, by (bucket id, key)
	lastTS   atomic.Uint64   // last timestamp stamp gave

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Freeing superseded versions runs after the request is answered (see
	// freeLater): bg is its context; a free in flight holds a freeSlots slot.
	bg        context.Context
	freeSlots chan struct{}
}

const (
	maxObjectSize = 5 << 30 // single PUT and single part
	maxKeyLen     = 1024
	maxParts      = 10000
	minPartSize   = 5 << 20
	tombstoneTTL  = 24 * time.Hour
	closeFreeWait = 5 * time.Second
)

// Open opens (creating if needed) the store and starts its background
// work (block GC, orphan scan, tombstone and version cleanup), which runs
// until Close.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.MetadataDir == "" || cfg.DataDir == "" {
		return nil, fmt.Errorf("open store: MetadataDir and DataDir are required: %w", ErrInvalidArgument)
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = 1 << 20
	}
	if cfg.InlineThreshold == 0 {
		cfg.InlineThreshold = 4096
	}
	if cfg.InlineThreshold > cfg.BlockSize {
		cfg.InlineThreshold = cfg.BlockSize
	}
	if cfg.GCDelay <= 0 {
		cfg.GCDelay = 10 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "model")
	if err := os.MkdirAll(cfg.MetadataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	d, err := db.Open(filepath.Join(cfg.MetadataDir, "db"), db.Options{NoSync: cfg.NoFsync, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bs, err := block.Open(block.Config{
		Dir: cfg.DataDir, DB: d, BlockSize: cfg.BlockSize, CompressionLevel: cfg.CompressionLevel,
		GCDelay: cfg.GCDelay, NoFsync: cfg.NoFsync, VerifyHash: cfg.VerifyHash, Logger: cfg.Logger,
	})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{cfg: cfg, log: log, db: d, blocks: bs, started: time.Now(), now: time.Now, seed: maphash.MakeSeed()}
	bucketsT := table.NewLocal[lww[Bucket]](d, lwwSchema[Bucket]{db.TableBucket})
	namesT := table.NewLocal[lww[string]](d, lwwSchema[string]{db.TableBucketName})
	keysT := table.NewLocal[lww[Key]](d, lwwSchema[Key]{db.TableAccessKey})
	objectsT := table.NewLocal[objectRec](d, objectSchema{})
	versionsT := table.NewLocal[versionRec](d, versionSchema{})
	refsT := table.NewLocal[lww[struct{}]](d, blockRefSchema{lwwSchema: lwwSchema[struct{}]{db.TableBlockRef}, blocks: bs, now: time.Now})
	uploadsT := table.NewLocal[uploadRec](d, uploadSchema{})
	s.buckets, s.bucketNames, s.keys, s.objects, s.versions, s.blockRefs, s.uploads =
		bucketsT, namesT, keysT, objectsT, versionsT, refsT, uploadsT
	s.purgers = []purger{bucketsT, namesT, keysT, objectsT, versionsT, refsT, uploadsT}
	if r := cfg.Replicator; r != nil {
		rb := table.Replicate(r, bucketsT, table.FullCopy)
		rn := table.Replicate(r, namesT, table.FullCopy)
		rk := table.Replicate(r, keysT, table.FullCopy)
		ro := table.Replicate(r, objectsT, table.Sharded)
		rv := table.Replicate(r, versionsT, table.Sharded)
		rr := table.Replicate(r, refsT, table.Sharded)
		ru := table.Replicate(r, uploadsT, table.Sharded)
		s.buckets, s.bucketNames, s.keys, s.objects, s.versions, s.blockRefs, s.uploads = rb, rn, rk, ro, rv, rr, ru
		s.purgers = []purger{rb, rn, rk, ro, rv, rr, ru}
	}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.bg, s.freeSlots = cancel, bg, make(chan struct{}, maxPendingFrees)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); bs.Run(bg) }()
	go func() { defer s.wg.Done(); s.maintain(bg) }()
	return s, nil
}

// Close stops background work and closes the block store and database.
func (s *Store) Close() error {
	// Frees in flight get a few seconds to finish (a free lost here waits
	// for RepairVersions), then background work is cancelled.
	freed := make(chan struct{})
	go func() { s.waitFrees(); close(freed) }()
	select {
	case <-freed:
	case <-time.After(closeFreeWait):
	}
	s.cancel()
	<-freed
	s.wg.Wait()
	s.blocks.Close()
	return s.db.Close()
}

// RunGC deletes the blocks whose deferred deletion is due at now (tests and
// admin use it; the background loop calls the same code), once the frees of
// superseded versions in flight are done. It returns the number of blocks
// deleted.
func (s *Store) RunGC(ctx context.Context, now time.Time) (int, error) {
	s.waitFrees()
	return s.blocks.RunGC(ctx, now)
}

// ScanOrphans deletes block files no metadata references (crash leftovers).
func (s *Store) ScanOrphans(ctx context.Context) (int, error) {
	return s.blocks.ScanOrphans(ctx)
}

// maintain runs the daily metadata cleanup.
func (s *Store) maintain(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.RepairVersions(ctx, time.Hour); err != nil && ctx.Err() == nil {
			s.log.Warn("repair versions", "err", err)
		}
		if err := s.PurgeTombstones(ctx, s.now().Add(-tombstoneTTL)); err != nil && ctx.Err() == nil {
			s.log.Warn("purge tombstones", "err", err)
		}
		t.Reset(24 * time.Hour)
	}
}

// PurgeTombstones drops table tombstones older than before.
func (s *Store) PurgeTombstones(ctx context.Context, before time.Time) error {
	for _, p := range s.purgers {
		if _, err := p.PurgeTombstones(ctx, uint64(before.UnixMilli())); err != nil {
			return err
		}
	}
	return nil
}

// newID returns a random hex id of n bytes.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newTimeID returns a hex id that sorts by creation time: 8 bytes of unix
// ns then 8 random bytes.
func newTimeID(now time.Time) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
	r := make([]byte, 8)
	_, _ = rand.Read(r)
	return hex.EncodeToString(append(b, r...))
}

func (s *Store) objLock(bucketID, key string) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(bucketID)
	h.WriteByte(0)
	h.WriteString(key)
	return &s.objLocks[h.Sum64()%uint64(len(s.objLocks))]
}

// isNotFound reports whether err means "absent" in a lower layer.
func isNotFound(err error) bool {
	return errors.Is(err, db.ErrNotFound) || errors.Is(err, block.ErrNotFound)
}
