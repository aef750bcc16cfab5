package s3

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

// ConfigBackend is the optional part of a Backend serving bucket
// configuration (website, CORS, lifecycle, tags), quotas, object tagging and
// SSE-C; *model.Store implements it. Without it those operations answer
// NotImplemented.
type ConfigBackend interface {
	UpdateBucketConfig(ctx context.Context, name string, fn func(*model.BucketConfig) error) (model.Bucket, error)
	BucketStats(ctx context.Context, name string) (model.BucketStats, error)
	SetObjectTags(ctx context.Context, bucket, key string, tags map[string]string) (model.ObjectMeta, error)
	PartSizes(ctx context.Context, meta model.ObjectMeta) ([]model.PartSize, error)
	GetUpload(ctx context.Context, bucket, key, uploadID string) (model.Upload, error)
}

var _ ConfigBackend = (*model.Store)(nil)

func (h *handler) cfgBackend() (ConfigBackend, error) {
	cb, ok := h.be.(ConfigBackend)
	if !ok {
		return nil, apiErr(CodeNotImplemented, "")
	}
	return cb, nil
}

func sortStrings(s []string) { sort.Strings(s) }

// requestBucket resolves a bucket, once per request for the endpoint's
// bucket (several steps of one request need it).
func (h *handler) requestBucket(ctx context.Context, rq *request, name string) (model.Bucket, error) {
	if rq.bucket != nil && rq.bucket.Name == name {
		return *rq.bucket, nil
	}
	b, err := h.be.GetBucket(ctx, name)
	if err != nil {
		return b, err
	}
	if name == rq.ep.Bucket {
		rq.bucket = &b
	}
	return b, nil
}

// storageClasses are the x-amz-storage-class values accepted (and ignored:
// entrepot has one storage class).
var storageClasses = map[string]bool{
	"STANDARD": true, "REDUCED_REDUNDANCY": true, "STANDARD_IA": true, "ONEZONE_IA": true,
	"INTELLIGENT_TIERING": true, "GLACIER": true, "DEEP_ARCHIVE": true, "OUTPOSTS": true,
	"GLACIER_IR": true, "SNOW": true, "EXPRESS_ONEZONE": true,
}

// dispatchExtra serves the operations of this file's family and the SSE-C,
// tagging and quota parts of PUT, GET, copy and multipart. done is false
// when the standard handler should serve the request.
func (h *handler) dispatchExtra(w http.ResponseWriter, r *http.Request, rq *request) (done bool, err error) {
	if sc := r.Header.Get("X-Amz-Storage-Class"); sc != "" && !storageClasses[sc] {
		return true, apiErr(CodeInvalidStorageClass, "")
	}
	if (hasSSEC(r.Header) || hasCopySourceSSEC(r.Header)) && !secureTransport(r) {
		return true, apiErr(CodeInvalidRequest, "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.")
	}
	switch rq.ep.Op {
	case OpGetBucketWebsite, OpPutBucketWebsite, OpDeleteBucketWebsite,
		OpGetBucketCors, OpPutBucketCors, OpDeleteBucketCors,
		OpGetBucketLifecycleConfiguration, OpPutBucketLifecycleConfiguration, OpDeleteBucketLifecycle,
		OpGetBucketTagging, OpPutBucketTagging, OpDeleteBucketTagging:
		return true, h.bucketConfigOp(w, r, rq)
	case OpGetObjectTagging, OpPutObjectTagging, OpDeleteObjectTagging:
		return true, h.objectTaggingOp(w, r, rq)
	case OpGetBucketAcl, OpPutBucketAcl, OpGetObjectAcl, OpPutObjectAcl:
		return true, h.aclOp(w, r, rq)
	case OpOptions:
		return true, h.preflight(w, r, rq)
	case OpPostObject:
		return true, h.postObject(w, r, rq)
	case OpPutObject:
		if err := h.checkPutQuota(r, rq); err != nil {
			return true, err
		}
		if hasSSEC(r.Header) || r.Header.Get("X-Amz-Tagging") != "" || r.Header.Get("X-Amz-Website-Redirect-Location") != "" {
			return true, h.putObjectExtra(w, r, rq)
		}
	case OpCopyObject:
		if err := h.checkCopyQuota(r, rq); err != nil {
			return true, err
		}
		if hasSSEC(r.Header) || hasCopySourceSSEC(r.Header) || r.Header.Get("X-Amz-Tagging") != "" ||
			r.Header.Get("X-Amz-Website-Redirect-Location") != "" || h.copySourceHasExtras(r) {
			return true, h.copyObjectSSEC(w, r, rq)
		}
	case OpCompleteMultipartUpload:
		if err := h.checkCompleteQuota(r, rq); err != nil {
			return true, err
		}
	case OpGetObject, OpHeadObject:
		return h.getObjectSSEC(w, r, rq)
	case OpCreateMultipartUpload:
		if hasSSEC(r.Header) || r.Header.Get("X-Amz-Tagging") != "" || r.Header.Get("X-Amz-Website-Redirect-Location") != "" {
			return true, h.createMultipartSSEC(w, r, rq)
		}
	case OpUploadPart:
		return h.uploadPartSSEC(w, r, rq)
	case OpUploadPartCopy:
		if hasSSEC(r.Header) || hasCopySourceSSEC(r.Header) || h.partCopyTouchesSSEC(r, rq) {
			return true, apiErr(CodeNotImplemented, "UploadPartCopy with SSE-C is not implemented.")
		}
	}
	return false, nil
}

// secureTransport reports whether a request's keys did not cross a network
// in clear: TLS, a TLS-terminating proxy (X-Forwarded-Proto: https), or a
// loopback connection (a proxy on the same host, local tools). AWS refuses
// SSE-C over plain HTTP; so does entrepot outside these cases.
func secureTransport(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func readConfigBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, configBodyLimit+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(data) > configBodyLimit {
		return nil, fmt.Errorf("configuration over %d bytes: %w", configBodyLimit, errBodyTooLarge)
	}
	return data, nil
}

// bucketConfigOp serves Get/Put/Delete of website, CORS, lifecycle and
// bucket tagging. They need the owner permission, as on AWS.
func (h *handler) bucketConfigOp(w http.ResponseWriter, r *http.Request, rq *request) error {
	cb, err := h.cfgBackend()
	if err != nil {
		return err
	}
	ctx := r.Context()
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permOwner)
	if err != nil {
		return err
	}
	cfg := model.BucketConfig{}
	if b.Config != nil {
		cfg = *b.Config
	}
	update := func(fn func(*model.BucketConfig) error, status int) error {
		if _, err := cb.UpdateBucketConfig(ctx, b.Name, fn); err != nil {
			return fmt.Errorf("update bucket config: %w", err)
		}
		w.WriteHeader(status)
		return nil
	}
	switch rq.ep.Op {
	case OpGetBucketWebsite:
		if cfg.Website == nil {
			return apiErr(CodeNoSuchWebsiteConfiguration, "")
		}
		return writeXML(w, websiteToXML(cfg.Website))
	case OpPutBucketWebsite:
		data, err := readConfigBody(r)
		if err != nil {
			return err
		}
		web, err := websiteFromXML(data)
		if err != nil {
			return err
		}
		return update(func(c *model.BucketConfig) error { c.Website = web; return nil }, http.StatusOK)
	case OpDeleteBucketWebsite:
		return update(func(c *model.BucketConfig) error { c.Website = nil; return nil }, http.StatusNoContent)
	case OpGetBucketCors:
		if len(cfg.CORS) == 0 {
			return apiErr(CodeNoSuchCORSConfiguration, "")
		}
		return writeXML(w, corsToXML(cfg.CORS))
	case OpPutBucketCors:
		data, err := readConfigBody(r)
		if err != nil {
			return err
		}
		rules, err := corsFromXML(data)
		if err != nil {
			return err
		}
		return update(func(c *model.BucketConfig) error { c.CORS = rules; return nil }, http.StatusOK)
	case OpDeleteBucketCors:
		return update(func(c *model.BucketConfig) error { c.CORS = nil; return nil }, http.StatusNoContent)
	case OpGetBucketLifecycleConfiguration:
		if len(cfg.Lifecycle) == 0 {
			return apiErr(CodeNoSuchLifecycleConfiguration, "")
		}
		return writeXML(w, lifecycleToXML(cfg.Lifecycle))
	case OpPutBucketLifecycleConfiguration:
		data, err := readConfigBody(r)
		if err != nil {
			return err
		}
		rules, err := lifecycleFromXML(data)
		if err != nil {
			return err
		}
		return update(func(c *model.BucketConfig) error { c.Lifecycle = rules; return nil }, http.StatusOK)
	case OpDeleteBucketLifecycle:
		return update(func(c *model.BucketConfig) error { c.Lifecycle = nil; return nil }, http.StatusNoContent)
	case OpGetBucketTagging:
		if len(cfg.Tags) == 0 {
			return apiErr(CodeNoSuchTagSet, "")
		}
		return writeXML(w, tagsToXML(cfg.Tags))
	case OpPutBucketTagging:
		data, err := readConfigBody(r)
		if err != nil {
			return err
		}
		tags, err := tagsFromXML(data, 50)
		if err != nil {
			return err
		}
		return update(func(c *model.BucketConfig) error { c.Tags = tags; return nil }, http.StatusNoContent)
	case OpDeleteBucketTagging:
		return update(func(c *model.BucketConfig) error { c.Tags = nil; return nil }, http.StatusNoContent)
	}
	return fmt.Errorf("operation %q: %w", rq.ep.Op, ErrNotImplemented)
}

func (h *handler) objectTaggingOp(w http.ResponseWriter, r *http.Request, rq *request) error {
	cb, err := h.cfgBackend()
	if err != nil {
		return err
	}
	ctx := r.Context()
	need := permWrite
	if rq.ep.Op == OpGetObjectTagging {
		need = permRead
	}
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, need)
	if err != nil {
		return err
	}
	switch rq.ep.Op {
	case OpGetObjectTagging:
		meta, err := h.be.HeadObject(ctx, b.Name, rq.ep.Key)
		if err != nil {
			return fmt.Errorf("head object: %w", err)
		}
		return writeXML(w, tagsToXML(meta.Headers.Tags))
	case OpPutObjectTagging:
		data, err := readConfigBody(r)
		if err != nil {
			return err
		}
		tags, err := tagsFromXML(data, 10)
		if err != nil {
			return err
		}
		if err := h.markExtras(ctx, b); err != nil {
			return err
		}
		if _, err := cb.SetObjectTags(ctx, b.Name, rq.ep.Key, tags); err != nil {
			return fmt.Errorf("set object tags: %w", err)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	default:
		if _, err := cb.SetObjectTags(ctx, b.Name, rq.ep.Key, nil); err != nil {
			return fmt.Errorf("delete object tags: %w", err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

var cannedACLs = map[string]bool{
	"private": true, "public-read": true, "public-read-write": true, "authenticated-read": true,
	"aws-exec-read": true, "bucket-owner-read": true, "bucket-owner-full-control": true, "log-delivery-write": true,
}

// aclOp answers ACL reads with "private, the owner has FULL_CONTROL" (the
// only access model entrepot has: per-key bucket permissions), accepts
// canned ACL writes (ignored) and refuses explicit grants.
func (h *handler) aclOp(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := r.Context()
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permAny)
	if err != nil {
		return err
	}
	if rq.ep.Key != "" {
		if _, err := h.be.HeadObject(ctx, b.Name, rq.ep.Key); err != nil {
			return fmt.Errorf("head object: %w", err)
		}
	}
	owner := b.Owner
	if owner == "" {
		owner = rq.key.ID
	}
	switch rq.ep.Op {
	case OpGetBucketAcl, OpGetObjectAcl:
		return writeXML(w, privateACL(owner))
	}
	// Canned ACLs are accepted and ignored, as on PutObject: apps such as
	// Mastodon switch objects between private and public-read, and entrepot's
	// access model (per-key bucket permissions, public reads only through the
	// website listener) cannot express them. Unknown values are refused.
	if acl := r.Header.Get("X-Amz-Acl"); acl != "" && !cannedACLs[acl] {
		return apiErr(CodeInvalidArgument, "")
	}
	for _, g := range []string{"X-Amz-Grant-Read", "X-Amz-Grant-Write", "X-Amz-Grant-Read-Acp", "X-Amz-Grant-Write-Acp", "X-Amz-Grant-Full-Control"} {
		if r.Header.Get(g) != "" {
			return apiErr(CodeNotImplemented, "ACL grants are not supported.")
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// ---- quotas ----

// quotaCacheTTL is how long a bucket's counted usage is reused; writes
// checked meanwhile are added to it as they pass (a failed write keeps
// counting until the next count).
const quotaCacheTTL = 5 * time.Second

// quotaCache keeps each quota bucket's usage, so that a PUT does not scan the
// bucket. Checks and reservations happen under one lock: concurrent writes
// through this node cannot jointly overshoot; writes through other nodes
// are seen at the next count (quotas are exact to within quotaCacheTTL of
// other nodes' writes).
type quotaCache struct {
	mu sync.Mutex
	m  map[string]*quotaUsage // bucket id
}

type quotaUsage struct {
	at             time.Time
	objects, bytes int64
}

// checkQuota checks and reserves addObjects and addBytes in bucket b.
func (h *handler) checkQuota(ctx context.Context, cb ConfigBackend, b model.Bucket, addObjects, addBytes int64) error {
	q := b.Config.Quota
	c := &h.quotas
	c.mu.Lock()
	u := c.m[b.ID]
	fresh := u != nil && time.Since(u.at) < quotaCacheTTL
	c.mu.Unlock()
	if !fresh {
		st, err := cb.BucketStats(ctx, b.Name)
		if err != nil {
			return fmt.Errorf("check quota: %w", err)
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]*quotaUsage{}
		}
		u = &quotaUsage{at: time.Now(), objects: st.Objects, bytes: st.Bytes}
		c.m[b.ID] = u
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q.MaxObjects > 0 && addObjects > 0 && u.objects+addObjects > q.MaxObjects {
		return fmt.Errorf("bucket %q has %d of %d objects: %w", b.Name, u.objects, q.MaxObjects, model.ErrQuotaExceeded)
	}
	if q.MaxSize > 0 && addBytes > 0 && u.bytes+addBytes > q.MaxSize {
		return fmt.Errorf("bucket %q has %d of %d bytes: %w", b.Name, u.bytes, q.MaxSize, model.ErrQuotaExceeded)
	}
	u.objects += addObjects
	u.bytes += addBytes
	return nil
}

// quotaBucket returns the bucket when it has a quota.
func (h *handler) quotaBucket(ctx context.Context, rq *request) (model.Bucket, ConfigBackend, bool) {
	cb, ok := h.be.(ConfigBackend)
	if !ok {
		return model.Bucket{}, nil, false
	}
	b, err := h.requestBucket(ctx, rq, rq.ep.Bucket)
	if err != nil || b.Config == nil || b.Config.Quota == (model.Quota{}) {
		return b, nil, false
	}
	return b, cb, true
}

// replaced returns how many objects and bytes a write to key replaces.
func (h *handler) replaced(ctx context.Context, bucket, key string) (int64, int64) {
	m, err := h.be.HeadObject(ctx, bucket, key)
	if err != nil {
		return 0, 0
	}
	return 1, m.Size
}

func (h *handler) checkPutQuota(r *http.Request, rq *request) error {
	ctx := r.Context()
	b, cb, ok := h.quotaBucket(ctx, rq)
	if !ok {
		return nil
	}
	size := rq.auth.DecodedLength
	if size < 0 {
		size = r.ContentLength
	}
	if size < 0 {
		size = 0
	}
	no, nb := h.replaced(ctx, b.Name, rq.ep.Key)
	return h.checkQuota(ctx, cb, b, 1-no, size-nb)
}

func (h *handler) checkCopyQuota(r *http.Request, rq *request) error {
	ctx := r.Context()
	b, cb, ok := h.quotaBucket(ctx, rq)
	if !ok {
		return nil
	}
	sb, sk, err := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	src, err := h.be.HeadObject(ctx, sb, sk)
	if err != nil {
		return nil // the copy itself answers the error
	}
	no, nb := h.replaced(ctx, b.Name, rq.ep.Key)
	return h.checkQuota(ctx, cb, b, 1-no, src.Size-nb)
}

func (h *handler) checkCompleteQuota(r *http.Request, rq *request) error {
	ctx := r.Context()
	b, cb, ok := h.quotaBucket(ctx, rq)
	if !ok {
		return nil
	}
	var size int64
	in := model.ListPartsInput{Bucket: b.Name, Key: rq.ep.Key, UploadID: rq.ep.UploadID, MaxParts: 1000}
	for range 20 {
		res, err := h.be.ListParts(ctx, in)
		if err != nil {
			return nil // the completion answers the error
		}
		for _, p := range res.Parts {
			size += p.Size
		}
		if !res.IsTruncated {
			break
		}
		in.PartNumberMarker = res.NextPartNumberMarker
	}
	no, nb := h.replaced(ctx, b.Name, rq.ep.Key)
	return h.checkQuota(ctx, cb, b, 1-no, size-nb)
}

// putObjectExtra is PutObject with SSE-C, tags or a website redirect.
func (h *handler) putObjectExtra(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := r.Context()
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	hdrs, err := headersFromRequest(r.Header)
	if err != nil {
		return err
	}
	if err := extraHeaders(r.Header, &hdrs); err != nil {
		return err
	}
	cond, err := writeConditions(r.Header)
	if err != nil {
		return err
	}
	key, err := parseSSEC(r.Header, objPrefix)
	if err != nil {
		return err
	}
	bv, err := h.uploadBody(r, rq, "")
	if err != nil {
		return err
	}
	in := model.PutInput{Bucket: b.Name, Key: rq.ep.Key, Headers: hdrs, Body: bv, Sums: bv.Sums, Cond: cond}
	if err := h.markExtras(ctx, b); err != nil {
		return err
	}
	if key != nil {
		enc, err := encryptPut(&in, bv, key)
		if err != nil {
			return err
		}
		in.Sums = func() model.Sums { s := bv.Sums(); s.MD5 = enc.sum(); return s }
	}
	meta, err := h.be.PutObject(ctx, in)
	if err != nil {
		return fmt.Errorf("put object: %w", err)
	}
	hdr := w.Header()
	hdr.Set("ETag", quoteETag(meta.ETag))
	bv.setChecksumHeader(hdr)
	if key != nil {
		setSSECResponse(hdr, key)
	}
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// extraHeaders adds the tags and website redirect of a write request.
func extraHeaders(h http.Header, out *model.Headers) error {
	tags, err := tagsFromHeader(h.Get("X-Amz-Tagging"))
	if err != nil {
		return err
	}
	out.Tags = tags
	if rd := h.Get("X-Amz-Website-Redirect-Location"); rd != "" {
		if rd[0] != '/' && !hasHTTPPrefix(rd) {
			return invalidArg("The website redirect location must have a prefix of 'http://' or 'https://' or '/'.")
		}
		out.WebsiteRedirect = rd
	}
	return nil
}

func hasHTTPPrefix(s string) bool {
	return len(s) > 7 && (s[:7] == "http://" || (len(s) > 8 && s[:8] == "https://"))
}

// setTagCount adds x-amz-tagging-count to a GET or HEAD answer.
func setTagCount(hdr http.Header, meta model.ObjectMeta) {
	if n := len(meta.Headers.Tags); n > 0 {
		hdr.Set("X-Amz-Tagging-Count", strconv.Itoa(n))
	}
	if meta.Headers.WebsiteRedirect != "" {
		hdr.Set("X-Amz-Website-Redirect-Location", meta.Headers.WebsiteRedirect)
	}
}

// copySourceHasExtras reports whether the copy source's bucket may hold
// SSE-C objects (such a copy must decrypt, never copy ciphertext as is).
func (h *handler) copySourceHasExtras(r *http.Request) bool {
	sb, _, err := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return false
	}
	b, err := h.be.GetBucket(r.Context(), sb)
	return err == nil && b.Config != nil && b.Config.ObjectExtras
}

// partCopyTouchesSSEC reports whether an UploadPartCopy would copy SSE-C
// ciphertext as is: its source is an SSE-C object or its upload is SSE-C.
func (h *handler) partCopyTouchesSSEC(r *http.Request, rq *request) bool {
	ctx := r.Context()
	if b, err := h.requestBucket(ctx, rq, rq.ep.Bucket); err == nil && b.Config != nil && b.Config.ObjectExtras {
		if cb, ok := h.be.(ConfigBackend); ok {
			if up, err := cb.GetUpload(ctx, b.Name, rq.ep.Key, rq.ep.UploadID); err == nil && up.Headers.SSEC != nil {
				return true
			}
		}
	}
	if !h.copySourceHasExtras(r) {
		return false
	}
	sb, sk, err := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return false
	}
	m, err := h.be.HeadObject(ctx, sb, sk)
	return err == nil && m.Headers.SSEC != nil
}
