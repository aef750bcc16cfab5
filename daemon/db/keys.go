package db

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SchemaVersion is the on-disk layout version this code writes and reads.
// Open refuses a database whose stored version is newer.
const SchemaVersion uint32 = 1

// ValueVersion is the format byte every stored value starts with.
const ValueVersion byte = 1

// Key-space prefixes. Each is one byte; nothing else in the code base may
// invent a prefix.
const (
	prefixMeta    byte = 0x00 // node metadata: schema version, node id...
	prefixTable   byte = 0x01 // CRDT table entries: 0x01 | table | len(pk) u16 BE | pk | sk
	prefixBlockRC byte = 0x02 // block reference counts: 0x02 | hash
	prefixBlockGC byte = 0x03 // pending block deletions: 0x03 | deadline unix ns u64 BE | hash
	// Table anti-entropy (daemon/table): a Merkle tree per (table, partition).
	prefixMerkleNode byte = 0x04 // 0x04 | table | partition | depth | path (depth bytes) -> node
	prefixMerkleItem byte = 0x05 // 0x05 | table | partition | b0 | b1 | table key -> item value hash
	prefixMerkleTodo byte = 0x06 // 0x06 | table key -> empty: entry changed, tree not yet updated
	prefixMerkleInit byte = 0x07 // 0x07 | table -> empty: the tree covers every entry of the table
	// 0x08..0x0f are left to the cluster package.
	prefixBlockResync byte = 0x10 // block resync queue: 0x10 | due unix ns u64 BE | hash
	prefixBlockError  byte = 0x11 // blocks whose resync failed: 0x11 | hash
)

// TableID names a table inside prefixTable.
type TableID byte

// The tables. Numbers are persisted: never reuse or renumber one.
const (
	TableBucket     TableID = 1 // pk "" / sk bucket id
	TableBucketName TableID = 2 // pk "" / sk bucket name -> bucket id
	TableAccessKey  TableID = 3 // pk "" / sk access key id
	TableObject     TableID = 4 // pk bucket id / sk object key
	TableVersion    TableID = 5 // pk version id / sk ""
	TableBlockRef   TableID = 6 // pk block hash / sk version id
	TableUpload     TableID = 7 // pk bucket id / sk object key 0x00 upload id
)

// ErrBadKey is returned when a key cannot be decoded.
var ErrBadKey = errors.New("malformed key")

// ErrBadValue is returned when a value has an unknown version byte or is empty.
var ErrBadValue = errors.New("malformed value")

const maxPK = 0xffff

var schemaKey = []byte{prefixMeta, 's', 'c', 'h', 'e', 'm', 'a'}

// SchemaKey is the key holding the schema version (4 bytes big endian).
func SchemaKey() []byte { return append([]byte(nil), schemaKey...) }

// TableKey encodes the key of entry (pk, sk) in table t. pk must be at most
// 65535 bytes.
func TableKey(t TableID, pk, sk []byte) []byte {
	k := make([]byte, 0, 4+len(pk)+len(sk))
	k = append(k, prefixTable, byte(t))
	k = binary.BigEndian.AppendUint16(k, uint16(len(pk)))
	k = append(k, pk...)
	return append(k, sk...)
}

// TablePartitionPrefix is the common prefix of every entry of table t with
// partition key pk; entries under it sort by sort key.
func TablePartitionPrefix(t TableID, pk []byte) []byte {
	return TableKey(t, pk, nil)
}

// TablePrefix is the common prefix of every entry of table t.
func TablePrefix(t TableID) []byte { return []byte{prefixTable, byte(t)} }

// DecodeTableKey splits a key made by TableKey. The returned slices alias k.
func DecodeTableKey(k []byte) (t TableID, pk, sk []byte, err error) {
	if len(k) < 4 || k[0] != prefixTable {
		return 0, nil, nil, fmt.Errorf("decode table key %x: %w", k, ErrBadKey)
	}
	n := int(binary.BigEndian.Uint16(k[2:4]))
	if len(k) < 4+n {
		return 0, nil, nil, fmt.Errorf("decode table key %x: partition key truncated: %w", k, ErrBadKey)
	}
	return TableID(k[1]), k[4 : 4+n], k[4+n:], nil
}

// ValidPK reports whether pk fits the table key encoding.
func ValidPK(pk []byte) bool { return len(pk) <= maxPK }

// BlockRCKey is the key of a block's reference count.
func BlockRCKey(hash []byte) []byte {
	return append([]byte{prefixBlockRC}, hash...)
}

// BlockRCPrefix prefixes every reference count key.
func BlockRCPrefix() []byte { return []byte{prefixBlockRC} }

// DecodeBlockRCKey returns the hash of a key made by BlockRCKey (aliasing k).
func DecodeBlockRCKey(k []byte) ([]byte, error) {
	if len(k) < 2 || k[0] != prefixBlockRC {
		return nil, fmt.Errorf("decode block rc key %x: %w", k, ErrBadKey)
	}
	return k[1:], nil
}

// BlockGCKey is the key of a pending deletion of hash, due at deadline (unix ns).
// Keys sort by deadline, so due entries are a prefix scan.
func BlockGCKey(deadline int64, hash []byte) []byte {
	k := make([]byte, 0, 9+len(hash))
	k = append(k, prefixBlockGC)
	k = binary.BigEndian.AppendUint64(k, uint64(deadline))
	return append(k, hash...)
}

// BlockGCPrefix prefixes every pending-deletion key.
func BlockGCPrefix() []byte { return []byte{prefixBlockGC} }

// DecodeBlockGCKey splits a key made by BlockGCKey (hash aliases k).
func DecodeBlockGCKey(k []byte) (deadline int64, hash []byte, err error) {
	if len(k) < 10 || k[0] != prefixBlockGC {
		return 0, nil, fmt.Errorf("decode block gc key %x: %w", k, ErrBadKey)
	}
	return int64(binary.BigEndian.Uint64(k[1:9])), k[9:], nil
}

// MerkleNodeKey is the key of the Merkle node of table t, partition p at
// path (0 to 2 bytes: root, level 1, level 2).
func MerkleNodeKey(t TableID, p uint8, path []byte) []byte {
	k := make([]byte, 0, 4+len(path))
	k = append(k, prefixMerkleNode, byte(t), p, byte(len(path)))
	return append(k, path...)
}

// MerkleItemPrefix prefixes the Merkle items of table t, partition p under
// path (0 to 2 bytes).
func MerkleItemPrefix(t TableID, p uint8, path []byte) []byte {
	k := make([]byte, 0, 3+len(path))
	k = append(k, prefixMerkleItem, byte(t), p)
	return append(k, path...)
}

// MerkleItemKey is the Merkle item of the entry whose table key is
// tableKey, in leaf (b0, b1) of partition p.
func MerkleItemKey(t TableID, p, b0, b1 uint8, tableKey []byte) []byte {
	k := make([]byte, 0, 5+len(tableKey))
	k = append(k, prefixMerkleItem, byte(t), p, b0, b1)
	return append(k, tableKey...)
}

// DecodeMerkleItemKey splits a key made by MerkleItemKey (tableKey aliases k).
func DecodeMerkleItemKey(k []byte) (t TableID, p, b0, b1 uint8, tableKey []byte, err error) {
	if len(k) < 5 || k[0] != prefixMerkleItem {
		return 0, 0, 0, 0, nil, fmt.Errorf("decode merkle item key %x: %w", k, ErrBadKey)
	}
	return TableID(k[1]), k[2], k[3], k[4], k[5:], nil
}

// MerkleTodoKey marks the entry with table key tableKey as changed since the
// Merkle tree last covered it.
func MerkleTodoKey(tableKey []byte) []byte {
	return append([]byte{prefixMerkleTodo}, tableKey...)
}

// MerkleTodoPrefix prefixes the pending Merkle updates of table t.
func MerkleTodoPrefix(t TableID) []byte { return []byte{prefixMerkleTodo, prefixTable, byte(t)} }

// DecodeMerkleTodoKey returns the table key of a key made by MerkleTodoKey (aliasing k).
func DecodeMerkleTodoKey(k []byte) ([]byte, error) {
	if len(k) < 2 || k[0] != prefixMerkleTodo {
		return nil, fmt.Errorf("decode merkle todo key %x: %w", k, ErrBadKey)
	}
	return k[1:], nil
}

// MerkleInitKey records that table t's Merkle tree covers every entry.
func MerkleInitKey(t TableID) []byte { return []byte{prefixMerkleInit, byte(t)} }

// PrefixEnd returns the smallest key greater than every key starting with p,
// or nil when there is none (p is all 0xff).
func PrefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] < 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

// WrapValue prefixes payload with ValueVersion.
func WrapValue(payload []byte) []byte {
	v := make([]byte, 0, 1+len(payload))
	v = append(v, ValueVersion)
	return append(v, payload...)
}

// UnwrapValue checks the version byte and returns the payload (aliasing v).
func UnwrapValue(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("unwrap value: empty: %w", ErrBadValue)
	}
	if v[0] != ValueVersion {
		return nil, fmt.Errorf("unwrap value: version %d, want %d: %w", v[0], ValueVersion, ErrBadValue)
	}
	return v[1:], nil
}

// BlockResyncKey is the key of a resync queue entry for hash, due at due
// (unix ns). Keys sort by due time; a hash may be queued more than once.
func BlockResyncKey(due int64, hash []byte) []byte {
	k := make([]byte, 0, 9+len(hash))
	k = append(k, prefixBlockResync)
	k = binary.BigEndian.AppendUint64(k, uint64(due))
	return append(k, hash...)
}

// BlockResyncPrefix prefixes every resync queue key.
func BlockResyncPrefix() []byte { return []byte{prefixBlockResync} }

// DecodeBlockResyncKey splits a key made by BlockResyncKey (hash aliases k).
func DecodeBlockResyncKey(k []byte) (due int64, hash []byte, err error) {
	if len(k) < 10 || k[0] != prefixBlockResync {
		return 0, nil, fmt.Errorf("decode block resync key %x: %w", k, ErrBadKey)
	}
	return int64(binary.BigEndian.Uint64(k[1:9])), k[9:], nil
}

// BlockErrorKey is the key recording the failed resyncs of hash.
func BlockErrorKey(hash []byte) []byte {
	return append([]byte{prefixBlockError}, hash...)
}

// BlockErrorPrefix prefixes every block error key.
func BlockErrorPrefix() []byte { return []byte{prefixBlockError} }
