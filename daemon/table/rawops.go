package table

import (
	"context"
	"errors"
	"fmt"

	"github.com/entrepot/entrepot/daemon/db"
)

// store is the untyped face of a Local table that replication works with:
// values travel as their schema encoding, without the db version byte.
type store interface {
	tableID() db.TableID
	enableTracking()
	kickChan() <-chan struct{}
	initMerkle(ctx context.Context) error
	updateMerkle(ctx context.Context, max int) (int, error)
	merkleTodo(limit int) int
	merkleNode(p uint8, path []byte) (mnode, error)
	merkleRoots() ([256]mnode, error)
	merkleChildren(p uint8, path []byte) ([]child, error)
	merkleItems(p uint8, path, after []byte, limit int) ([]itemRef, bool, error)
	insertRaw(ctx context.Context, es []rawEntry, wantChanges bool) ([]rawChange, error)
	getRaw(ctx context.Context, keys []rawKey) ([]rawValue, error)
	rangeRaw(ctx context.Context, pk, from string, limit int) ([]rawEntry, error)
	summarize(raw []byte) []byte
	tombstones(ctx context.Context, before uint64, limit int) ([]gcItem, error)
	gcDelete(ctx context.Context, items []gcItem) (int, error)
	dropItems(ctx context.Context, items []itemRef) (int, error)
}

var _ store = (*Local[int])(nil)

// rawKey names one entry.
type rawKey struct{ PK, SK string }

// rawEntry is one entry with its encoded value.
type rawEntry struct {
	PK, SK string
	Value  []byte
}

// rawValue is a looked-up value (Found false: absent).
type rawValue struct {
	Found bool
	Value []byte
}

// rawChange is what an insert did to one entry, encoded.
type rawChange struct {
	HadOld, Changed bool
	Old, New        []byte
}

// gcItem is a tombstone to collect: deleted only if its stored value still
// hashes to Hash.
type gcItem struct {
	PK, SK string
	Hash   [32]byte
}

func (t *Local[V]) tableID() db.TableID       { return t.s.Table() }
func (t *Local[V]) kickChan() <-chan struct{} { return t.mkKick }

func (t *Local[V]) insertRaw(ctx context.Context, es []rawEntry, wantChanges bool) ([]rawChange, error) {
	typed := make([]Entry[V], len(es))
	for i, e := range es {
		v, err := t.s.Decode(e.Value)
		if err != nil {
			return nil, fmt.Errorf("decode table %d value: %w", t.s.Table(), errors.Join(ErrBadMessage, err))
		}
		typed[i] = Entry[V]{PK: e.PK, SK: e.SK, Value: v}
	}
	chs, err := t.Insert(ctx, typed...)
	if err != nil || !wantChanges {
		return nil, err
	}
	out := make([]rawChange, len(chs))
	for i, c := range chs {
		out[i] = rawChange{HadOld: c.HadOld, Changed: c.Changed}
		if c.HadOld {
			if out[i].Old, err = t.s.Encode(c.Old); err != nil {
				return nil, err
			}
		}
		if out[i].New, err = t.s.Encode(c.New); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t *Local[V]) getRaw(ctx context.Context, keys []rawKey) ([]rawValue, error) {
	out := make([]rawValue, len(keys))
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		raw, err := t.d.Get(t.key(k.PK, k.SK))
		if errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p, err := db.UnwrapValue(raw)
		if err != nil {
			return nil, err
		}
		out[i] = rawValue{Found: true, Value: p}
	}
	return out, nil
}

func (t *Local[V]) rangeRaw(ctx context.Context, pk, from string, limit int) ([]rawEntry, error) {
	prefix := db.TablePartitionPrefix(t.s.Table(), []byte(pk))
	it := t.d.Iterate(append(prefix[:len(prefix):len(prefix)], from...), db.PrefixEnd(prefix))
	var out []rawEntry
	for it.Next() {
		if limit > 0 && len(out) >= limit {
			break
		}
		if err := ctx.Err(); err != nil {
			it.Close()
			return nil, err
		}
		p, err := db.UnwrapValue(it.Value())
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, rawEntry{PK: pk, SK: string(it.Key()[len(prefix):]), Value: append([]byte(nil), p...)})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("range table %d: %w", t.s.Table(), err)
	}
	return out, nil
}

// tombstones lists up to limit tombstones older than before (ms).
func (t *Local[V]) tombstones(ctx context.Context, before uint64, limit int) ([]gcItem, error) {
	var out []gcItem
	it := t.d.IteratePrefix(db.TablePrefix(t.s.Table()))
	defer it.Close()
	for it.Next() && len(out) < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := t.decode(it.Value())
		if err != nil {
			return nil, err
		}
		if !t.s.IsTombstone(v) || t.s.Timestamp(v) >= before {
			continue
		}
		_, pk, sk, err := db.DecodeTableKey(it.Key())
		if err != nil {
			return nil, err
		}
		out = append(out, gcItem{PK: string(pk), SK: string(sk), Hash: valueHash(it.Value())})
	}
	return out, nil
}

// gcDelete removes each item whose stored value is still the tombstone of
// the given hash; it returns how many it removed.
func (t *Local[V]) gcDelete(ctx context.Context, items []gcItem) (int, error) {
	n := 0
	for _, g := range items {
		ok, err := t.dropIf(ctx, g.PK, g.SK, func(raw []byte, v V) bool {
			return valueHash(raw) == g.Hash && t.s.IsTombstone(v)
		})
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// dropItems physically removes entries this node no longer holds, each only
// if its stored value still has the listed hash (a write that arrived since
// is kept for the next offload), running the Hook as for a deletion first
// (block references release their count).
func (t *Local[V]) dropItems(ctx context.Context, items []itemRef) (int, error) {
	n := 0
	for _, it := range items {
		ok, err := t.dropIf(ctx, it.PK, it.SK, func(raw []byte, _ V) bool { return valueHash(raw) == it.Hash })
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (t *Local[V]) dropIf(ctx context.Context, pk, sk string, cond func(raw []byte, v V) bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p := t.stripe(pk, sk)
	t.locks[p].Lock()
	defer t.locks[p].Unlock()
	k := t.key(pk, sk)
	raw, err := t.d.Get(k)
	if errors.Is(err, db.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v, err := t.decode(raw)
	if err != nil {
		return false, err
	}
	if !cond(raw, v) {
		return false, nil
	}
	b := t.d.NewBatch()
	if t.hook != nil && !t.s.IsTombstone(v) {
		if err := t.hook.Updated(b, pk, sk, v, true, t.s.Tombstone(v, t.s.Timestamp(v))); err != nil {
			return false, fmt.Errorf("table %d update hook: %w", t.s.Table(), err)
		}
	}
	b.Delete(k)
	if t.tracked.Load() {
		b.Put(db.MerkleTodoKey(k), nil)
	}
	if err := t.d.Write(b, true); err != nil {
		return false, fmt.Errorf("drop from table %d: %w", t.s.Table(), err)
	}
	t.kickMerkle()
	return true, nil
}
