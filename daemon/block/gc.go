package block

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/entrepot/entrepot/daemon/db"
)

// refCount is the persisted reference count of one block.
type refCount struct {
	count    uint64
	size     int64 // bytes on disk
	deadline int64 // unix ns at which a block with count 0 may go; 0 when referenced
}

func (r refCount) encode() []byte {
	p := binary.AppendUvarint(nil, r.count)
	p = binary.AppendVarint(p, r.size)
	p = binary.AppendVarint(p, r.deadline)
	return db.WrapValue(p)
}

func decodeRefCount(v []byte) (refCount, error) {
	var r refCount
	p, err := db.UnwrapValue(v)
	if err != nil {
		return r, err
	}
	var n int
	if r.count, n = binary.Uvarint(p); n <= 0 {
		return r, fmt.Errorf("decode refcount: %w", db.ErrBadValue)
	}
	p = p[n:]
	if r.size, n = binary.Varint(p); n <= 0 {
		return r, fmt.Errorf("decode refcount: %w", db.ErrBadValue)
	}
	p = p[n:]
	if r.deadline, n = binary.Varint(p); n <= 0 {
		return r, fmt.Errorf("decode refcount: %w", db.ErrBadValue)
	}
	return r, nil
}

func getRC(get func([]byte) ([]byte, error), h Hash) (refCount, bool, error) {
	v, err := get(db.BlockRCKey(h[:]))
	if errors.Is(err, db.ErrNotFound) {
		return refCount{}, false, nil
	}
	if err != nil {
		return refCount{}, false, err
	}
	r, err := decodeRefCount(v)
	return r, err == nil, err
}

// AdjustRef changes h's reference count by delta inside batch b. It must be
// called with every change of h's references serialized (the block_ref
// table's partition lock does that) and, for delta > 0, with h pinned. When
// the count reaches 0 the block is queued for deletion GCDelay after now.
func (s *Store) AdjustRef(b *db.Batch, h Hash, delta int, now time.Time) error {
	r, ok, err := getRC(b.Get, h)
	if err != nil {
		return fmt.Errorf("adjust refcount of %s: %w", h, err)
	}
	rp := s.repl.Load()
	if !ok || (rp != nil && delta > 0 && r.count == 0) {
		var size int64
		if _, size, err = s.stat(h); err != nil && delta > 0 {
			if rp == nil || !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("adjust refcount of %s: %w", h, err)
			}
			// Replicated: the reference arrived before the block (still in
			// flight, or lost, or offloaded earlier): fetch it unless it
			// shows up meanwhile.
			b.Put(db.BlockResyncKey(now.Add(rp.cfg.MissingDelay).UnixNano(), h[:]), db.WrapValue(nil))
			rp.queueLen.Add(1)
		}
		if err == nil || !ok {
			r.size = size
		}
	}
	switch {
	case delta >= 0:
		r.count += uint64(delta)
	case uint64(-delta) > r.count:
		s.log.Warn("block refcount would go negative", "hash", h.String(), "count", r.count, "delta", delta)
		r.count = 0
	default:
		r.count -= uint64(-delta)
	}
	if r.count == 0 {
		if r.deadline == 0 || delta < 0 {
			r.deadline = now.Add(s.cfg.GCDelay).UnixNano()
			b.Put(db.BlockGCKey(r.deadline, h[:]), db.WrapValue(nil))
		}
	} else {
		r.deadline = 0
	}
	b.Put(db.BlockRCKey(h[:]), r.encode())
	return nil
}

// Abandon releases blocks written (and pinned) by Write for a request that
// failed before referencing them: each is unpinned and, when no one else
// pins or references it, deleted at once.
func (s *Store) Abandon(hs ...Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hs {
		if s.pins[h] <= 1 {
			delete(s.pins, h)
		} else {
			s.pins[h]--
			continue
		}
		_, ok, err := getRC(s.cfg.DB.Get, h)
		if err != nil || ok {
			continue
		}
		s.removeFiles(h)
	}
}

func (s *Store) removeFiles(h Hash) {
	for _, z := range []bool{false, true} {
		if err := os.Remove(s.path(h, z)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("remove block", "hash", h.String(), "err", err)
		}
	}
}

// RunGC deletes the blocks whose deletion deadline is at or before now and
// that are still unreferenced and unpinned. It returns how many it deleted.
func (s *Store) RunGC(ctx context.Context, now time.Time) (int, error) {
	deleted := 0
	for {
		type due struct {
			key      []byte
			deadline int64
			h        Hash
		}
		var batch []due
		it := s.cfg.DB.Iterate(db.BlockGCPrefix(), db.BlockGCKey(now.UnixNano()+1, nil))
		for it.Next() && len(batch) < 512 {
			dl, hb, err := db.DecodeBlockGCKey(it.Key())
			if err != nil {
				continue
			}
			h, err := HashFromBytes(hb)
			if err != nil {
				continue
			}
			batch = append(batch, due{append([]byte(nil), it.Key()...), dl, h})
		}
		if err := it.Close(); err != nil {
			return deleted, fmt.Errorf("block gc: %w", err)
		}
		if len(batch) == 0 {
			return deleted, nil
		}
		// With replication, a copy this node holds for a partition it no
		// longer owns goes only once its owners confirmed they have it (or
		// do not reference it); otherwise it is pushed and kept a while.
		var keep map[Hash]bool
		if rp := s.repl.Load(); rp != nil {
			hs := make([]Hash, len(batch))
			for i, d := range batch {
				hs[i] = d.h
			}
			keep = rp.unsafeToDrop(ctx, hs)
		}
		progress := false
		for _, d := range batch {
			if err := ctx.Err(); err != nil {
				return deleted, err
			}
			s.mu.Lock()
			if s.pins[d.h] > 0 {
				s.mu.Unlock()
				continue // about to be referenced; retried next run
			}
			progress = true
			b := s.cfg.DB.NewBatch()
			b.Delete(d.key)
			r, ok, err := getRC(s.cfg.DB.Get, d.h)
			if err != nil {
				s.mu.Unlock()
				return deleted, fmt.Errorf("block gc: %w", err)
			}
			switch {
			case keep[d.h] && (!ok || (r.count == 0 && r.deadline == d.deadline)):
				dl := now.Add(s.repl.Load().cfg.ResyncRetry).UnixNano()
				b.Put(db.BlockGCKey(dl, d.h[:]), db.WrapValue(nil))
				if ok {
					r.deadline = dl
					b.Put(db.BlockRCKey(d.h[:]), r.encode())
				}
			case !ok || (r.count == 0 && r.deadline == d.deadline):
				s.removeFiles(d.h)
				b.Delete(db.BlockRCKey(d.h[:]))
				deleted++
			}
			err = s.cfg.DB.Write(b, false)
			s.mu.Unlock()
			if err != nil {
				return deleted, fmt.Errorf("block gc: %w", err)
			}
		}
		if !progress {
			return deleted, nil
		}
	}
}

// ScanOrphans walks the data directory and deletes block files that have no
// reference count (written before a crash and never referenced) and stale
// temporary files, skipping pinned hashes. It returns how many files it removed.
func (s *Store) ScanOrphans(ctx context.Context) (int, error) {
	removed := 0
	err := filepath.WalkDir(s.cfg.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() {
			return nil
		}
		h, tmp, ok := blockFileHash(d.Name())
		if !ok {
			return nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pins[h] > 0 {
			return nil
		}
		if !tmp {
			if _, ok, err := getRC(s.cfg.DB.Get, h); err != nil || ok {
				return err
			}
			// A replica received from another node waits GCDelay for its
			// references (RunGC deletes it then if none came).
			if s.repl.Load() != nil {
				if fi, err := d.Info(); err == nil && time.Since(fi.ModTime()) < s.cfg.GCDelay {
					return nil
				}
			}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		s.log.Info("removed orphan block file", "file", d.Name())
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("scan orphan blocks: %w", err)
	}
	return removed, nil
}

// Stats summarizes the reference counts: stored blocks, their bytes on disk
// and how many await deletion.
func (s *Store) Stats(ctx context.Context) (blocks, bytes, pending int64, err error) {
	it := s.cfg.DB.IteratePrefix(db.BlockRCPrefix())
	for it.Next() {
		if err := ctx.Err(); err != nil {
			it.Close()
			return 0, 0, 0, err
		}
		r, err := decodeRefCount(it.Value())
		if err != nil {
			continue
		}
		blocks++
		bytes += r.size
		if r.count == 0 {
			pending++
		}
	}
	if err := it.Close(); err != nil {
		return 0, 0, 0, fmt.Errorf("block stats: %w", err)
	}
	return blocks, bytes, pending, nil
}

// RefCount returns h's reference count (0 when unknown).
func (s *Store) RefCount(h Hash) (uint64, error) {
	r, _, err := getRC(s.cfg.DB.Get, h)
	return r.count, err
}

// Run runs deferred deletion until ctx ends: RunGC every min(GCDelay/4, 1 min)
// and an orphan scan shortly after start and then daily.
func (s *Store) Run(ctx context.Context) {
	every := s.cfg.GCDelay / 4
	if every > time.Minute {
		every = time.Minute
	}
	if every < time.Second {
		every = time.Second
	}
	gcT := time.NewTicker(every)
	defer gcT.Stop()
	scan := time.NewTimer(30 * time.Second)
	defer scan.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-gcT.C:
			if n, err := s.RunGC(ctx, now); err != nil && ctx.Err() == nil {
				s.log.Warn("block gc", "err", err)
			} else if n > 0 {
				s.log.Debug("block gc", "deleted", n)
			}
		case <-scan.C:
			if n, err := s.ScanOrphans(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("orphan scan", "err", err)
			} else if n > 0 {
				s.log.Info("orphan scan", "removed", n)
			}
			scan.Reset(24 * time.Hour)
		}
	}
}
