package db

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("not found")

// ErrSchemaTooNew is returned by Open when the database was written by a
// newer entrepot whose layout this binary does not understand.
var ErrSchemaTooNew = errors.New("metadata schema is newer than this binary")

// Options configure Open.
type Options struct {
	// NoSync turns durable writes into unsynced ones (tests, benchmarks,
	// users who accept losing the last writes on power loss). Default false.
	NoSync bool
	// Logger receives warnings. Default: discard.
	Logger *slog.Logger
}

// DB is an open metadata database. It is safe for concurrent use.
type DB struct {
	ldb    *leveldb.DB
	noSync bool
	log    *slog.Logger
}

// Open opens (creating if needed) the database in directory path, checks the
// schema version and writes it on a fresh database.
func Open(path string, o Options) (*DB, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ldb, err := leveldb.OpenFile(path, &opt.Options{
		BlockCacheCapacity: 32 << 20,
		WriteBuffer:        16 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("open metadata db %s: %w", path, err)
	}
	d := &DB{ldb: ldb, noSync: o.NoSync, log: log.With("component", "db")}
	if err := d.checkSchema(); err != nil {
		_ = ldb.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) checkSchema() error {
	v, err := d.ldb.Get(schemaKey, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		// A fresh database has no keys at all; refuse to stamp a non-empty one
		// that lacks a version (it is not ours).
		it := d.ldb.NewIterator(nil, nil)
		nonEmpty := it.First()
		it.Release()
		if nonEmpty {
			return fmt.Errorf("open metadata db: no schema version in a non-empty database: %w", ErrBadValue)
		}
		val := binary.BigEndian.AppendUint32(nil, SchemaVersion)
		if err := d.ldb.Put(schemaKey, val, &opt.WriteOptions{Sync: !d.noSync}); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if len(v) != 4 {
		return fmt.Errorf("read schema version: %d bytes: %w", len(v), ErrBadValue)
	}
	got := binary.BigEndian.Uint32(v)
	if got > SchemaVersion {
		return fmt.Errorf("metadata schema version %d, this binary supports up to %d (upgrade entrepot): %w",
			got, SchemaVersion, ErrSchemaTooNew)
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error {
	if err := d.ldb.Close(); err != nil {
		return fmt.Errorf("close metadata db: %w", err)
	}
	return nil
}

// Get returns a copy of the value at key, or ErrNotFound.
func (d *DB) Get(key []byte) ([]byte, error) {
	v, err := d.ldb.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %x: %w", key, err)
	}
	return v, nil
}

// Batch is a set of writes applied atomically by Write. Get reads through the
// batch's own pending writes, so read-modify-write sequences inside one batch
// see each other.
type Batch struct {
	d       *DB
	b       leveldb.Batch
	overlay map[string][]byte // nil value = deleted
}

// NewBatch starts an empty batch.
func (d *DB) NewBatch() *Batch { return &Batch{d: d, overlay: map[string][]byte{}} }

// Put records a write.
func (b *Batch) Put(key, value []byte) {
	b.b.Put(key, value)
	b.overlay[string(key)] = append([]byte{}, value...)
}

// Delete records a deletion.
func (b *Batch) Delete(key []byte) {
	b.b.Delete(key)
	b.overlay[string(key)] = nil
}

// Get reads key as it will be after the batch is written.
func (b *Batch) Get(key []byte) ([]byte, error) {
	if v, ok := b.overlay[string(key)]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return v, nil
	}
	return b.d.Get(key)
}

// Len is the number of recorded writes.
func (b *Batch) Len() int { return b.b.Len() }

// Write applies b atomically. durable = true syncs the journal before
// returning (unless the DB was opened with NoSync).
func (d *DB) Write(b *Batch, durable bool) error {
	if b.b.Len() == 0 {
		return nil
	}
	if err := d.ldb.Write(&b.b, &opt.WriteOptions{Sync: durable && !d.noSync}); err != nil {
		return fmt.Errorf("write batch: %w", err)
	}
	return nil
}

// Iterator walks keys in order. Key and Value are only valid until Next.
type Iterator struct{ it iterator.Iterator }

// Iterate walks keys in [start, limit); limit nil = to the end of the key space.
func (d *DB) Iterate(start, limit []byte) *Iterator {
	return &Iterator{it: d.ldb.NewIterator(&util.Range{Start: start, Limit: limit}, nil)}
}

// IteratePrefix walks every key starting with p.
func (d *DB) IteratePrefix(p []byte) *Iterator {
	return d.Iterate(p, PrefixEnd(p))
}

// Next advances; false at the end.
func (i *Iterator) Next() bool { return i.it.Next() }

// Key is the current key (valid until Next).
func (i *Iterator) Key() []byte { return i.it.Key() }

// Value is the current value (valid until Next).
func (i *Iterator) Value() []byte { return i.it.Value() }

// Seek moves to the first key >= k; false if none in range.
func (i *Iterator) Seek(k []byte) bool { return i.it.Seek(k) }

// Close releases the iterator and returns its error, if any.
func (i *Iterator) Close() error {
	i.it.Release()
	if err := i.it.Error(); err != nil {
		return fmt.Errorf("iterate: %w", err)
	}
	return nil
}

// First moves to the first key in range; false if none.
func (i *Iterator) First() bool { return i.it.First() }
