package s3

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

const metaPrefix = "X-Amz-Meta-"

// headersFromRequest collects the standard content headers and x-amz-meta-*
// user metadata (names lower-cased) of a PUT, POST uploads or REPLACE copy.
func headersFromRequest(h http.Header) (model.Headers, error) {
	out := model.Headers{
		ContentType:        h.Get("Content-Type"),
		ContentEncoding:    stripAWSChunked(h.Get("Content-Encoding")),
		ContentDisposition: h.Get("Content-Disposition"),
		ContentLanguage:    h.Get("Content-Language"),
		CacheControl:       h.Get("Cache-Control"),
		Expires:            h.Get("Expires"),
	}
	size := 0
	for name, vals := range h {
		if len(name) <= len(metaPrefix) || !strings.EqualFold(name[:len(metaPrefix)], metaPrefix) {
			continue
		}
		if out.UserMeta == nil {
			out.UserMeta = make(map[string]string)
		}
		k := strings.ToLower(name[len(metaPrefix):])
		v := strings.Join(vals, ",")
		out.UserMeta[k] = v
		size += len(k) + len(v)
	}
	if size > maxUserMeta {
		return out, apiErr(CodeMetadataTooLarge, "")
	}
	return out, nil
}

// stripAWSChunked removes the aws-chunked transfer coding from a Content-Encoding list.
func stripAWSChunked(ce string) string {
	if !strings.Contains(strings.ToLower(ce), "aws-chunked") {
		return ce
	}
	var keep []string
	for p := range strings.SplitSeq(ce, ",") {
		if p = strings.TrimSpace(p); p != "" && !strings.EqualFold(p, "aws-chunked") {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ",")
}

// writeConditions reads If-None-Match and If-Match of a write. AWS accepts
// only "*" in If-None-Match and one ETag in If-Match; like RGW and MinIO we
// also take an ETag in If-None-Match (412 when it is the current one) and
// "*" in If-Match (404 NoSuchKey when there is no object), with their RFC 9110
// meaning, since refusing them helps no client.
func writeConditions(h http.Header) (model.WriteConditions, error) {
	var c model.WriteConditions
	if v := strings.TrimSpace(h.Get("If-None-Match")); v != "" {
		if v == "*" {
			c.IfNoneMatchStar = true
		} else if c.IfNoneMatch = unquoteETag(v); c.IfNoneMatch == "" || strings.Contains(v, ",") {
			return c, apiErr(CodeNotImplemented, "If-None-Match on a write accepts * or one ETag.")
		}
	}
	if v := strings.TrimSpace(h.Get("If-Match")); v != "" {
		if c.IfMatch = unquoteETag(v); c.IfMatch == "" || strings.Contains(v, ",") {
			return c, apiErr(CodeNotImplemented, "If-Match on a write accepts * or one ETag.")
		}
	}
	return c, nil
}

// uploadBody checks the announced size of an upload body and wraps it in the
// verifier.
func (h *handler) uploadBody(r *http.Request, rq *request, defaultAlgo string) (*bodyVerifier, error) {
	size := rq.auth.DecodedLength
	if size < 0 && r.ContentLength < 0 {
		return nil, apiErr(CodeMissingContentLength, "")
	}
	return h.hashes.newBodyVerifier(r.Header, r.Body, rq.auth.Trailer, bodyOptions{
		expected: size, limit: maxPutSize, defaultAlgo: defaultAlgo,
		tooLarge: apiErr(CodeEntityTooLarge, ""),
	})
}

func (h *handler) putObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	hdrs, err := headersFromRequest(r.Header)
	if err != nil {
		return err
	}
	cond, err := writeConditions(r.Header)
	if err != nil {
		return err
	}
	bv, err := h.uploadBody(r, rq, "")
	if err != nil {
		return err
	}
	meta, err := h.be.PutObject(r.Context(), model.PutInput{
		Bucket: b.Name, Key: rq.ep.Key, Headers: hdrs, Body: bv, Sums: bv.Sums, Cond: cond,
	})
	if err != nil {
		return fmt.Errorf("put object: %w", err)
	}
	hdr := w.Header()
	hdr.Set("ETag", quoteETag(meta.ETag))
	bv.setChecksumHeader(hdr)
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// responseOverrides are the GET query parameters that override stored headers.
var responseOverrides = [...][2]string{
	{"response-content-type", "Content-Type"},
	{"response-content-language", "Content-Language"},
	{"response-expires", "Expires"},
	{"response-cache-control", "Cache-Control"},
	{"response-content-disposition", "Content-Disposition"},
	{"response-content-encoding", "Content-Encoding"},
}

// setObjectHeaders writes the stored metadata of meta as response headers.
func setObjectHeaders(hdr http.Header, meta model.ObjectMeta, r *http.Request) {
	mh := meta.Headers
	ct := mh.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	hdr.Set("Content-Type", ct)
	set := func(k, v string) {
		if v != "" {
			hdr.Set(k, v)
		}
	}
	set("Content-Encoding", mh.ContentEncoding)
	set("Content-Disposition", mh.ContentDisposition)
	set("Content-Language", mh.ContentLanguage)
	set("Cache-Control", mh.CacheControl)
	set("Expires", mh.Expires)
	for k, v := range mh.UserMeta {
		hdr["x-amz-meta-"+k] = []string{v} // lower-case on the wire, like AWS
	}
	hdr.Set("ETag", quoteETag(meta.ETag))
	hdr.Set("Last-Modified", meta.LastModified.UTC().Format(http.TimeFormat))
	hdr.Set("Accept-Ranges", "bytes")
	if meta.PartsCount > 0 {
		hdr.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(meta.PartsCount))
	}
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		for _, o := range responseOverrides {
			if v := q.Get(o[0]); v != "" {
				hdr.Set(o[1], v)
			}
		}
	}
}

func (h *handler) getObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := r.Context()
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permRead)
	if err != nil {
		return err
	}
	meta, err := h.be.HeadObject(ctx, b.Name, rq.ep.Key)
	if err != nil {
		return fmt.Errorf("head object: %w", err)
	}
	hdr := w.Header()
	switch readConditions(r.Header).evaluate(meta.ETag, meta.LastModified) {
	case condNotModified:
		hdr.Set("ETag", quoteETag(meta.ETag))
		hdr.Set("Last-Modified", meta.LastModified.UTC().Format(http.TimeFormat))
		return apiErr(CodeNotModified, "")
	case condPreconditionFailed:
		return apiErr(CodePreconditionFailed, "")
	}
	rng, partial, err := parseRange(r.Header.Get("Range"), meta.Size)
	if err != nil {
		hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(meta.Size, 10))
		return err
	}
	offset, length, status := int64(0), meta.Size, http.StatusOK
	if partial {
		offset, length, status = rng.Start, rng.Length, http.StatusPartialContent
	}
	var rc io.ReadCloser
	if r.Method != http.MethodHead && length > 0 {
		// Open before writing any object header so a failure answers a clean error.
		if rc, err = h.be.OpenObject(ctx, meta, offset, length); err != nil {
			return fmt.Errorf("open object: %w", err)
		}
		defer rc.Close()
	}
	setObjectHeaders(hdr, meta, r)
	if partial {
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.Start, rng.Start+rng.Length-1, meta.Size))
	} else if strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		setChecksumHeaders(hdr, meta.Checksums)
	}
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if rc == nil {
		return nil
	}
	// io.Copy hands rc to the ResponseWriter's ReadFrom (sendfile for files).
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("stream object %q: %w: %w", rq.ep.Key, errResponseStarted, err)
	}
	return nil
}

// setChecksumHeaders returns the stored checksums (x-amz-checksum-mode: ENABLED).
func setChecksumHeaders(hdr http.Header, sums map[string]string) {
	for algo, v := range sums {
		name := checksumHeader(algo)
		if name == "" {
			continue
		}
		hdr.Set(name, v)
		if strings.Contains(v, "-") {
			hdr.Set("X-Amz-Checksum-Type", "COMPOSITE")
		} else {
			hdr.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
		}
	}
}

func (h *handler) deleteObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	if err := h.be.DeleteObject(r.Context(), b.Name, rq.ep.Key); err != nil && !errors.Is(err, model.ErrNoSuchKey) {
		return fmt.Errorf("delete object: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
