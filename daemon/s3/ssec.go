package s3

// SSE-C: server-side encryption with customer-provided keys.
//
// Scheme version 1 (model.SSECInfo.V == 1):
//
//   - The client sends a 256-bit key K with every request; it is never
//     stored. The object (or multipart upload) gets a random 32-byte salt;
//     the metadata keeps the salt, the version byte and base64 MD5(K) (as
//     AWS does, to answer a wrong key with an error).
//   - The object key is HMAC-SHA256(K, "entrepot/sse-c/v1" || salt), so two
//     objects never share a data key, and equal plaintexts (even under the
//     same K) give unrelated ciphertexts: block dedup sees no equality.
//   - The plaintext of a PUT, or of each uploaded part, is cut into 64 KiB
//     chunks (the last may be shorter; an empty body has no chunk). Each
//     chunk is stored as nonce(12 random bytes) || AES-256-GCM ciphertext ||
//     tag(16), with additional data version(1) || part number(4, 0 for a
//     single PUT) || chunk index(8), all big-endian: chunks cannot be moved
//     between positions or parts. Random nonces keep re-uploaded parts safe.
//   - Every chunk decrypts on its own, so a Range GET reads and decrypts only
//     the chunks it covers. The plaintext size follows from the stored size
//     of each part: full chunks of 65564 bytes plus a last one of n+28.
//   - The ETag of an SSE-C object is the MD5 of the stored ciphertext (like
//     AWS, it is not the MD5 of the plaintext, which would leak equality).

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

const (
	sseVersion     = 1
	sseChunk       = 64 << 10
	sseNonce       = 12
	sseTag         = 16
	sseOverhead    = sseNonce + sseTag
	sseChunkStored = sseChunk + sseOverhead
)

// ErrSSECCorrupt: stored SSE-C data does not decrypt (wrong layout or tampering).
var ErrSSECCorrupt = errors.New("sse-c data does not decrypt")

type ssecKey struct {
	raw    []byte
	md5b64 string
}

const (
	hdrSSECAlgo   = "Server-Side-Encryption-Customer-Algorithm"
	hdrSSECKey    = "Server-Side-Encryption-Customer-Key"
	hdrSSECKeyMD5 = "Server-Side-Encryption-Customer-Key-Md5"
	// Header prefixes: the object's key, the copy source's key.
	objPrefix     = "X-Amz-"
	copySrcPrefix = "X-Amz-Copy-Source-"
)

func hasSSEC(h http.Header) bool {
	return h.Get(objPrefix+hdrSSECAlgo) != "" || h.Get(objPrefix+hdrSSECKey) != "" || h.Get(objPrefix+hdrSSECKeyMD5) != ""
}

func hasCopySourceSSEC(h http.Header) bool {
	return h.Get(copySrcPrefix+hdrSSECAlgo) != "" || h.Get(copySrcPrefix+hdrSSECKey) != "" || h.Get(copySrcPrefix+hdrSSECKeyMD5) != ""
}

// parseSSEC reads the SSE-C headers (prefix objPrefix or copySrcPrefix); nil, nil
// when there are none.
func parseSSEC(h http.Header, prefix string) (*ssecKey, error) {
	algo, k, sum := h.Get(prefix+hdrSSECAlgo), h.Get(prefix+hdrSSECKey), h.Get(prefix+hdrSSECKeyMD5)
	if algo == "" && k == "" && sum == "" {
		return nil, nil
	}
	if algo != "AES256" {
		return nil, invalidArg("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
	}
	if k == "" {
		return nil, invalidArg("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.")
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(raw) != 32 {
		return nil, invalidArg("The secret key was invalid for the specified algorithm.")
	}
	if sum == "" {
		return nil, invalidArg("Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.")
	}
	d := md5.Sum(raw)
	got := base64.StdEncoding.EncodeToString(d[:])
	if got != sum {
		return nil, invalidArg("The calculated MD5 hash of the key did not match the hash that was provided.")
	}
	return &ssecKey{raw: raw, md5b64: got}, nil
}

func setSSECResponse(hdr http.Header, k *ssecKey) {
	hdr.Set(objPrefix+hdrSSECAlgo, "AES256")
	hdr.Set(objPrefix+hdrSSECKeyMD5, k.md5b64)
}

func newSSECInfo(k *ssecKey) (*model.SSECInfo, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("sse-c salt: %w", err)
	}
	return &model.SSECInfo{V: sseVersion, Salt: salt, KeyMD5: k.md5b64}, nil
}

// checkKey compares the request's key with the object's.
func checkKey(info *model.SSECInfo, k *ssecKey) error {
	switch {
	case info == nil && k == nil:
		return nil
	case info == nil:
		return apiErr(CodeInvalidRequest, "The encryption parameters are not applicable to this object.")
	case k == nil:
		return apiErr(CodeInvalidRequest, "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
	case info.V != sseVersion:
		return fmt.Errorf("sse-c scheme version %d: %w", info.V, ErrSSECCorrupt)
	case !hmac.Equal([]byte(info.KeyMD5), []byte(k.md5b64)):
		return apiErr(CodeAccessDenied, "The calculated MD5 hash of the key did not match the hash that was provided.")
	}
	return nil
}

func objectAEAD(k *ssecKey, info *model.SSECInfo) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, k.raw)
	m.Write([]byte("entrepot/sse-c/v1"))
	m.Write(info.Salt)
	blk, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("sse-c cipher: %w", err)
	}
	return cipher.NewGCM(blk)
}

func chunkAAD(part int, idx int64) []byte {
	b := make([]byte, 0, 13)
	b = append(b, sseVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(part))
	return binary.BigEndian.AppendUint64(b, uint64(idx))
}

// plainSize is the plaintext size of a part stored as stored bytes.
func plainSize(stored int64) (int64, error) {
	full, rem := stored/sseChunkStored, stored%sseChunkStored
	if rem != 0 && rem <= sseOverhead {
		return 0, fmt.Errorf("stored part of %d bytes: %w", stored, ErrSSECCorrupt)
	}
	n := full * sseChunk
	if rem > 0 {
		n += rem - sseOverhead
	}
	return n, nil
}

// listedSize is the size a listing shows: the plaintext size of an SSE-C
// object. It is exact for single-PUT objects and for multipart objects whose
// parts (but the last) hold whole 64 KiB chunks, as 5, 8 or 16 MiB parts do;
// otherwise it is 28 bytes per unaligned part too large (GET and HEAD
// compute the exact size from the part layout).
func listedSize(m model.ObjectMeta) int64 {
	if m.Headers.SSEC == nil {
		return m.Size
	}
	n, err := plainSize(m.Size)
	if err != nil {
		return m.Size
	}
	return n
}

// encryptReader turns a plaintext stream into the stored form.
// encryptPut makes in a PUT of body encrypted with k: it records the SSE-C
// headers and sets in.Body to the encrypting reader, which it returns (its
// sum is the MD5 of what is stored).
func encryptPut(in *model.PutInput, body io.Reader, k *ssecKey) (*encryptReader, error) {
	info, err := newSSECInfo(k)
	if err != nil {
		return nil, err
	}
	enc, err := newEncryptReader(body, k, info, 0)
	if err != nil {
		return nil, err
	}
	in.Headers.SSEC, in.Body = info, enc
	return enc, nil
}

type encryptReader struct {
	src  io.Reader
	aead cipher.AEAD
	part int
	idx  int64
	buf  []byte
	out  []byte
	md5  hash.Hash
	err  error
}

func newEncryptReader(src io.Reader, k *ssecKey, info *model.SSECInfo, part int) (*encryptReader, error) {
	a, err := objectAEAD(k, info)
	if err != nil {
		return nil, err
	}
	return &encryptReader{src: src, aead: a, part: part, buf: make([]byte, sseChunk), md5: md5.New()}, nil
}

func (e *encryptReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		n, err := io.ReadFull(e.src, e.buf)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		if n > 0 {
			nonce := make([]byte, sseNonce, sseChunkStored)
			if _, rerr := rand.Read(nonce); rerr != nil {
				return 0, fmt.Errorf("sse-c nonce: %w", rerr)
			}
			e.out = e.aead.Seal(nonce, nonce, e.buf[:n], chunkAAD(e.part, e.idx))
			e.idx++
			e.md5.Write(e.out)
		}
		if err != nil {
			e.err = err
		}
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// sum is the MD5 of everything produced (valid after EOF).
func (e *encryptReader) sum() []byte { return e.md5.Sum(nil) }

// opener opens a stored byte range of an object.
type opener func(ctx context.Context, offset, length int64) (io.ReadCloser, error)

// segment is the stored range of one part a plaintext range needs.
type segment struct {
	part              int
	storedOff, stored int64 // stored offset in the object and length
	firstChunk        int64
	skip, keep        int64 // plaintext bytes to drop at the start, then to keep
}

// plainLayout returns the plaintext size of each part and of the object.
func plainLayout(parts []model.PartSize) ([]int64, int64, error) {
	out := make([]int64, len(parts))
	var total int64
	for i, p := range parts {
		n, err := plainSize(p.Size)
		if err != nil {
			return nil, 0, err
		}
		out[i] = n
		total += n
	}
	return out, total, nil
}

// segments maps the plaintext range [start, start+length) to stored ranges.
func segments(parts []model.PartSize, plain []int64, start, length int64) []segment {
	var out []segment
	end := start + length
	var pOff, sOff int64
	for i, p := range parts {
		ps, pe := max(start-pOff, 0), min(end-pOff, plain[i])
		if ps < pe {
			c0, c1 := ps/sseChunk, (pe-1)/sseChunk
			so := c0 * sseChunkStored
			se := min((c1+1)*sseChunkStored, p.Size)
			out = append(out, segment{part: p.Number, storedOff: sOff + so, stored: se - so, firstChunk: c0, skip: ps - c0*sseChunk, keep: pe - ps})
		}
		pOff += plain[i]
		sOff += p.Size
	}
	return out
}

// decryptReader yields the plaintext of a list of segments.
type decryptReader struct {
	ctx     context.Context
	open    opener
	aead    cipher.AEAD
	segs    []segment
	cur     io.ReadCloser
	curPart int
	idx     int64
	left    int64 // stored bytes left in the current segment
	skip    int64
	keep    int64
	buf     []byte
	out     []byte
}

func newDecryptReader(ctx context.Context, open opener, k *ssecKey, info *model.SSECInfo, segs []segment) (*decryptReader, error) {
	a, err := objectAEAD(k, info)
	if err != nil {
		return nil, err
	}
	return &decryptReader{ctx: ctx, open: open, aead: a, segs: segs, buf: make([]byte, sseChunkStored)}, nil
}

func (d *decryptReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.cur == nil || d.left == 0 || d.keep == 0 {
			if d.cur != nil {
				d.cur.Close()
				d.cur = nil
			}
			if len(d.segs) == 0 {
				return 0, io.EOF
			}
			s := d.segs[0]
			d.segs = d.segs[1:]
			rc, err := d.open(d.ctx, s.storedOff, s.stored)
			if err != nil {
				return 0, err
			}
			d.cur, d.idx, d.left, d.skip, d.keep = rc, s.firstChunk, s.stored, s.skip, s.keep
			d.curPart = s.part
		}
		n := min(int64(sseChunkStored), d.left)
		if _, err := io.ReadFull(d.cur, d.buf[:n]); err != nil {
			return 0, fmt.Errorf("read sse-c chunk: %w", err)
		}
		d.left -= n
		if n <= sseOverhead {
			return 0, ErrSSECCorrupt
		}
		pt, err := d.aead.Open(d.buf[sseNonce:sseNonce], d.buf[:sseNonce], d.buf[sseNonce:n], chunkAAD(d.curPart, d.idx))
		if err != nil {
			return 0, fmt.Errorf("chunk %d of part %d: %w", d.idx, d.curPart, ErrSSECCorrupt)
		}
		d.idx++
		if d.skip > 0 {
			s := min(d.skip, int64(len(pt)))
			pt, d.skip = pt[s:], d.skip-s
		}
		if int64(len(pt)) > d.keep {
			pt = pt[:d.keep]
		}
		d.keep -= int64(len(pt))
		d.out = pt
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *decryptReader) Close() error {
	if d.cur != nil {
		return d.cur.Close()
	}
	return nil
}

// ---- handlers ----

// markExtras flags the bucket so reads take getObjectSSEC's path.
func (h *handler) markExtras(ctx context.Context, b model.Bucket) error {
	if b.Config != nil && b.Config.ObjectExtras {
		return nil
	}
	cb, err := h.cfgBackend()
	if err != nil {
		return err
	}
	if _, err := cb.UpdateBucketConfig(ctx, b.Name, func(c *model.BucketConfig) error { c.ObjectExtras = true; return nil }); err != nil {
		return fmt.Errorf("flag bucket: %w", err)
	}
	return nil
}

// plainMeta returns meta with Size set to the plaintext size, and the part
// layout (nil for an unencrypted object).
func (h *handler) plainMeta(ctx context.Context, meta model.ObjectMeta) (model.ObjectMeta, []model.PartSize, []int64, error) {
	if meta.Headers.SSEC == nil {
		return meta, nil, nil, nil
	}
	cb, err := h.cfgBackend()
	if err != nil {
		return meta, nil, nil, err
	}
	parts, err := cb.PartSizes(ctx, meta)
	if err != nil {
		return meta, nil, nil, err
	}
	plain, total, err := plainLayout(parts)
	if err != nil {
		return meta, nil, nil, err
	}
	meta.Size = total
	return meta, parts, plain, nil
}

// openPlain opens [offset, offset+length) of the plaintext of meta (which
// holds the stored size).
func (h *handler) openPlain(ctx context.Context, stored model.ObjectMeta, k *ssecKey, parts []model.PartSize, plain []int64, offset, length int64) (io.ReadCloser, error) {
	if stored.Headers.SSEC == nil {
		return h.be.OpenObject(ctx, stored, offset, length)
	}
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return h.be.OpenObject(ctx, stored, off, n)
	}
	return newDecryptReader(ctx, open, k, stored.Headers.SSEC, segments(parts, plain, offset, length))
}

// getObjectSSEC serves GET and HEAD when the request carries SSE-C headers
// or the bucket holds objects with SSE-C, tags or redirects; otherwise it
// leaves the request to getObject (done false).
func (h *handler) getObjectSSEC(w http.ResponseWriter, r *http.Request, rq *request) (bool, error) {
	ctx := r.Context()
	if !hasSSEC(r.Header) {
		b, err := h.requestBucket(ctx, rq, rq.ep.Bucket)
		if err != nil || b.Config == nil || !b.Config.ObjectExtras {
			return false, nil
		}
	}
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permRead)
	if err != nil {
		return true, err
	}
	k, err := parseSSEC(r.Header, objPrefix)
	if err != nil {
		return true, err
	}
	stored, err := h.be.HeadObject(ctx, b.Name, rq.ep.Key)
	if err != nil {
		return true, fmt.Errorf("head object: %w", err)
	}
	if err := checkKey(stored.Headers.SSEC, k); err != nil {
		return true, err
	}
	meta, parts, plain, err := h.plainMeta(ctx, stored)
	if err != nil {
		return true, err
	}
	hdr := w.Header()
	switch readConditions(r.Header).evaluate(meta.ETag, meta.LastModified) {
	case condNotModified:
		hdr.Set("ETag", quoteETag(meta.ETag))
		hdr.Set("Last-Modified", meta.LastModified.UTC().Format(http.TimeFormat))
		return true, apiErr(CodeNotModified, "")
	case condPreconditionFailed:
		return true, apiErr(CodePreconditionFailed, "")
	}
	rng, partial, err := parseRange(r.Header.Get("Range"), meta.Size)
	if err != nil {
		hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(meta.Size, 10))
		return true, err
	}
	offset, length, status := int64(0), meta.Size, http.StatusOK
	if partial {
		offset, length, status = rng.Start, rng.Length, http.StatusPartialContent
	}
	var rc io.ReadCloser
	if r.Method != http.MethodHead && length > 0 {
		if rc, err = h.openPlain(ctx, stored, k, parts, plain, offset, length); err != nil {
			return true, fmt.Errorf("open object: %w", err)
		}
		defer rc.Close()
	}
	setObjectHeaders(hdr, meta, r)
	setTagCount(hdr, meta)
	if k != nil {
		setSSECResponse(hdr, k)
	}
	if partial {
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.Start, rng.Start+rng.Length-1, meta.Size))
	} else if k == nil && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		setChecksumHeaders(hdr, meta.Checksums)
	}
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if rc == nil {
		return true, nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		return true, fmt.Errorf("stream object %q: %w: %w", rq.ep.Key, errResponseStarted, err)
	}
	return true, nil
}

// copyObjectSSEC copies when the source or the destination uses SSE-C: the
// data is decrypted with the source key and re-encrypted (or stored plain).
func (h *handler) copyObjectSSEC(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := r.Context()
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	srcKey, err := parseSSEC(r.Header, copySrcPrefix)
	if err != nil {
		return err
	}
	dstKey, err := parseSSEC(r.Header, objPrefix)
	if err != nil {
		return err
	}
	sb, sk, err := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	directive := strings.ToUpper(strings.TrimSpace(r.Header.Get("X-Amz-Metadata-Directive")))
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return apiErr(CodeInvalidArgument, "Unknown metadata directive.")
	}
	if sb == b.Name && sk == rq.ep.Key && directive != "REPLACE" && dstKey == nil && srcKey == nil &&
		!strings.EqualFold(r.Header.Get("X-Amz-Tagging-Directive"), "REPLACE") && r.Header.Get("X-Amz-Website-Redirect-Location") == "" {
		return apiErr(CodeInvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	if _, err := h.bucketFor(ctx, rq, sb, permRead); err != nil {
		return err
	}
	stored, err := h.be.HeadObject(ctx, sb, sk)
	if err != nil {
		return fmt.Errorf("head copy source: %w", err)
	}
	if err := checkKey(stored.Headers.SSEC, srcKey); err != nil {
		return err
	}
	meta, parts, plain, err := h.plainMeta(ctx, stored)
	if err != nil {
		return err
	}
	if meta.Size > maxCopySize {
		return apiErr(CodeInvalidRequest, "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120")
	}
	switch copySourceConditions(r.Header).evaluate(meta.ETag, meta.LastModified) {
	case condNotModified, condPreconditionFailed:
		return apiErr(CodePreconditionFailed, "")
	}
	hdrs := meta.Headers
	if strings.EqualFold(r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE") {
		if hdrs, err = headersFromRequest(r.Header); err != nil {
			return err
		}
		if err := extraHeaders(r.Header, &hdrs); err != nil {
			return err
		}
	}
	// Tags follow x-amz-tagging-directive (default COPY), whatever the metadata directive.
	hdrs.Tags = meta.Headers.Tags
	if strings.EqualFold(r.Header.Get("X-Amz-Tagging-Directive"), "REPLACE") {
		if hdrs.Tags, err = tagsFromHeader(r.Header.Get("X-Amz-Tagging")); err != nil {
			return err
		}
	}
	hdrs.SSEC = nil
	cond, err := writeConditions(r.Header)
	if err != nil {
		return err
	}
	var body io.Reader = bytes.NewReader(nil)
	if meta.Size > 0 {
		rc, err := h.openPlain(ctx, stored, srcKey, parts, plain, 0, meta.Size)
		if err != nil {
			return fmt.Errorf("open copy source: %w", err)
		}
		defer rc.Close()
		body = rc
	}
	in := model.PutInput{Bucket: b.Name, Key: rq.ep.Key, Headers: hdrs, Body: body, Cond: cond}
	pm := md5.New()
	body = io.TeeReader(body, pm)
	in.Body = body
	in.Sums = func() model.Sums { return model.Sums{MD5: pm.Sum(nil)} }
	if dstKey != nil {
		if err := h.markExtras(ctx, b); err != nil {
			return err
		}
		enc, err := encryptPut(&in, body, dstKey)
		if err != nil {
			return err
		}
		in.Sums = func() model.Sums { return model.Sums{MD5: enc.sum()} }
	} else if len(hdrs.Tags) > 0 || hdrs.WebsiteRedirect != "" {
		if err := h.markExtras(ctx, b); err != nil {
			return err
		}
	}
	out, err := h.be.PutObject(ctx, in)
	if err != nil {
		return fmt.Errorf("copy object: %w", err)
	}
	if dstKey != nil {
		setSSECResponse(w.Header(), dstKey)
	}
	return writeXML(w, copyObjectResult{NS: xmlNS, ETag: quoteETag(out.ETag), LastModified: xmlTime(out.LastModified)})
}

// createMultipartSSEC starts a multipart upload with SSE-C (the salt is
// chosen now and shared by every part), tags or a website redirect.
func (h *handler) createMultipartSSEC(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := r.Context()
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	k, err := parseSSEC(r.Header, objPrefix)
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
	if k != nil {
		if hdrs.SSEC, err = newSSECInfo(k); err != nil {
			return err
		}
	}
	algo := ""
	if v := r.Header.Get("X-Amz-Checksum-Algorithm"); v != "" {
		if algo = normalizeAlgo(v); algo == "" {
			return apiErr(CodeInvalidRequest, "Checksum algorithm provided is unsupported.")
		}
	}
	if err := h.markExtras(ctx, b); err != nil {
		return err
	}
	up, err := h.be.CreateMultipartUpload(ctx, b.Name, rq.ep.Key, hdrs, algo)
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	if k != nil {
		setSSECResponse(w.Header(), k)
	}
	if algo != "" {
		w.Header().Set("X-Amz-Checksum-Algorithm", algo)
	}
	return writeXML(w, initiateMultipartUploadResult{NS: xmlNS, Bucket: b.Name, Key: rq.ep.Key, UploadID: up.UploadID})
}

// uploadPartSSEC encrypts the parts of an SSE-C upload; other uploads go
// to uploadPart (done false). A part without the upload's key is refused.
func (h *handler) uploadPartSSEC(w http.ResponseWriter, r *http.Request, rq *request) (bool, error) {
	ctx := r.Context()
	k, err := parseSSEC(r.Header, objPrefix)
	if err != nil {
		return true, err
	}
	if k == nil {
		b, err := h.requestBucket(ctx, rq, rq.ep.Bucket)
		if err != nil || b.Config == nil || !b.Config.ObjectExtras {
			return false, nil
		}
	}
	cb, err := h.cfgBackend()
	if err != nil {
		return true, err
	}
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return true, err
	}
	up, err := cb.GetUpload(ctx, b.Name, rq.ep.Key, rq.ep.UploadID)
	if err != nil {
		return true, fmt.Errorf("get upload: %w", err)
	}
	if up.Headers.SSEC == nil && k == nil {
		return false, nil
	}
	if up.Headers.SSEC == nil {
		return true, apiErr(CodeInvalidRequest, "The multipart upload was not initiated with SSE-C.")
	}
	if err := checkKey(up.Headers.SSEC, k); err != nil {
		if k == nil {
			return true, apiErr(CodeInvalidRequest, "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.")
		}
		return true, err
	}
	bv, err := h.uploadBody(r, rq, "")
	if err != nil {
		return true, err
	}
	enc, err := newEncryptReader(bv, k, up.Headers.SSEC, rq.ep.PartNumber)
	if err != nil {
		return true, err
	}
	info, err := h.be.UploadPart(ctx, model.PartInput{
		Bucket: b.Name, Key: rq.ep.Key, UploadID: rq.ep.UploadID, PartNumber: rq.ep.PartNumber,
		Body: enc, Sums: func() model.Sums { s := bv.Sums(); s.MD5 = enc.sum(); return s },
	})
	if err != nil {
		return true, fmt.Errorf("upload part: %w", err)
	}
	hdr := w.Header()
	hdr.Set("ETag", quoteETag(info.ETag))
	setSSECResponse(hdr, k)
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return true, nil
}
