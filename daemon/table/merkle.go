package table

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/entrepot/entrepot/daemon/db"
)

// The Merkle tree of one (table, partition) has three levels: the root, 256
// level-1 nodes (first byte of SHA-256(table key)) and 65,536 level-2 leaves
// (second byte). A node's hash is the XOR of the hashes of the items below it
// (item hash = SHA-256(table key | SHA-256(stored value))), so a changed entry
// updates its three nodes in place, in any order. Only non-empty nodes are
// stored. Each item is indexed under its leaf, which also lists the entries
// of a partition (partition = first byte of SHA-256(partition key), so they
// are scattered in the table's own key order).

// merkleDepth is the number of path bytes of a leaf.
const merkleDepth = 2

// nodeVersion is the first byte of a stored Merkle node.
const nodeVersion = 1

// mnode is one Merkle node: XOR of its item hashes and their number.
type mnode struct {
	Hash  [32]byte
	Count uint64
}

func (n mnode) encode() []byte {
	b := make([]byte, 0, 41)
	b = append(b, nodeVersion)
	b = append(b, n.Hash[:]...)
	return binary.BigEndian.AppendUint64(b, n.Count)
}

func decodeNode(b []byte) (mnode, error) {
	var n mnode
	if len(b) != 41 || b[0] != nodeVersion {
		return n, fmt.Errorf("decode merkle node: %w", db.ErrBadValue)
	}
	copy(n.Hash[:], b[1:33])
	n.Count = binary.BigEndian.Uint64(b[33:])
	return n, nil
}

func (n *mnode) xor(h [32]byte) {
	for i := range h {
		n.Hash[i] ^= h[i]
	}
}

// leafOf is the leaf path of an entry.
func leafOf(tableKey []byte) (uint8, uint8) {
	h := sha256.Sum256(tableKey)
	return h[0], h[1]
}

// valueHash is the hash of a stored (wrapped) value.
func valueHash(raw []byte) [32]byte { return sha256.Sum256(raw) }

func itemHash(tableKey []byte, vh [32]byte) [32]byte {
	h := sha256.New()
	h.Write(tableKey)
	h.Write(vh[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// enableTracking makes every later change leave a Merkle todo.
func (t *Local[V]) enableTracking() { t.tracked.Store(true) }

func (t *Local[V]) kickMerkle() {
	select {
	case t.mkKick <- struct{}{}:
	default:
	}
}

// initMerkle queues every existing entry once, the first time the table is
// replicated (entries written while the table was single-node have no todo).
func (t *Local[V]) initMerkle(ctx context.Context) error {
	id := t.s.Table()
	if _, err := t.d.Get(db.MerkleInitKey(id)); err == nil {
		return nil
	} else if !errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("init merkle of table %d: %w", id, err)
	}
	it := t.d.IteratePrefix(db.TablePrefix(id))
	b := t.d.NewBatch()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			it.Close()
			return err
		}
		b.Put(db.MerkleTodoKey(it.Key()), nil)
		if b.Len() >= 1000 {
			if err := t.d.Write(b, false); err != nil {
				it.Close()
				return err
			}
			b = t.d.NewBatch()
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("init merkle of table %d: %w", id, err)
	}
	b.Put(db.MerkleInitKey(id), nil)
	if err := t.d.Write(b, true); err != nil {
		return fmt.Errorf("init merkle of table %d: %w", id, err)
	}
	t.kickMerkle()
	return nil
}

// updateMerkle folds up to max pending changes into the tree and returns how
// many it processed. The entries' locks are held until the batch is written,
// so an insert racing with the update leaves a todo that is not lost.
func (t *Local[V]) updateMerkle(ctx context.Context, max int) (int, error) {
	t.mkMu.Lock()
	defer t.mkMu.Unlock()
	id := t.s.Table()
	var keys [][]byte
	it := t.d.IteratePrefix(db.MerkleTodoPrefix(id))
	for it.Next() && len(keys) < max {
		k, err := db.DecodeMerkleTodoKey(it.Key())
		if err != nil {
			it.Close()
			return 0, err
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("update merkle of table %d: %w", id, err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	es := make([]Entry[V], 0, len(keys))
	for _, k := range keys {
		_, pk, sk, err := db.DecodeTableKey(k)
		if err != nil {
			return 0, err
		}
		es = append(es, Entry[V]{PK: string(pk), SK: string(sk)})
	}
	unlock := t.lockAll(es)
	defer unlock()
	b := t.d.NewBatch()
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := t.mergeItem(b, es[i].PK, k); err != nil {
			return 0, fmt.Errorf("update merkle of table %d: %w", id, err)
		}
		b.Delete(db.MerkleTodoKey(k))
	}
	if err := t.d.Write(b, false); err != nil {
		return 0, fmt.Errorf("update merkle of table %d: %w", id, err)
	}
	return len(keys), nil
}

// mergeItem brings entry tableKey's Merkle item and nodes in line with the
// stored value, inside b.
func (t *Local[V]) mergeItem(b *db.Batch, pk string, tableKey []byte) error {
	id := t.s.Table()
	p := Partition(pk)
	b0, b1 := leafOf(tableKey)
	ik := db.MerkleItemKey(id, p, b0, b1, tableKey)
	var newH [32]byte
	raw, err := t.d.Get(tableKey)
	present := err == nil
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return err
	}
	if present {
		newH = valueHash(raw)
	}
	old, err := b.Get(ik)
	had := err == nil
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return err
	}
	if had && len(old) != 32 {
		return fmt.Errorf("merkle item %x: %w", ik, db.ErrBadValue)
	}
	if had == present && (!had || bytes.Equal(old, newH[:])) {
		return nil
	}
	var delta [32]byte
	var dc int64
	if had {
		delta = itemHash(tableKey, [32]byte(old))
		dc--
	}
	if present {
		nh := itemHash(tableKey, newH)
		for i := range delta {
			delta[i] ^= nh[i]
		}
		dc++
		b.Put(ik, newH[:])
	} else {
		b.Delete(ik)
	}
	for _, path := range [][]byte{nil, {b0}, {b0, b1}} {
		nk := db.MerkleNodeKey(id, p, path)
		var n mnode
		if cur, err := b.Get(nk); err == nil {
			if n, err = decodeNode(cur); err != nil {
				return err
			}
		} else if !errors.Is(err, db.ErrNotFound) {
			return err
		}
		n.xor(delta)
		n.Count = uint64(int64(n.Count) + dc)
		if n.Count == 0 {
			b.Delete(nk)
		} else {
			b.Put(nk, n.encode())
		}
	}
	return nil
}

// merkleTodo counts pending Merkle updates, up to limit.
func (t *Local[V]) merkleTodo(limit int) int {
	it := t.d.IteratePrefix(db.MerkleTodoPrefix(t.s.Table()))
	n := 0
	for n < limit && it.Next() {
		n++
	}
	it.Close()
	return n
}

// merkleNode returns the node at path of partition p (zero when empty).
func (t *Local[V]) merkleNode(p uint8, path []byte) (mnode, error) {
	raw, err := t.d.Get(db.MerkleNodeKey(t.s.Table(), p, path))
	if errors.Is(err, db.ErrNotFound) {
		return mnode{}, nil
	}
	if err != nil {
		return mnode{}, err
	}
	return decodeNode(raw)
}

// merkleRoots returns the root of every partition.
func (t *Local[V]) merkleRoots() ([256]mnode, error) {
	var out [256]mnode
	for p := range 256 {
		n, err := t.merkleNode(uint8(p), nil)
		if err != nil {
			return out, err
		}
		out[p] = n
	}
	return out, nil
}

// child is one non-empty child of a Merkle node.
type child struct {
	B    uint8
	Node mnode
}

// merkleChildren lists the non-empty children of the node at path (len < merkleDepth).
func (t *Local[V]) merkleChildren(p uint8, path []byte) ([]child, error) {
	if len(path) >= merkleDepth {
		return nil, fmt.Errorf("merkle children of a leaf: %w", ErrBadMessage)
	}
	full := db.MerkleNodeKey(t.s.Table(), p, append(append([]byte(nil), path...), 0))
	prefix := full[:len(full)-1]
	it := t.d.IteratePrefix(prefix)
	var out []child
	for it.Next() {
		k := it.Key()
		if len(k) != len(full) {
			continue
		}
		n, err := decodeNode(it.Value())
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, child{B: k[len(k)-1], Node: n})
	}
	return out, it.Close()
}

// itemRef is one Merkle item: an entry and the hash of its stored value.
// Cursor orders items inside a partition (leaf bytes then table key).
type itemRef struct {
	PK, SK string
	Hash   [32]byte
	Cursor []byte
}

// merkleItems lists up to limit items of partition p under path, after
// cursor (exclusive; nil = from the start). more is true when items remain.
func (t *Local[V]) merkleItems(p uint8, path, after []byte, limit int) (items []itemRef, more bool, err error) {
	id := t.s.Table()
	prefix := db.MerkleItemPrefix(id, p, path)
	base := len(db.MerkleItemPrefix(id, p, nil))
	start := prefix
	if after != nil {
		start = append(db.MerkleItemPrefix(id, p, nil), after...)
		start = append(start, 0) // strictly after
		if bytes.Compare(start, prefix) < 0 {
			start = prefix
		}
	}
	it := t.d.Iterate(start, db.PrefixEnd(prefix))
	for it.Next() {
		if len(items) >= limit {
			more = true
			break
		}
		_, _, _, _, tk, err := db.DecodeMerkleItemKey(it.Key())
		if err != nil || len(it.Value()) != 32 {
			it.Close()
			return nil, false, fmt.Errorf("merkle item %x: %w", it.Key(), db.ErrBadValue)
		}
		_, pk, sk, err := db.DecodeTableKey(tk)
		if err != nil {
			it.Close()
			return nil, false, err
		}
		items = append(items, itemRef{PK: string(pk), SK: string(sk), Hash: [32]byte(it.Value()),
			Cursor: append([]byte(nil), it.Key()[base:]...)})
	}
	return items, more, it.Close()
}
