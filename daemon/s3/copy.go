package s3

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

// parseCopySource parses x-amz-copy-source: "[/]bucket/key[?versionId=id]",
// URL-encoded. The versionId is ignored (there is no versioning; every
// object is its current version).
func parseCopySource(s string) (bucket, key string, err error) {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i]
	}
	u, uerr := url.PathUnescape(s)
	if uerr != nil {
		return "", "", apiErr(CodeInvalidArgument, "Invalid copy source encoding.")
	}
	u = strings.TrimPrefix(u, "/")
	bucket, key, ok := strings.Cut(u, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", apiErr(CodeInvalidArgument, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	return bucket, key, nil
}

// copySource resolves and checks the copy source: Read permission, existence,
// and the x-amz-copy-source-if-* conditions (any failure is PreconditionFailed).
func (h *handler) copySource(r *http.Request, rq *request) (model.ObjectMeta, error) {
	sb, sk, err := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return model.ObjectMeta{}, err
	}
	src, err := h.bucketFor(r.Context(), rq, sb, permRead)
	if err != nil {
		return model.ObjectMeta{}, err
	}
	meta, err := h.be.HeadObject(r.Context(), src.Name, sk)
	if err != nil {
		return meta, fmt.Errorf("head copy source: %w", err)
	}
	if meta.Bucket == "" || meta.Key == "" {
		meta.Bucket, meta.Key = src.Name, sk
	}
	if copySourceConditions(r.Header).evaluate(meta.ETag, meta.LastModified) != condOK {
		return meta, apiErr(CodePreconditionFailed, "")
	}
	return meta, nil
}

func (h *handler) copyObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	dst, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	directive := strings.ToUpper(strings.TrimSpace(r.Header.Get("X-Amz-Metadata-Directive")))
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return apiErr(CodeInvalidArgument, "Unknown metadata directive.")
	}
	cond, err := writeConditions(r.Header)
	if err != nil {
		return err
	}
	src, err := h.copySource(r, rq)
	if err != nil {
		return err
	}
	if src.Bucket == dst.Name && src.Key == rq.ep.Key && directive != "REPLACE" {
		return apiErr(CodeInvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	if src.Size > maxCopySize {
		return apiErr(CodeInvalidRequest, fmt.Sprintf("The specified copy source is larger than the maximum allowable size for a copy source: %d", int64(maxCopySize)))
	}
	in := model.CopyInput{Src: src, DstBucket: dst.Name, DstKey: rq.ep.Key, Cond: cond}
	if directive == "REPLACE" {
		hdrs, err := headersFromRequest(r.Header)
		if err != nil {
			return err
		}
		in.Headers = &hdrs
	}
	meta, err := h.be.CopyObject(r.Context(), in)
	if err != nil {
		return fmt.Errorf("copy object: %w", err)
	}
	return writeXML(w, copyObjectResult{NS: xmlNS, ETag: quoteETag(meta.ETag), LastModified: xmlTime(meta.LastModified)})
}

func (h *handler) uploadPartCopy(w http.ResponseWriter, r *http.Request, rq *request) error {
	dst, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	src, err := h.copySource(r, rq)
	if err != nil {
		return err
	}
	rng := byteRange{Start: 0, Length: src.Size}
	if v := r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		if rng, err = parseCopySourceRange(v, src.Size); err != nil {
			return err
		}
	}
	if rng.Length > maxCopySize {
		return apiErr(CodeInvalidRequest, fmt.Sprintf("The specified copy range is larger than the maximum allowable size for a copy source: %d", int64(maxCopySize)))
	}
	part, err := h.be.UploadPartCopy(r.Context(), dst.Name, rq.ep.Key, rq.ep.UploadID, rq.ep.PartNumber, src, rng.Start, rng.Length)
	if err != nil {
		return fmt.Errorf("upload part copy: %w", err)
	}
	return writeXML(w, copyPartResult{NS: xmlNS, ETag: quoteETag(part.ETag), LastModified: xmlTime(part.LastModified)})
}
