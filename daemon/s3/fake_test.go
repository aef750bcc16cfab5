package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

// testStore is what the handler tests need from a backend: the S3 Backend
// plus the admin calls used to set up keys and permissions.
type testStore interface {
	Backend
	ImportKey(ctx context.Context, id, secret, name string) (model.Key, error)
	SetKeyCanCreateBucket(ctx context.Context, accessKeyID string, allow bool) error
	SetPermission(ctx context.Context, accessKeyID, bucketName string, p model.Perm) error
}

// fakeStore is a small in-memory Backend following daemon/model/contract.txt,
// used so the HTTP tests run without the real store; the same tests also run
// against *model.Store (model_test.go).
type fakeStore struct {
	mu      sync.Mutex
	now     func() time.Time
	keys    map[string]model.Key
	buckets map[string]model.Bucket
	objects map[string]map[string]fakeObject // bucket -> key
	uploads map[string]*fakeUpload
	seq     int
}

type fakeObject struct {
	meta model.ObjectMeta
	data []byte
}

type fakeUpload struct {
	up    model.Upload
	parts map[int]fakeObject
}

func newFakeStore() *fakeStore {
	return &fakeStore{now: time.Now, keys: map[string]model.Key{}, buckets: map[string]model.Bucket{},
		objects: map[string]map[string]fakeObject{}, uploads: map[string]*fakeUpload{}}
}

func (f *fakeStore) ImportKey(_ context.Context, id, secret, name string) (model.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := model.Key{ID: id, Secret: secret, Name: name, Perms: map[string]model.Perm{}}
	f.keys[id] = k
	return k, nil
}

func (f *fakeStore) SetKeyCanCreateBucket(_ context.Context, id string, allow bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.keys[id]
	k.CanCreateBucket = allow
	f.keys[id] = k
	return nil
}

func (f *fakeStore) SetPermission(_ context.Context, id, bucket string, p model.Perm) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[bucket]
	if !ok {
		return model.ErrNoSuchBucket
	}
	f.keys[id].Perms[b.ID] = p
	return nil
}

func (f *fakeStore) GetKey(_ context.Context, id string) (model.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	if !ok {
		return k, model.ErrNoSuchAccessKey
	}
	perms := make(map[string]model.Perm, len(k.Perms))
	for b, p := range k.Perms {
		perms[b] = p
	}
	k.Perms = perms
	return k, nil
}

func (f *fakeStore) CreateBucket(_ context.Context, owner, name string) (model.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(name) < 3 || len(name) > 63 || strings.ToLower(name) != name || strings.ContainsAny(name, "_ /") {
		return model.Bucket{}, model.ErrInvalidBucketName
	}
	if b, ok := f.buckets[name]; ok {
		if b.Owner == owner {
			return b, model.ErrBucketAlreadyOwnedByYou
		}
		return b, model.ErrBucketAlreadyExists
	}
	f.seq++
	b := model.Bucket{ID: fmt.Sprintf("id%04d", f.seq), Name: name, Created: f.now(), Owner: owner}
	f.buckets[name] = b
	f.objects[name] = map[string]fakeObject{}
	if k, ok := f.keys[owner]; ok {
		k.Perms[b.ID] = model.Perm{Read: true, Write: true, Owner: true}
	}
	return b, nil
}

func (f *fakeStore) DeleteBucket(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[name]; !ok {
		return model.ErrNoSuchBucket
	}
	if len(f.objects[name]) > 0 {
		return model.ErrBucketNotEmpty
	}
	delete(f.buckets, name)
	return nil
}

func (f *fakeStore) GetBucket(_ context.Context, name string) (model.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[name]
	if !ok {
		return b, model.ErrNoSuchBucket
	}
	return b, nil
}

func (f *fakeStore) ListBuckets(context.Context) ([]model.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Bucket
	for _, b := range f.buckets {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeStore) HeadObject(_ context.Context, bucket, key string) (model.ObjectMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[bucket]
	if !ok {
		return model.ObjectMeta{}, model.ErrNoSuchBucket
	}
	o, ok := objs[key]
	if !ok {
		return model.ObjectMeta{}, model.ErrNoSuchKey
	}
	return o.meta, nil
}

func (f *fakeStore) OpenObject(_ context.Context, meta model.ObjectMeta, offset, length int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[meta.Bucket][meta.Key]
	if !ok || o.meta.VersionID != meta.VersionID {
		return nil, model.ErrNoSuchKey
	}
	if length < 0 {
		length = int64(len(o.data)) - offset
	}
	return io.NopCloser(bytes.NewReader(o.data[offset : offset+length])), nil
}

func (f *fakeStore) checkCond(bucket, key string, c model.WriteConditions) error {
	o, exists := f.objects[bucket][key]
	if c.IfNoneMatchStar && exists {
		return model.ErrPreconditionFailed
	}
	if c.IfMatch != "" && !exists {
		return model.ErrNoSuchKey
	}
	if c.IfMatch != "" && c.IfMatch != "*" && o.meta.ETag != c.IfMatch {
		return model.ErrPreconditionFailed
	}
	if c.IfNoneMatch != "" && exists && o.meta.ETag == c.IfNoneMatch {
		return model.ErrPreconditionFailed
	}
	return nil
}

func (f *fakeStore) store(bucket, key string, h model.Headers, data []byte, etag string, ck map[string]string, parts int) model.ObjectMeta {
	f.seq++
	m := model.ObjectMeta{Bucket: bucket, Key: key, VersionID: fmt.Sprint(f.seq), Size: int64(len(data)), ETag: etag,
		LastModified: f.now(), Headers: h, Checksums: ck, PartsCount: parts}
	f.objects[bucket][key] = fakeObject{meta: m, data: data}
	return m
}

func (f *fakeStore) PutObject(_ context.Context, in model.PutInput) (model.ObjectMeta, error) {
	if len(in.Key) > 1024 {
		return model.ObjectMeta{}, model.ErrKeyTooLong
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return model.ObjectMeta{}, fmt.Errorf("read body: %w", err)
	}
	sums := in.Sums()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.objects[in.Bucket]; !ok {
		return model.ObjectMeta{}, model.ErrNoSuchBucket
	}
	if err := f.checkCond(in.Bucket, in.Key, in.Cond); err != nil {
		return model.ObjectMeta{}, err
	}
	return f.store(in.Bucket, in.Key, in.Headers, data, hex.EncodeToString(sums.MD5), sums.Checksums, 0), nil
}

func (f *fakeStore) CopyObject(_ context.Context, in model.CopyInput) (model.ObjectMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.objects[in.Src.Bucket][in.Src.Key]
	if !ok || src.meta.VersionID != in.Src.VersionID {
		return model.ObjectMeta{}, model.ErrNoSuchKey
	}
	if _, ok := f.objects[in.DstBucket]; !ok {
		return model.ObjectMeta{}, model.ErrNoSuchBucket
	}
	if err := f.checkCond(in.DstBucket, in.DstKey, in.Cond); err != nil {
		return model.ObjectMeta{}, err
	}
	h := src.meta.Headers
	if in.Headers != nil {
		h = *in.Headers
	}
	return f.store(in.DstBucket, in.DstKey, h, src.data, src.meta.ETag, src.meta.Checksums, src.meta.PartsCount), nil
}

func (f *fakeStore) DeleteObject(_ context.Context, bucket, key string) error {
	if len(key) > 1024 {
		return model.ErrKeyTooLong
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.objects[bucket]; !ok {
		return model.ErrNoSuchBucket
	}
	delete(f.objects[bucket], key)
	return nil
}

func (f *fakeStore) ListObjects(_ context.Context, in model.ListInput) (model.ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[in.Bucket]
	if !ok {
		return model.ListResult{}, model.ErrNoSuchBucket
	}
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var res model.ListResult
	n := 0
	last := ""
	for _, k := range keys {
		if !strings.HasPrefix(k, in.Prefix) || k <= in.Marker {
			continue
		}
		entry, isPrefix := k, false
		if in.Delimiter != "" {
			if i := strings.Index(k[len(in.Prefix):], in.Delimiter); i >= 0 {
				entry, isPrefix = k[:len(in.Prefix)+i+len(in.Delimiter)], true
				if entry == last || (in.Marker != "" && strings.HasPrefix(in.Marker, entry)) {
					continue
				}
			}
		}
		if n == in.MaxKeys {
			res.IsTruncated = true
			res.NextMarker = last
			break
		}
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, entry)
		} else {
			res.Objects = append(res.Objects, objs[k].meta)
		}
		last = entry
		n++
	}
	return res, nil
}

func (f *fakeStore) CreateMultipartUpload(_ context.Context, bucket, key string, h model.Headers, algo string) (model.Upload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.objects[bucket]; !ok {
		return model.Upload{}, model.ErrNoSuchBucket
	}
	f.seq++
	up := model.Upload{Bucket: bucket, Key: key, UploadID: fmt.Sprintf("up%06d", f.seq), Initiated: f.now(), Headers: h, ChecksumAlgorithm: algo}
	f.uploads[up.UploadID] = &fakeUpload{up: up, parts: map[int]fakeObject{}}
	return up, nil
}

func (f *fakeStore) upload(bucket, key, id string) (*fakeUpload, error) {
	u, ok := f.uploads[id]
	if !ok || u.up.Bucket != bucket || u.up.Key != key {
		return nil, model.ErrNoSuchUpload
	}
	return u, nil
}

func (f *fakeStore) UploadPart(_ context.Context, in model.PartInput) (model.PartInfo, error) {
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return model.PartInfo{}, fmt.Errorf("read part: %w", err)
	}
	sums := in.Sums()
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(in.Bucket, in.Key, in.UploadID)
	if err != nil {
		return model.PartInfo{}, err
	}
	m := model.ObjectMeta{ETag: hex.EncodeToString(sums.MD5), Size: int64(len(data)), LastModified: f.now(), Checksums: sums.Checksums}
	u.parts[in.PartNumber] = fakeObject{meta: m, data: data}
	return model.PartInfo{PartNumber: in.PartNumber, ETag: m.ETag, Size: m.Size, LastModified: m.LastModified, Checksums: m.Checksums}, nil
}

func (f *fakeStore) UploadPartCopy(_ context.Context, bucket, key, id string, pn int, src model.ObjectMeta, off, n int64) (model.PartInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(bucket, key, id)
	if err != nil {
		return model.PartInfo{}, err
	}
	so, ok := f.objects[src.Bucket][src.Key]
	if !ok {
		return model.PartInfo{}, model.ErrNoSuchKey
	}
	data := append([]byte(nil), so.data[off:off+n]...)
	sum := md5.Sum(data)
	m := model.ObjectMeta{ETag: hex.EncodeToString(sum[:]), Size: n, LastModified: f.now()}
	u.parts[pn] = fakeObject{meta: m, data: data}
	return model.PartInfo{PartNumber: pn, ETag: m.ETag, Size: n, LastModified: m.LastModified}, nil
}

func (f *fakeStore) CompleteMultipartUpload(_ context.Context, bucket, key, id string, parts []model.CompletedPart, cond model.WriteConditions) (model.ObjectMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(bucket, key, id)
	if err != nil {
		return model.ObjectMeta{}, err
	}
	for i := 1; i < len(parts); i++ {
		if parts[i].PartNumber <= parts[i-1].PartNumber {
			return model.ObjectMeta{}, model.ErrInvalidPartOrder
		}
	}
	var data, md5s []byte
	for i, p := range parts {
		got, ok := u.parts[p.PartNumber]
		if !ok || got.meta.ETag != p.ETag {
			return model.ObjectMeta{}, model.ErrInvalidPart
		}
		if i < len(parts)-1 && got.meta.Size < 5<<20 {
			return model.ObjectMeta{}, model.ErrEntityTooSmall
		}
		raw, _ := hex.DecodeString(got.meta.ETag)
		md5s = append(md5s, raw...)
		data = append(data, got.data...)
	}
	if err := f.checkCond(bucket, key, cond); err != nil {
		return model.ObjectMeta{}, err
	}
	sum := md5.Sum(md5s)
	delete(f.uploads, id)
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:]), len(parts))
	return f.store(bucket, key, u.up.Headers, data, etag, nil, len(parts)), nil
}

func (f *fakeStore) AbortMultipartUpload(_ context.Context, bucket, key, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.upload(bucket, key, id); err != nil {
		return err
	}
	delete(f.uploads, id)
	return nil
}

func (f *fakeStore) ListParts(_ context.Context, in model.ListPartsInput) (model.ListPartsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(in.Bucket, in.Key, in.UploadID)
	if err != nil {
		return model.ListPartsResult{}, err
	}
	res := model.ListPartsResult{Upload: u.up}
	var nums []int
	for n := range u.parts {
		if n > in.PartNumberMarker {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	for _, n := range nums {
		if len(res.Parts) == in.MaxParts {
			res.IsTruncated = true
			break
		}
		p := u.parts[n].meta
		res.Parts = append(res.Parts, model.PartInfo{PartNumber: n, ETag: p.ETag, Size: p.Size, LastModified: p.LastModified, Checksums: p.Checksums})
		res.NextPartNumberMarker = n
	}
	return res, nil
}

func (f *fakeStore) ListMultipartUploads(_ context.Context, in model.ListUploadsInput) (model.ListUploadsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res model.ListUploadsResult
	var ups []model.Upload
	for _, u := range f.uploads {
		if u.up.Bucket == in.Bucket && strings.HasPrefix(u.up.Key, in.Prefix) && u.up.Key > in.KeyMarker {
			ups = append(ups, u.up)
		}
	}
	sort.Slice(ups, func(i, j int) bool {
		return ups[i].Key < ups[j].Key || ups[i].Key == ups[j].Key && ups[i].UploadID < ups[j].UploadID
	})
	for _, u := range ups {
		if len(res.Uploads) == in.MaxUploads {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, u)
		res.NextKeyMarker, res.NextUploadIDMarker = u.Key, u.UploadID
	}
	return res, nil
}
