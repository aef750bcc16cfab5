package model

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"sort"
	"strconv"

	"github.com/entrepot/entrepot/daemon/table"
)

func uploadSK(key, uploadID string) string { return key + "\x00" + uploadID }

// CreateMultipartUpload starts a multipart upload. Upload ids sort by
// creation time.
func (s *Store) CreateMultipartUpload(ctx context.Context, bucket, key string, h Headers, checksumAlgo string) (Upload, error) {
	b, err := s.bucketByName(ctx, bucket)
	if err != nil {
		return Upload{}, err
	}
	if err := checkKey(key); err != nil {
		return Upload{}, err
	}
	now := s.now()
	u := Upload{Bucket: bucket, Key: key, UploadID: newTimeID(now), Initiated: now.UTC().Truncate(1e6),
		Headers: h, ChecksumAlgorithm: checksumAlgo}
	rec := uploadRec{TS: table.NextTS(now, 0), Upload: u}
	if _, err := s.uploads.Insert(ctx, table.Entry[uploadRec]{PK: b.ID, SK: uploadSK(key, u.UploadID), Value: rec}); err != nil {
		return Upload{}, fmt.Errorf("create multipart upload: %w", err)
	}
	return u, nil
}

func (s *Store) getUpload(ctx context.Context, bucket, key, uploadID string) (Bucket, uploadRec, error) {
	b, err := s.bucketByName(ctx, bucket)
	if err != nil {
		return b, uploadRec{}, err
	}
	if err := checkKey(key); err != nil {
		return b, uploadRec{}, err
	}
	rec, ok, err := s.uploads.Get(ctx, b.ID, uploadSK(key, uploadID))
	if err != nil {
		return b, rec, fmt.Errorf("get upload: %w", err)
	}
	if uploadID == "" || !ok || rec.Del {
		return b, rec, fmt.Errorf("upload %q of %s: %w", uploadID, key, ErrNoSuchUpload)
	}
	rec.Upload.Bucket = bucket
	return b, rec, nil
}

// GetUpload returns an upload in progress.
func (s *Store) GetUpload(ctx context.Context, bucket, key, uploadID string) (Upload, error) {
	_, rec, err := s.getUpload(ctx, bucket, key, uploadID)
	return rec.Upload, err
}

// UploadPart stores one part; uploading a part number again replaces it.
func (s *Store) UploadPart(ctx context.Context, in PartInput) (PartInfo, error) {
	if err := checkPartNumber(in.PartNumber); err != nil {
		return PartInfo{}, err
	}
	b, _, err := s.getUpload(ctx, in.Bucket, in.Key, in.UploadID)
	if err != nil {
		return PartInfo{}, err
	}
	d, err := s.writeData(ctx, in.Body, uint32(in.PartNumber), false, in.Sums == nil)
	if err != nil {
		return PartInfo{}, fmt.Errorf("upload part: %w", err)
	}
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
	return s.addPart(ctx, b.ID, in.Key, in.UploadID, in.PartNumber, d, sums)
}

// addPart records written data as part n of an upload and releases d's pins.
func (s *Store) addPart(ctx context.Context, bucketID, key, uploadID string, n int, d dataResult, sums Sums) (PartInfo, error) {
	vid := newID(16)
	if err := s.storeVersion(ctx, vid, bucketID, key, uploadID, d.blocks); err != nil {
		s.abandon(d)
		return PartInfo{}, fmt.Errorf("upload part: %w", err)
	}
	defer s.release(d)
	sk := uploadSK(key, uploadID)
	cur, _, err := s.uploads.Get(ctx, bucketID, sk)
	if err != nil {
		return PartInfo{}, fmt.Errorf("upload part: %w", err)
	}
	now := s.now()
	p := partRec{TS: table.NextTS(now, cur.Parts[n].TS), VersionID: vid, ETag: hex.EncodeToString(sums.MD5),
		MD5: sums.MD5, Size: d.size, LastModified: now.UTC().Truncate(1e6), Checksums: sums.Checksums}
	ch, err := s.uploads.Insert(ctx, table.Entry[uploadRec]{PK: bucketID, SK: sk, Value: uploadRec{Parts: map[int]partRec{n: p}}})
	if err != nil {
		return PartInfo{}, fmt.Errorf("upload part: %w", err)
	}
	c := ch[0]
	bg := context.WithoutCancel(ctx)
	if old, ok := c.Old.Parts[n]; ok && old.VersionID != c.New.Parts[n].VersionID && !c.Old.Del {
		if err := s.freeVersion(bg, old.VersionID); err != nil {
			s.log.Warn("free replaced part", "err", err)
		}
	}
	if c.New.Del || c.New.Parts[n].VersionID != vid {
		if err := s.freeVersion(bg, vid); err != nil {
			s.log.Warn("free refused part", "err", err)
		}
		if c.New.Del {
			return PartInfo{}, fmt.Errorf("upload %s: %w", uploadID, ErrNoSuchUpload)
		}
	}
	return PartInfo{PartNumber: n, ETag: p.ETag, Size: p.Size, LastModified: p.LastModified, Checksums: p.Checksums}, nil
}

// UploadPartCopy stores part partNumber from a range of an existing object
// (length -1 = to its end).
func (s *Store) UploadPartCopy(ctx context.Context, bucket, key, uploadID string, partNumber int, src ObjectMeta, offset, length int64) (PartInfo, error) {
	if err := checkPartNumber(partNumber); err != nil {
		return PartInfo{}, err
	}
	b, _, err := s.getUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return PartInfo{}, err
	}
	r, err := s.OpenObject(ctx, src, offset, length)
	if err != nil {
		return PartInfo{}, fmt.Errorf("upload part copy: %w", err)
	}
	defer r.Close()
	// Block-aligned ranges dedup to the source's blocks; others are rewritten.
	d, err := s.writeData(ctx, r, uint32(partNumber), false, true)
	if err != nil {
		return PartInfo{}, fmt.Errorf("upload part copy: %w", err)
	}
	return s.addPart(ctx, b.ID, key, uploadID, partNumber, d, Sums{MD5: d.md5})
}

// CompleteMultipartUpload assembles the listed parts into the object. The
// parts' blocks become the object's blocks: no data is copied.
func (s *Store) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart, cond WriteConditions) (ObjectMeta, error) {
	if len(parts) == 0 || len(parts) > maxParts {
		return ObjectMeta{}, fmt.Errorf("complete upload: %d parts: %w", len(parts), ErrInvalidArgument)
	}
	for i, p := range parts {
		if err := checkPartNumber(p.PartNumber); err != nil {
			return ObjectMeta{}, fmt.Errorf("complete upload: %w", errors.Join(ErrInvalidPart, err))
		}
		if i > 0 && p.PartNumber <= parts[i-1].PartNumber {
			return ObjectMeta{}, fmt.Errorf("complete upload: part %d after %d: %w", p.PartNumber, parts[i-1].PartNumber, ErrInvalidPartOrder)
		}
	}
	b, rec, err := s.getUpload(ctx, bucket, key, uploadID)
	if errors.Is(err, ErrNoSuchUpload) {
		if m, ok := s.completedBefore(ctx, bucket, key, uploadID, parts); ok {
			return m, nil
		}
	}
	if err != nil {
		return ObjectMeta{}, err
	}
	var (
		blocks []blockEntry
		size   int64
		md     = md5.New()
	)
	for i, cp := range parts {
		p, ok := rec.Parts[cp.PartNumber]
		if !ok || unquote(cp.ETag) != p.ETag {
			return ObjectMeta{}, fmt.Errorf("complete upload: part %d: %w", cp.PartNumber, ErrInvalidPart)
		}
		if p.Size < minPartSize && i < len(parts)-1 {
			return ObjectMeta{}, fmt.Errorf("complete upload: part %d has %d bytes: %w", cp.PartNumber, p.Size, ErrEntityTooSmall)
		}
		bl, err := s.liveBlocks(ctx, p.VersionID)
		if err != nil {
			return ObjectMeta{}, fmt.Errorf("complete upload: part %d: %w", cp.PartNumber, errors.Join(ErrInvalidPart, err))
		}
		for _, e := range bl {
			e.Part = uint32(cp.PartNumber)
			blocks = append(blocks, e)
		}
		size += p.Size
		md.Write(p.MD5)
	}
	unpin, err := s.blocks.PinExisting(hashesOf(blocks)...)
	if err != nil {
		return ObjectMeta{}, fmt.Errorf("complete upload: %w", errors.Join(ErrInvalidPart, err))
	}
	defer unpin()
	meta := ObjectMeta{
		VersionID: newID(16), Size: size,
		ETag:       hex.EncodeToString(md.Sum(nil)) + "-" + strconv.Itoa(len(parts)),
		Headers:    rec.Upload.Headers,
		PartsCount: len(parts),
		UploadID:   uploadID,
	}
	if algo := rec.Upload.ChecksumAlgorithm; algo != "" {
		sums := make([]string, len(parts))
		for i, cp := range parts {
			sums[i] = rec.Parts[cp.PartNumber].Checksums[algo]
		}
		if c, ok := CompositeChecksum(algo, sums); ok {
			meta.Checksums = map[string]string{algo: c}
		}
	}
	v := objVersion{ID: meta.VersionID, State: stateComplete, Meta: &meta}
	if err := s.storeVersion(ctx, v.ID, b.ID, key, "", blocks); err != nil {
		return ObjectMeta{}, fmt.Errorf("complete upload: %w", err)
	}
	v.embed(blocks)
	m, err := s.commitObject(ctx, b.ID, key, v, cond)
	if err != nil {
		return ObjectMeta{}, fmt.Errorf("complete upload: %w", err)
	}
	if err := s.abortUpload(context.WithoutCancel(ctx), b.ID, uploadSK(key, uploadID)); err != nil {
		s.log.Warn("drop completed upload", "upload", uploadID, "err", err)
	}
	m.Bucket, m.Key = bucket, key
	return m, nil
}

// completedBefore answers a CompleteMultipartUpload retried after it
// succeeded (SDKs retry Complete when the first answer is lost): the current
// object was made by this upload from these parts (the multipart ETag hashes
// the parts' MD5s). The answer is the object as the first Complete made it.
func (s *Store) completedBefore(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart) (ObjectMeta, bool) {
	etag, ok := multipartETag(parts)
	if !ok || uploadID == "" {
		return ObjectMeta{}, false
	}
	b, err := s.bucketByName(ctx, bucket)
	if err != nil {
		return ObjectMeta{}, false
	}
	cur, _, err := s.objects.Get(ctx, b.ID, key)
	if err != nil {
		return ObjectMeta{}, false
	}
	v, exists := cur.visible()
	if !exists || v.Meta.UploadID != uploadID || v.Meta.ETag != etag || v.Meta.PartsCount != len(parts) {
		return ObjectMeta{}, false
	}
	return metaOf(v, bucket, key), true
}

// multipartETag is the ETag of the object a Complete with these parts makes.
func multipartETag(parts []CompletedPart) (string, bool) {
	md := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(unquote(p.ETag))
		if err != nil || len(sum) != md5.Size {
			return "", false
		}
		md.Write(sum)
	}
	return hex.EncodeToString(md.Sum(nil)) + "-" + strconv.Itoa(len(parts)), true
}

// CompositeChecksum is the checksum S3 gives a multipart object uploaded
// with a checksum algorithm (COMPOSITE type): the algorithm applied to the
// concatenated raw part checksums, base64, then "-" and the part count.
// partSums are the parts' base64 checksums in order; ok is false when one is
// missing or malformed, or the algorithm has no composite form (CRC64NVME
// is full-object only).
func CompositeChecksum(algo string, partSums []string) (string, bool) {
	var h hash.Hash
	switch algo {
	case "CRC32":
		h = crc32.NewIEEE()
	case "CRC32C":
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "SHA1":
		h = sha1.New()
	case "SHA256":
		h = sha256.New()
	default:
		return "", false
	}
	if len(partSums) == 0 {
		return "", false
	}
	for _, ps := range partSums {
		raw, err := base64.StdEncoding.DecodeString(ps)
		if ps == "" || err != nil {
			return "", false
		}
		h.Write(raw)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(partSums)), true
}

// abortUpload marks an upload deleted and frees its parts' versions.
func (s *Store) abortUpload(ctx context.Context, bucketID, sk string) error {
	cur, _, err := s.uploads.Get(ctx, bucketID, sk)
	if err != nil {
		return err
	}
	del := uploadRec{TS: table.NextTS(s.now(), uploadSchema{}.Timestamp(cur)), Del: true}
	ch, err := s.uploads.Insert(ctx, table.Entry[uploadRec]{PK: bucketID, SK: sk, Value: del})
	if err != nil {
		return err
	}
	for _, p := range ch[0].New.Parts {
		if err := s.freeVersion(ctx, p.VersionID); err != nil {
			return err
		}
	}
	return nil
}

// AbortMultipartUpload cancels an upload and frees its parts.
func (s *Store) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	b, _, err := s.getUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return err
	}
	if err := s.abortUpload(ctx, b.ID, uploadSK(key, uploadID)); err != nil {
		return fmt.Errorf("abort upload: %w", err)
	}
	return nil
}

// ListParts lists an upload's parts after PartNumberMarker, at most MaxParts
// (default and maximum 1000).
func (s *Store) ListParts(ctx context.Context, in ListPartsInput) (ListPartsResult, error) {
	_, rec, err := s.getUpload(ctx, in.Bucket, in.Key, in.UploadID)
	if err != nil {
		return ListPartsResult{}, err
	}
	limit := in.MaxParts
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	nums := make([]int, 0, len(rec.Parts))
	for n := range rec.Parts {
		if n > in.PartNumberMarker {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	res := ListPartsResult{Upload: rec.Upload, Parts: []PartInfo{}}
	for _, n := range nums {
		if len(res.Parts) == limit {
			res.IsTruncated = true
			break
		}
		p := rec.Parts[n]
		res.Parts = append(res.Parts, PartInfo{PartNumber: n, ETag: p.ETag, Size: p.Size, LastModified: p.LastModified, Checksums: p.Checksums})
		res.NextPartNumberMarker = n
	}
	return res, nil
}
