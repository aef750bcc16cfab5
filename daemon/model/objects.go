package model

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/table"
)

// HeadObject returns the live version of an object.
func (s *Store) HeadObject(ctx context.Context, bucket, key string) (ObjectMeta, error) {
	b, err := s.bucketByName(ctx, bucket)
	if err != nil {
		return ObjectMeta{}, err
	}
	if err := checkKey(key); err != nil {
		return ObjectMeta{}, err
	}
	rec, _, err := s.objects.Get(ctx, b.ID, key)
	if err != nil {
		return ObjectMeta{}, fmt.Errorf("head object: %w", err)
	}
	v, ok := rec.visible()
	if !ok {
		return ObjectMeta{}, fmt.Errorf("object %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	m := metaOf(v, bucket, key)
	m.found = &v
	return m, nil
}

func metaOf(v objVersion, bucket, key string) ObjectMeta {
	m := *v.Meta
	m.Bucket, m.Key = bucket, key
	return m
}

// dataResult is what writeData stored.
type dataResult struct {
	size     int64
	isInline bool
	inline   []byte
	blocks   []blockEntry
	pinned   []block.Hash // one pin per written block, released by release/abandon
	md5      []byte       // computed here only when the caller gives no Sums
}

func (s *Store) release(d dataResult) { s.blocks.Unpin(d.pinned...) }
func (s *Store) abandon(d dataResult) { s.blocks.Abandon(d.pinned...) }

// writeData cuts body into blocks and stores them, keeping at most two
// block buffers in use: one being filled from body while the previous one is
// hashed, compressed and written. A body of at most InlineThreshold bytes
// (when inline is allowed) is returned inline instead. On error every block
// written is abandoned.
func (s *Store) writeData(ctx context.Context, body io.Reader, part uint32, inlineOK, wantMD5 bool) (res dataResult, err error) {
	if body == nil {
		body = bytes.NewReader(nil)
	}
	var md hash.Hash
	if wantMD5 {
		md = md5.New()
		body = io.TeeReader(body, md)
	}
	defer func() {
		if err != nil {
			s.abandon(res)
			res = dataResult{}
		} else if md != nil {
			res.md5 = md.Sum(nil)
		}
	}()

	buf := s.blocks.GetBuffer()
	first := len(buf)
	if inlineOK && s.cfg.InlineThreshold >= 0 {
		first = min(s.cfg.InlineThreshold+1, len(buf))
	}
	n, rerr := io.ReadFull(body, buf[:first])
	eof := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
	if rerr != nil && !eof {
		s.blocks.PutBuffer(buf)
		return res, fmt.Errorf("read body: %w", rerr)
	}
	if eof && inlineOK && n <= s.cfg.InlineThreshold {
		res.isInline, res.inline, res.size = true, append([]byte{}, buf[:n]...), int64(n)
		s.blocks.PutBuffer(buf)
		return res, nil
	}
	if !eof && n < len(buf) {
		m, rerr := io.ReadFull(body, buf[n:])
		n += m
		eof = rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !eof {
			s.blocks.PutBuffer(buf)
			return res, fmt.Errorf("read body: %w", rerr)
		}
	}
	if eof {
		// One block (or none): write it here, no pipeline needed.
		defer s.blocks.PutBuffer(buf)
		res.size = int64(n)
		if n == 0 {
			return res, nil
		}
		h, _, err := s.blocks.Write(ctx, buf[:n])
		if err != nil {
			return res, err
		}
		res.pinned = append(res.pinned, h)
		res.blocks = append(res.blocks, blockEntry{Part: part, Off: 0, Hash: h[:], Size: int64(n)})
		return res, nil
	}

	type job struct {
		buf []byte
		off int64
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job)
	done := make(chan struct{})
	var werr error
	go func() { // the writer; owns res.blocks/res.pinned/werr until done closes
		defer close(done)
		for j := range jobs {
			if werr == nil {
				h, _, err := s.blocks.Write(wctx, j.buf)
				if err != nil {
					werr = err
					cancel()
				} else {
					res.pinned = append(res.pinned, h)
					res.blocks = append(res.blocks, blockEntry{Part: part, Off: j.off, Hash: h[:], Size: int64(len(j.buf))})
				}
			}
			s.blocks.PutBuffer(j.buf)
		}
	}()
	var off int64
	for {
		if off+int64(n) > maxObjectSize {
			rerr = fmt.Errorf("body larger than %d bytes: %w", int64(maxObjectSize), ErrEntityTooLarge)
			s.blocks.PutBuffer(buf)
			break
		}
		if n > 0 {
			select {
			case jobs <- job{buf[:n], off}:
			case <-wctx.Done():
				s.blocks.PutBuffer(buf)
			}
			off += int64(n)
		} else {
			s.blocks.PutBuffer(buf)
		}
		if eof || wctx.Err() != nil {
			rerr = nil
			break
		}
		buf = s.blocks.GetBuffer()
		n, rerr = io.ReadFull(body, buf)
		eof = rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !eof {
			s.blocks.PutBuffer(buf)
			rerr = fmt.Errorf("read body: %w", rerr)
			break
		}
	}
	close(jobs)
	<-done
	res.size = off
	switch {
	case rerr != nil:
		return res, rerr
	case werr != nil:
		return res, werr
	case ctx.Err() != nil:
		return res, ctx.Err()
	}
	return res, nil
}

// storeVersion records the blocks of version vid: block references first,
// then the version entry, both durable before the entry that makes them
// visible is written. (Lazy writes made durable by that later synced write
// would be cheaper, but goleveldb does not sync a journal file it rotates
// away from, so a power cut could then keep the object entry and lose its
// version.)
func (s *Store) storeVersion(ctx context.Context, vid, bucketID, key, uploadID string, blocks []blockEntry) error {
	ts := table.NextTS(s.now(), 0)
	seen := map[string]bool{}
	var refs []table.Entry[lww[struct{}]]
	for _, b := range blocks {
		if !seen[string(b.Hash)] {
			seen[string(b.Hash)] = true
			refs = append(refs, table.Entry[lww[struct{}]]{PK: string(b.Hash), SK: vid, Value: lww[struct{}]{TS: ts}})
		}
	}
	// The two writes are independent (neither is visible until the object
	// entry names the version), so they go out together: one round trip.
	refErr := make(chan error, 1)
	go func() {
		_, err := s.blockRefs.Insert(ctx, refs...)
		refErr <- err
	}()
	v := versionRec{TS: ts, BucketID: bucketID, Key: key, UploadID: uploadID, Blocks: blocks}
	_, verr := s.versions.Insert(ctx, table.Entry[versionRec]{PK: vid, Value: v})
	if err := <-refErr; err != nil {
		return fmt.Errorf("store block references: %w", err)
	}
	if verr != nil {
		return fmt.Errorf("store version: %w", verr)
	}
	return nil
}

// freeVersion drops a version's block references (their blocks are then
// collected GCDelay later) and marks the version deleted. The writes are
// lazy: if a crash loses them, the version is still live but unreferenced
// and RepairVersions frees it.
func (s *Store) freeVersion(ctx context.Context, vid string) error {
	v, ok, err := s.versions.Get(ctx, vid, "")
	if err != nil {
		return fmt.Errorf("free version: %w", err)
	}
	if !ok || v.Del {
		return nil
	}
	ts := table.NextTS(s.now(), v.TS)
	seen := map[string]bool{}
	var refs []table.Entry[lww[struct{}]]
	for _, b := range v.Blocks {
		if !seen[string(b.Hash)] {
			seen[string(b.Hash)] = true
			refs = append(refs, table.Entry[lww[struct{}]]{PK: string(b.Hash), SK: vid, Value: lww[struct{}]{TS: ts, Del: true}})
		}
	}
	if _, err := s.blockRefs.InsertLazy(ctx, refs...); err != nil {
		return fmt.Errorf("free version: %w", err)
	}
	if _, err := s.versions.InsertLazy(ctx, table.Entry[versionRec]{PK: vid, Value: versionSchema{}.Tombstone(v, ts)}); err != nil {
		return fmt.Errorf("free version: %w", err)
	}
	return nil
}

func checkCond(cur objectRec, c WriteConditions) error {
	v, exists := cur.visible()
	if c.IfNoneMatchStar && exists {
		return fmt.Errorf("object exists: %w", ErrPreconditionFailed)
	}
	if c.IfMatch != "" {
		if !exists {
			return fmt.Errorf("if-match on a missing object: %w", ErrNoSuchKey)
		}
		if !etagMatch(c.IfMatch, v.Meta.ETag) {
			return fmt.Errorf("etag does not match: %w", ErrPreconditionFailed)
		}
	}
	if c.IfNoneMatch != "" && exists && etagMatch(c.IfNoneMatch, v.Meta.ETag) {
		return fmt.Errorf("etag matches: %w", ErrPreconditionFailed)
	}
	return nil
}

func etagMatch(cond, etag string) bool {
	if cond == "*" {
		return true
	}
	return unquote(cond) == etag
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// commitObject makes version v of (bucketID, key) visible, checking cond
// atomically with the write, and frees the versions it supersedes. If the
// write is refused, v's own data is freed.
//
// An unconditional write does not read first, so it costs one quorum round
// trip: its timestamp comes from this node's clock (see stamp) and the write
// reports, from the replicas that acknowledged it, what the entry held. If a
// newer version was already there (another node's clock is ahead, or a write
// raced ours) the version is written again with a timestamp above it, which
// is what reading first would have given (max(now, last+1)).
func (s *Store) commitObject(ctx context.Context, bucketID, key string, v objVersion, cond WriteConditions) (ObjectMeta, error) {
	var last uint64
	if cond.any() {
		l := s.objLock(bucketID, key)
		l.Lock()
		defer l.Unlock()
		cur, _, err := s.objects.Get(ctx, bucketID, key)
		if err == nil {
			err = checkCond(cur, cond)
		}
		if err != nil {
			if !v.Inl {
				if ferr := s.freeVersion(context.WithoutCancel(ctx), v.ID); ferr != nil {
					s.log.Warn("free refused version", "err", ferr)
				}
			}
			return ObjectMeta{}, err
		}
		last = cur.maxTS()
	}
	var meta ObjectMeta
	for try := 1; ; try++ {
		v.TS = s.stamp(last)
		meta = *v.Meta
		meta.LastModified = time.UnixMilli(int64(v.TS)).UTC()
		v.Meta = &meta
		ins := objectRec{Versions: []objVersion{v}}
		ch, err := s.objects.Insert(ctx, table.Entry[objectRec]{PK: bucketID, SK: key, Value: ins})
		if err != nil {
			return ObjectMeta{}, fmt.Errorf("commit object: %w", err)
		}
		if won := hasVersion(ch[0].New, v.ID); won || try == maxCommitTries {
			// Lost even after retries: concurrent writers keep winning, and
			// ours is freed like any superseded version.
			s.freeLater(ch[0], ins)
			return meta, nil
		}
		// Something newer was there: free what our write displaced (never
		// our own version, which is written again) and go above it.
		s.freeLater(ch[0], objectRec{})
		last = ch[0].New.maxTS()
	}
}

// maxCommitTries bounds the rewrites of a version that found a newer one.
const maxCommitTries = 3

func hasVersion(o objectRec, id string) bool {
	for _, v := range o.Versions {
		if v.ID == id {
			return true
		}
	}
	return false
}

// stamp returns a timestamp for a new write: max(now, last+1, the previous
// stamp of this node + 1), so writes through one node are ordered even
// within one millisecond or if its clock steps back.
func (s *Store) stamp(last uint64) uint64 {
	for {
		prev := s.lastTS.Load()
		ts := table.NextTS(s.now(), max(last, prev))
		if s.lastTS.CompareAndSwap(prev, ts) {
			return ts
		}
	}
}

// freeLater frees the data of every version present before the insert or in
// the inserted value but absent from the merged result. A free is a read and
// two writes per version (three round trips in a cluster), so it runs after
// the request is answered, up to maxPendingFrees at once (beyond that the
// request does it itself, which slows writers down instead of piling up
// work). If a crash or Close loses it, the version is still live but
// unreferenced and RepairVersions frees it.
func (s *Store) freeLater(c table.Change[objectRec], ins objectRec) {
	ids := droppedVersions(c, ins)
	if len(ids) == 0 {
		return
	}
	free := func() {
		for _, id := range ids {
			if err := s.freeVersion(s.bg, id); err != nil && s.bg.Err() == nil {
				s.log.Warn("free superseded version", "version", id, "err", err)
			}
		}
	}
	select {
	case s.freeSlots <- struct{}{}:
	default:
		free()
		return
	}
	go func() {
		defer func() { <-s.freeSlots }()
		free()
	}()
}

// waitFrees returns once the frees running when it was called are done: it
// takes every slot (meanwhile new frees run in their request) and gives them
// back.
func (s *Store) waitFrees() {
	for range cap(s.freeSlots) {
		s.freeSlots <- struct{}{}
	}
	for range cap(s.freeSlots) {
		<-s.freeSlots
	}
}

// maxPendingFrees bounds the version frees running after their request.
const maxPendingFrees = 64

// droppedVersions lists the block-backed versions an insert dropped.
func droppedVersions(c table.Change[objectRec], ins objectRec) []string {
	keep := map[string]bool{}
	for _, v := range c.New.Versions {
		keep[v.ID] = true
	}
	var ids []string
	for _, vs := range [][]objVersion{c.Old.Versions, ins.Versions} {
		for _, v := range vs {
			if keep[v.ID] || v.Inl || v.State == stateDeleted {
				continue
			}
			keep[v.ID] = true // once
			ids = append(ids, v.ID)
		}
	}
	return ids
}

// PutObject stores an object from a stream.
func (s *Store) PutObject(ctx context.Context, in PutInput) (ObjectMeta, error) {
	b, err := s.bucketByName(ctx, in.Bucket)
	if err != nil {
		return ObjectMeta{}, err
	}
	if err := checkKey(in.Key); err != nil {
		return ObjectMeta{}, err
	}
	if in.Cond.any() {
		// Fail early, before reading the body; checked again at commit.
		cur, _, err := s.objects.Get(ctx, b.ID, in.Key)
		if err != nil {
			return ObjectMeta{}, fmt.Errorf("put object: %w", err)
		}
		if err := checkCond(cur, in.Cond); err != nil {
			return ObjectMeta{}, err
		}
	}
	d, err := s.writeData(ctx, in.Body, 0, true, in.Sums == nil)
	if err != nil {
		return ObjectMeta{}, fmt.Errorf("put object: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			s.release(d)
		} else {
			s.abandon(d) // unreferenced blocks go at once
		}
	}()
	var sums Sums
	if in.Sums != nil {
		sums = in.Sums()
	}
	if sums.MD5 == nil {
		sums.MD5 = d.md5
	}
	if sums.MD5 == nil {
		sums.MD5 = md5Of(d)
	}
	meta := ObjectMeta{
		VersionID: newID(16), Size: d.size, ETag: hex.EncodeToString(sums.MD5),
		Headers: in.Headers, Checksums: sums.Checksums,
	}
	v := objVersion{ID: meta.VersionID, State: stateComplete, Meta: &meta}
	if d.isInline {
		v.Inl, v.Inline = true, d.inline
	} else if err := s.storeVersion(ctx, v.ID, b.ID, in.Key, "", d.blocks); err != nil {
		return ObjectMeta{}, fmt.Errorf("put object: %w", err)
	} else {
		v.embed(d.blocks)
	}
	committed = true // references exist from here on: only unpin
	m, err := s.commitObject(ctx, b.ID, in.Key, v, in.Cond)
	if err != nil {
		return ObjectMeta{}, fmt.Errorf("put object: %w", err)
	}
	m.Bucket, m.Key = in.Bucket, in.Key
	return m, nil
}

// md5Of is the fallback when Sums returned no MD5: the MD5 of inline data,
// or of the block hashes (a stable, content-derived ETag).
func md5Of(d dataResult) []byte {
	if d.isInline {
		sum := md5.Sum(d.inline)
		return sum[:]
	}
	m := md5.New()
	for _, b := range d.blocks {
		m.Write(b.Hash)
	}
	return m.Sum(nil)
}

// DeleteObject deletes an object; absent objects are not an error.
func (s *Store) DeleteObject(ctx context.Context, bucket, key string) error {
	b, err := s.bucketByName(ctx, bucket)
	if err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	// Like an unconditional PUT, the delete marker is written without reading
	// first (one quorum round trip); a marker over an absent object is a
	// tombstone, purged like any other. If a newer complete version was
	// there, the marker is written again above it.
	var last uint64
	for try := 1; ; try++ {
		ins := objectRec{Versions: []objVersion{{ID: newID(16), TS: s.stamp(last), State: stateDeleted}}}
		ch, err := s.objects.Insert(ctx, table.Entry[objectRec]{PK: b.ID, SK: key, Value: ins})
		if err != nil {
			return fmt.Errorf("delete object: %w", err)
		}
		s.freeLater(ch[0], ins)
		if _, live := ch[0].New.visible(); !live || try == maxCommitTries {
			return nil
		}
		last = ch[0].New.maxTS()
	}
}

// findVersion returns version vid of an object if it is still the live one.
func (s *Store) findVersion(ctx context.Context, bucketID, key, vid string) (objVersion, error) {
	rec, _, err := s.objects.Get(ctx, bucketID, key)
	if err != nil {
		return objVersion{}, fmt.Errorf("get object: %w", err)
	}
	v, ok := rec.visible()
	if !ok || (vid != "" && v.ID != vid) {
		return objVersion{}, fmt.Errorf("object %s version %s: %w", key, vid, ErrNoSuchKey)
	}
	return v, nil
}

// liveBlocks returns the block list of a live (not deleted) version.
func (s *Store) liveBlocks(ctx context.Context, vid string) ([]blockEntry, error) {
	vr, ok, err := s.versions.Get(ctx, vid, "")
	if err != nil {
		return nil, fmt.Errorf("get version: %w", err)
	}
	if !ok || vr.Del {
		return nil, fmt.Errorf("version %s: %w", vid, ErrNoSuchKey)
	}
	return vr.Blocks, nil
}

func hashesOf(bl []blockEntry) []block.Hash {
	hs := make([]block.Hash, 0, len(bl))
	for _, b := range bl {
		h, _ := block.HashFromBytes(b.Hash)
		hs = append(hs, h)
	}
	return hs
}

// CopyObject copies an object by reference: the destination shares the
// source's blocks (their reference counts go up), no data is copied.
func (s *Store) CopyObject(ctx context.Context, in CopyInput) (ObjectMeta, error) {
	sb, err := s.bucketByName(ctx, in.Src.Bucket)
	if err != nil {
		return ObjectMeta{}, err
	}
	dst, err := s.bucketByName(ctx, in.DstBucket)
	if err != nil {
		return ObjectMeta{}, err
	}
	if err := checkKey(in.DstKey); err != nil {
		return ObjectMeta{}, err
	}
	src, err := s.findVersion(ctx, sb.ID, in.Src.Key, in.Src.VersionID)
	if err != nil {
		return ObjectMeta{}, fmt.Errorf("copy object: %w", err)
	}
	meta := *src.Meta
	meta.Bucket, meta.Key, meta.VersionID, meta.UploadID = "", "", newID(16), "" // a copy was made by no upload
	if in.Headers != nil {
		meta.Headers = *in.Headers
	}
	v := objVersion{ID: meta.VersionID, State: stateComplete, Meta: &meta}
	if src.Inl {
		v.Inl, v.Inline = true, src.Inline
	} else {
		bl := src.Blocks
		if len(bl) == 0 {
			if bl, err = s.liveBlocks(ctx, src.ID); err != nil {
				return ObjectMeta{}, fmt.Errorf("copy object: %w", err)
			}
		}
		unpin, err := s.blocks.PinExisting(hashesOf(bl)...)
		if err != nil {
			return ObjectMeta{}, fmt.Errorf("copy object: source data: %w", errors.Join(ErrNoSuchKey, err))
		}
		defer unpin()
		if err := s.storeVersion(ctx, v.ID, dst.ID, in.DstKey, "", bl); err != nil {
			return ObjectMeta{}, fmt.Errorf("copy object: %w", err)
		}
		v.embed(bl)
	}
	m, err := s.commitObject(ctx, dst.ID, in.DstKey, v, in.Cond)
	if err != nil {
		return ObjectMeta{}, fmt.Errorf("copy object: %w", err)
	}
	m.Bucket, m.Key = in.DstBucket, in.DstKey
	return m, nil
}
