package table

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entrepot/entrepot/daemon/db"
)

// Partition is the partition (0..255) owning partition key pk: the first byte
// of SHA-256(pk).
func Partition(pk string) uint8 {
	h := sha256.Sum256([]byte(pk))
	return h[0]
}

// NextTS is the timestamp of a new write over an entry whose latest
// timestamp is last: max(now in ms, last+1). It never goes backwards even if
// the clock does.
func NextTS(now time.Time, last uint64) uint64 {
	ms := uint64(now.UnixMilli())
	if ms > last {
		return ms
	}
	return last + 1
}

// Schema describes one table's values.
type Schema[V any] interface {
	// Table is the table's persistent id.
	Table() db.TableID
	Encode(v V) ([]byte, error)
	Decode(b []byte) (V, error)
	// Merge combines two values of the same entry. It must be commutative,
	// associative and idempotent.
	Merge(a, b V) V
	// Timestamp is the newest timestamp inside v.
	Timestamp(v V) uint64
	// Tombstone returns a deletion of old at timestamp ts.
	Tombstone(old V, ts uint64) V
	// IsTombstone reports whether v is a deletion.
	IsTombstone(v V) bool
}

// Hook is optionally implemented by a Schema: Updated runs inside the batch
// that stores merged, with the previous value (hadOld false when absent), so
// derived state changes atomically with the entry. It runs with the entry's
// lock held and only when the stored value changed.
type Hook[V any] interface {
	Updated(b *db.Batch, pk, sk string, old V, hadOld bool, merged V) error
}

// Entry is one (pk, sk) -> value.
type Entry[V any] struct {
	PK, SK string
	Value  V
}

// Change reports what an Insert did to one entry.
type Change[V any] struct {
	PK, SK  string
	Old     V
	HadOld  bool
	New     V // merged value now stored
	Changed bool
}

// Local is the single-node table over a db.DB. Safe for concurrent use.
type Local[V any] struct {
	d    *db.DB
	s    Schema[V]
	hook Hook[V]
	now  func() time.Time
	// locks serialize read-merge-write per entry (or per partition key when
	// the schema asks, see LockByPartitionKey); held across the synced write.
	locks [lockStripes]sync.Mutex
	seed  maphash.Seed
	byPK  bool

	// Merkle tracking, enabled by Replicate: every changed entry leaves a
	// todo key in its batch; the updater folds todos into the tree.
	tracked atomic.Bool
	mkMu    sync.Mutex    // one Merkle updater at a time
	mkKick  chan struct{} // wakes the updater (capacity 1)
}

const lockStripes = 1024

// LockByPartitionKey is implemented by schemas whose Hook derives state from
// all entries of a partition key (block_ref: the reference count of a block),
// so every write to one partition key must be serialized. Other tables lock
// per entry, so concurrent writes to one partition key (objects of a bucket)
// proceed in parallel and share journal syncs.
type LockByPartitionKey interface{ LockByPartitionKey() }

// NewLocal returns the table of schema s stored in d.
func NewLocal[V any](d *db.DB, s Schema[V]) *Local[V] {
	t := &Local[V]{d: d, s: s, now: time.Now, seed: maphash.MakeSeed(), mkKick: make(chan struct{}, 1)}
	_, t.byPK = s.(LockByPartitionKey)
	if h, ok := s.(Hook[V]); ok {
		t.hook = h
	}
	return t
}

func (t *Local[V]) key(pk, sk string) []byte {
	return db.TableKey(t.s.Table(), []byte(pk), []byte(sk))
}

func (t *Local[V]) decode(raw []byte) (V, error) {
	var zero V
	p, err := db.UnwrapValue(raw)
	if err != nil {
		return zero, err
	}
	v, err := t.s.Decode(p)
	if err != nil {
		return zero, fmt.Errorf("decode table %d value: %w", t.s.Table(), err)
	}
	return v, nil
}

// Get returns the stored value of (pk, sk), tombstones included; ok is false
// when nothing is stored.
func (t *Local[V]) Get(ctx context.Context, pk, sk string) (v V, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return v, false, err
	}
	raw, err := t.d.Get(t.key(pk, sk))
	if err == db.ErrNotFound {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	v, err = t.decode(raw)
	return v, err == nil, err
}

func (t *Local[V]) stripe(pk, sk string) int {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteString(pk)
	if !t.byPK {
		h.WriteByte(0)
		h.WriteString(sk)
	}
	return int(h.Sum64() % lockStripes)
}

func (t *Local[V]) lockAll(es []Entry[V]) func() {
	var parts []int
	seen := map[int]bool{}
	for _, e := range es {
		p := t.stripe(e.PK, e.SK)
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	sort.Ints(parts)
	for _, p := range parts {
		t.locks[p].Lock()
	}
	return func() {
		for _, p := range parts {
			t.locks[p].Unlock()
		}
	}
}

// Insert merges every entry into the table in one atomic, durable write and
// reports each entry's previous and merged value.
func (t *Local[V]) Insert(ctx context.Context, es ...Entry[V]) ([]Change[V], error) {
	return t.insert(ctx, true, es)
}

// InsertLazy is Insert without waiting for the disk. The write survives a
// process crash at once (it is in the OS page cache) and usually becomes
// power-loss durable with the next durable write (same journal file), but
// not when goleveldb rotates its journal in between: use it only for writes
// whose loss a repair job can detect and redo (freeing versions, for one).
// A replicated table may treat it as Insert.
func (t *Local[V]) InsertLazy(ctx context.Context, es ...Entry[V]) ([]Change[V], error) {
	return t.insert(ctx, false, es)
}

func (t *Local[V]) insert(ctx context.Context, durable bool, es []Entry[V]) ([]Change[V], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, nil
	}
	for _, e := range es {
		if !db.ValidPK([]byte(e.PK)) {
			return nil, fmt.Errorf("insert into table %d: partition key of %d bytes too long", t.s.Table(), len(e.PK))
		}
	}
	unlock := t.lockAll(es)
	defer unlock()
	tracked := t.tracked.Load()
	b := t.d.NewBatch()
	changes := make([]Change[V], 0, len(es))
	for _, e := range es {
		k := t.key(e.PK, e.SK)
		c := Change[V]{PK: e.PK, SK: e.SK, New: e.Value}
		raw, err := b.Get(k)
		var oldEnc []byte
		switch {
		case err == db.ErrNotFound:
		case err != nil:
			return nil, fmt.Errorf("insert into table %d: %w", t.s.Table(), err)
		default:
			if c.Old, err = t.decode(raw); err != nil {
				return nil, err
			}
			c.HadOld, oldEnc = true, raw
			c.New = t.s.Merge(c.Old, e.Value)
		}
		enc, err := t.s.Encode(c.New)
		if err != nil {
			return nil, fmt.Errorf("encode table %d value: %w", t.s.Table(), err)
		}
		enc = db.WrapValue(enc)
		c.Changed = !c.HadOld || string(enc) != string(oldEnc)
		if c.Changed {
			b.Put(k, enc)
			if tracked {
				b.Put(db.MerkleTodoKey(k), nil)
			}
			if t.hook != nil {
				if err := t.hook.Updated(b, e.PK, e.SK, c.Old, c.HadOld, c.New); err != nil {
					return nil, fmt.Errorf("table %d update hook: %w", t.s.Table(), err)
				}
			}
		}
		changes = append(changes, c)
	}
	if err := t.d.Write(b, durable); err != nil {
		return nil, fmt.Errorf("insert into table %d: %w", t.s.Table(), err)
	}
	if tracked {
		t.kickMerkle()
	}
	return changes, nil
}

// Delete writes a tombstone for (pk, sk) with timestamp NextTS(now, last).
func (t *Local[V]) Delete(ctx context.Context, pk, sk string) error {
	old, _, err := t.Get(ctx, pk, sk)
	if err != nil {
		return err
	}
	// The merge inside Insert keeps this correct even if (pk, sk) changed
	// between the Get and the Insert: the tombstone's timestamp is only a hint.
	ts := NextTS(t.now(), t.s.Timestamp(old))
	_, err = t.Insert(ctx, Entry[V]{PK: pk, SK: sk, Value: t.s.Tombstone(old, ts)})
	return err
}

// Range returns up to limit entries of partition key pk with sort key >= from,
// in sort key order, tombstones included. limit <= 0 means no limit.
func (t *Local[V]) Range(ctx context.Context, pk, from string, limit int) ([]Entry[V], error) {
	raw, err := t.rangeRaw(ctx, pk, from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Entry[V], 0, len(raw))
	for _, e := range raw {
		v, err := t.s.Decode(e.Value)
		if err != nil {
			return nil, fmt.Errorf("decode table %d value: %w", t.s.Table(), err)
		}
		out = append(out, Entry[V]{PK: pk, SK: e.SK, Value: v})
	}
	return out, nil
}

// RangeSummary is Range: reading locally costs nothing to leave out.
func (t *Local[V]) RangeSummary(ctx context.Context, pk, from string, limit int) ([]Entry[V], error) {
	return t.Range(ctx, pk, from, limit)
}

// Summarizer is implemented by schemas whose values carry bulk that
// listings do not need (inline object data): Summary returns v without it.
// Replicas answer RangeSummary with summaries, so listing a bucket of small
// objects does not ship their bodies across the WAN.
type Summarizer[V any] interface {
	Summary(v V) V
}

// summarize re-encodes a schema-encoded value (as rangeRaw returns it) as
// its summary; values of schemas
// without a Summary, or that fail to decode, are returned as they are.
func (t *Local[V]) summarize(raw []byte) []byte {
	sm, ok := t.s.(Summarizer[V])
	if !ok {
		return raw
	}
	v, err := t.s.Decode(raw)
	if err != nil {
		return raw
	}
	b, err := t.s.Encode(sm.Summary(v))
	if err != nil {
		return raw
	}
	return b
}

// Scan calls fn for every entry of the table, tombstones included, in key
// order. fn must not write to this table.
func (t *Local[V]) Scan(ctx context.Context, fn func(Entry[V]) error) error {
	it := t.d.IteratePrefix(db.TablePrefix(t.s.Table()))
	for it.Next() {
		if err := ctx.Err(); err != nil {
			it.Close()
			return err
		}
		_, pk, sk, err := db.DecodeTableKey(it.Key())
		if err != nil {
			it.Close()
			return err
		}
		v, err := t.decode(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(Entry[V]{PK: string(pk), SK: string(sk), Value: v}); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// PurgeTombstones physically removes tombstones whose timestamp is below
// before (ms). On one node every replica has them, so this is the tombstone
// GC; the replicated table will only purge what all replicas acknowledged.
func (t *Local[V]) PurgeTombstones(ctx context.Context, before uint64) (int, error) {
	var dead []Entry[V]
	if err := t.Scan(ctx, func(e Entry[V]) error {
		if t.s.IsTombstone(e.Value) && t.s.Timestamp(e.Value) < before {
			dead = append(dead, e)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	defer t.kickMerkle()
	n := 0
	for _, e := range dead {
		p := t.stripe(e.PK, e.SK)
		t.locks[p].Lock()
		err := func() error {
			cur, ok, err := t.Get(ctx, e.PK, e.SK)
			if err != nil || !ok || !t.s.IsTombstone(cur) || t.s.Timestamp(cur) >= before {
				return err
			}
			b := t.d.NewBatch()
			b.Delete(t.key(e.PK, e.SK))
			if t.tracked.Load() {
				b.Put(db.MerkleTodoKey(t.key(e.PK, e.SK)), nil)
			}
			if err := t.d.Write(b, false); err != nil {
				return err
			}
			n++
			return nil
		}()
		t.locks[p].Unlock()
		if err != nil {
			return n, fmt.Errorf("purge tombstones of table %d: %w", t.s.Table(), err)
		}
	}
	return n, nil
}
