package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/db"
	"github.com/entrepot/entrepot/daemon/table"
)

// lww is a last-writer-wins register with a deletion flag.
type lww[T any] struct {
	TS  uint64 `json:"t"`
	Del bool   `json:"d,omitempty"`
	V   T      `json:"v"`
}

type lwwSchema[T any] struct{ id db.TableID }

func (s lwwSchema[T]) Table() db.TableID                  { return s.id }
func (lwwSchema[T]) Encode(v lww[T]) ([]byte, error)      { return json.Marshal(v) }
func (lwwSchema[T]) Timestamp(v lww[T]) uint64            { return v.TS }
func (lwwSchema[T]) IsTombstone(v lww[T]) bool            { return v.Del }
func (lwwSchema[T]) Tombstone(_ lww[T], ts uint64) lww[T] { return lww[T]{TS: ts, Del: true} }
func (lwwSchema[T]) Decode(b []byte) (lww[T], error) {
	var v lww[T]
	err := json.Unmarshal(b, &v)
	return v, err
}

func (lwwSchema[T]) Merge(a, b lww[T]) lww[T] {
	if ab, ok := any(a).(lww[Bucket]); ok { // bucket configuration merges per field (bucketconfig.go)
		return any(mergeBucket(ab, any(b).(lww[Bucket]))).(lww[T])
	}
	return mergeLWW(a, b)
}

// mergeLWW keeps the newer register; a tie goes to the deletion, then to
// the greater JSON value.
func mergeLWW[T any](a, b lww[T]) lww[T] {
	switch {
	case a.TS != b.TS:
		if b.TS > a.TS {
			return b
		}
		return a
	case a.Del != b.Del:
		if b.Del {
			return b
		}
		return a
	}
	// Same timestamp, same state: pick deterministically.
	ja, _ := json.Marshal(a.V)
	jb, _ := json.Marshal(b.V)
	if bytes.Compare(jb, ja) > 0 {
		return b
	}
	return a
}

// blockRefSchema is the block_ref table (pk = raw block hash, sk = version
// id). A live entry holds one reference; its hook keeps the block store's
// reference count in step, inside the same batch.
type blockRefSchema struct {
	lwwSchema[struct{}]
	blocks *block.Store
	now    func() time.Time
}

// Merge: a block reference, once deleted, stays deleted (version ids are never reused).
func (blockRefSchema) Merge(a, b lww[struct{}]) lww[struct{}] {
	return lww[struct{}]{TS: max(a.TS, b.TS), Del: a.Del || b.Del}
}

func (s blockRefSchema) Updated(b *db.Batch, pk, _ string, old lww[struct{}], hadOld bool, merged lww[struct{}]) error {
	was, is := hadOld && !old.Del, !merged.Del
	if was == is {
		return nil
	}
	h, err := block.HashFromBytes([]byte(pk))
	if err != nil {
		return err
	}
	delta := 1
	if was {
		delta = -1
	}
	return s.blocks.AdjustRef(b, h, delta, s.now())
}

// Object version states.
const (
	stateUploading uint8 = 0
	stateComplete  uint8 = 1
	stateDeleted   uint8 = 2 // delete marker
	stateAborted   uint8 = 3
)

// objVersion is one version in an object entry.
type objVersion struct {
	ID     string      `json:"id"`
	TS     uint64      `json:"t"`
	State  uint8       `json:"s"`
	Meta   *ObjectMeta `json:"m,omitempty"`
	Inline []byte      `json:"-"`           // whole data of an inline object (stored raw, see objectSchema.Encode)
	Inl    bool        `json:"n,omitempty"` // data is Inline (may be empty), not in the version table
	// Blocks copies the version table's block list when it has at most
	// embedBlocks blocks: versions never change, so a GET can use it and skip
	// a version-table read (a quorum round trip in a cluster). The version
	// table stays the reference (block references, freeing).
	Blocks []blockEntry `json:"bl,omitempty"`
}

// embedBlocks is the most blocks an object entry carries (8 MiB at the
// default block size, about 1 KB of entry).
const embedBlocks = 8

// embed records bl in v when it is short enough.
func (v *objVersion) embed(bl []blockEntry) {
	if len(bl) <= embedBlocks {
		v.Blocks = bl
	}
}

// objectRec is the object table entry (pk = bucket id, sk = object key): the
// newest complete version or delete marker, plus newer in-progress versions.
type objectRec struct {
	Versions []objVersion `json:"v"`
}

// visible returns the current version, if it is a complete object.
func (o objectRec) visible() (objVersion, bool) {
	for i := len(o.Versions) - 1; i >= 0; i-- {
		switch o.Versions[i].State {
		case stateComplete:
			return o.Versions[i], o.Versions[i].Meta != nil
		case stateDeleted:
			return objVersion{}, false
		}
	}
	return objVersion{}, false
}

func (o objectRec) maxTS() uint64 {
	var t uint64
	for _, v := range o.Versions {
		t = max(t, v.TS)
	}
	return t
}

type objectSchema struct{}

func (objectSchema) Table() db.TableID { return db.TableObject }

func (objectSchema) Timestamp(v objectRec) uint64 { return v.maxTS() }

// Encode writes uvarint(len(json)) | json | for each version: uvarint(len(inline)) | inline.
// Inline data stays raw: as base64 inside JSON it dominated the cost of a
// small GET (decoded twice per request).
func (objectSchema) Encode(v objectRec) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	n := len(j) + binary.MaxVarintLen64*(1+len(v.Versions))
	for _, ver := range v.Versions {
		n += len(ver.Inline)
	}
	out := binary.AppendUvarint(make([]byte, 0, n), uint64(len(j)))
	out = append(out, j...)
	for _, ver := range v.Versions {
		out = binary.AppendUvarint(out, uint64(len(ver.Inline)))
		out = append(out, ver.Inline...)
	}
	return out, nil
}

func (objectSchema) Decode(b []byte) (objectRec, error) {
	var v objectRec
	jl, k := binary.Uvarint(b)
	if k <= 0 || jl > uint64(len(b)-k) {
		return v, fmt.Errorf("decode object entry: bad header: %w", db.ErrBadValue)
	}
	if err := json.Unmarshal(b[k:k+int(jl)], &v); err != nil {
		return v, fmt.Errorf("decode object entry: %w", err)
	}
	rest := b[k+int(jl):]
	for i := range v.Versions {
		il, k := binary.Uvarint(rest)
		if k <= 0 || il > uint64(len(rest)-k) {
			return v, fmt.Errorf("decode object entry: inline data truncated: %w", db.ErrBadValue)
		}
		if il > 0 {
			v.Versions[i].Inline = rest[k : k+int(il) : k+int(il)]
		}
		rest = rest[k+int(il):]
	}
	if len(rest) != 0 {
		return v, fmt.Errorf("decode object entry: %d trailing bytes: %w", len(rest), db.ErrBadValue)
	}
	return v, nil
}
func (objectSchema) IsTombstone(v objectRec) bool {
	_, ok := v.visible()
	return !ok && !hasUploading(v)
}
func (objectSchema) Tombstone(_ objectRec, ts uint64) objectRec {
	return objectRec{Versions: []objVersion{{ID: fmt.Sprintf("delete-%016x", ts), TS: ts, State: stateDeleted}}}
}

// Summary leaves out inline object data and block lists (listings need only
// the metadata).
func (objectSchema) Summary(v objectRec) objectRec {
	out := objectRec{Versions: make([]objVersion, len(v.Versions))}
	for i, ver := range v.Versions {
		ver.Inline, ver.Blocks = nil, nil
		out.Versions[i] = ver
	}
	return out
}

func hasUploading(o objectRec) bool {
	for _, v := range o.Versions {
		if v.State == stateUploading {
			return true
		}
	}
	return false
}

// Merge unions the versions (a version's state only moves forward), then
// drops everything older than the newest complete version or delete marker.
func (objectSchema) Merge(a, b objectRec) objectRec {
	byID := map[string]objVersion{}
	for _, v := range append(append([]objVersion{}, a.Versions...), b.Versions...) {
		if cur, ok := byID[v.ID]; !ok || v.State > cur.State {
			byID[v.ID] = v
		}
	}
	// Aborted versions stay (as tombstones) until a newer complete version
	// or delete marker cuts them off, so merging in a stale copy that still
	// says "uploading" cannot resurrect them.
	vs := make([]objVersion, 0, len(byID))
	for _, v := range byID {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].TS != vs[j].TS {
			return vs[i].TS < vs[j].TS
		}
		return vs[i].ID < vs[j].ID
	})
	last := -1
	for i, v := range vs {
		if v.State == stateComplete || v.State == stateDeleted {
			last = i
		}
	}
	if last > 0 {
		vs = vs[last:]
	}
	return objectRec{Versions: vs}
}

// blockEntry is one block of a version: part number, offset in the part,
// hash and plain size.
type blockEntry struct {
	Part uint32 `json:"p,omitempty"`
	Off  int64  `json:"o"`
	Hash []byte `json:"h"`
	Size int64  `json:"s"`
}

// versionRec is the version table entry (pk = version id): the block list
// of an object version or of an uploaded part.
type versionRec struct {
	TS       uint64       `json:"t"`
	Del      bool         `json:"d,omitempty"`
	BucketID string       `json:"b"`
	Key      string       `json:"k"`
	UploadID string       `json:"u,omitempty"` // set for a multipart part
	Blocks   []blockEntry `json:"bl,omitempty"`
}

type versionSchema struct{}

func (versionSchema) Table() db.TableID                   { return db.TableVersion }
func (versionSchema) Encode(v versionRec) ([]byte, error) { return json.Marshal(v) }
func (versionSchema) Timestamp(v versionRec) uint64       { return v.TS }
func (versionSchema) IsTombstone(v versionRec) bool       { return v.Del }
func (versionSchema) Decode(b []byte) (versionRec, error) {
	var v versionRec
	err := json.Unmarshal(b, &v)
	return v, err
}
func (versionSchema) Tombstone(old versionRec, ts uint64) versionRec {
	return versionRec{TS: max(ts, old.TS), Del: true, BucketID: old.BucketID, Key: old.Key, UploadID: old.UploadID}
}

// Merge: deletion wins; otherwise the block lists are unioned.
func (s versionSchema) Merge(a, b versionRec) versionRec {
	out := a
	out.TS = max(a.TS, b.TS)
	if out.BucketID == "" {
		out.BucketID, out.Key, out.UploadID = b.BucketID, b.Key, b.UploadID
	}
	if a.Del || b.Del {
		out.Del, out.Blocks = true, nil
		return out
	}
	seen := map[[2]int64]bool{}
	var bl []blockEntry
	for _, e := range append(append([]blockEntry{}, a.Blocks...), b.Blocks...) {
		k := [2]int64{int64(e.Part), e.Off}
		if !seen[k] {
			seen[k] = true
			bl = append(bl, e)
		}
	}
	sort.Slice(bl, func(i, j int) bool {
		if bl[i].Part != bl[j].Part {
			return bl[i].Part < bl[j].Part
		}
		return bl[i].Off < bl[j].Off
	})
	out.Blocks = bl
	return out
}

// partRec is one uploaded part.
type partRec struct {
	TS           uint64            `json:"t"`
	VersionID    string            `json:"v"`
	ETag         string            `json:"e"`
	MD5          []byte            `json:"m"`
	Size         int64             `json:"s"`
	LastModified time.Time         `json:"lm"`
	Checksums    map[string]string `json:"c,omitempty"`
}

// uploadRec is the multipart upload table entry (pk = bucket id, sk =
// object key NUL upload id).
type uploadRec struct {
	TS     uint64          `json:"t"`
	Del    bool            `json:"d,omitempty"`
	Upload Upload          `json:"u"`
	Parts  map[int]partRec `json:"p,omitempty"`
}

type uploadSchema struct{}

func (uploadSchema) Table() db.TableID                  { return db.TableUpload }
func (uploadSchema) Encode(v uploadRec) ([]byte, error) { return json.Marshal(v) }
func (uploadSchema) IsTombstone(v uploadRec) bool       { return v.Del }
func (uploadSchema) Decode(b []byte) (uploadRec, error) {
	var v uploadRec
	err := json.Unmarshal(b, &v)
	return v, err
}
func (uploadSchema) Timestamp(v uploadRec) uint64 {
	t := v.TS
	for _, p := range v.Parts {
		t = max(t, p.TS)
	}
	return t
}
func (uploadSchema) Tombstone(old uploadRec, ts uint64) uploadRec {
	return uploadRec{TS: ts, Del: true, Upload: old.Upload}
}

// Merge: deletion wins (an aborted or completed upload never comes back);
// each part number keeps its newest upload.
func (uploadSchema) Merge(a, b uploadRec) uploadRec {
	out := uploadRec{TS: max(a.TS, b.TS), Del: a.Del || b.Del, Upload: a.Upload}
	if out.Upload.UploadID == "" {
		out.Upload = b.Upload
	}
	if len(a.Parts)+len(b.Parts) > 0 {
		out.Parts = make(map[int]partRec, len(a.Parts)+len(b.Parts))
	}
	for _, ps := range []map[int]partRec{a.Parts, b.Parts} {
		for n, p := range ps {
			cur, ok := out.Parts[n]
			if !ok || p.TS > cur.TS || (p.TS == cur.TS && p.VersionID > cur.VersionID) {
				out.Parts[n] = p
			}
		}
	}
	return out
}

// Compile-time checks that the schemas fit the table package.
var (
	_ table.Schema[lww[Bucket]]   = lwwSchema[Bucket]{}
	_ table.Schema[lww[struct{}]] = blockRefSchema{}
	_ table.Hook[lww[struct{}]]   = blockRefSchema{}
	_ table.Schema[objectRec]     = objectSchema{}
	_ table.Schema[versionRec]    = versionSchema{}
	_ table.Schema[uploadRec]     = uploadSchema{}
)

// LockByPartitionKey: reference count changes of one block must be serialized.
func (blockRefSchema) LockByPartitionKey() {}

var _ table.LockByPartitionKey = blockRefSchema{}
