package s3

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

func (h *handler) createMultipartUpload(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	hdrs, err := headersFromRequest(r.Header)
	if err != nil {
		return err
	}
	algo := ""
	if v := r.Header.Get("X-Amz-Checksum-Algorithm"); v != "" {
		if algo = normalizeAlgo(v); algo == "" {
			return apiErr(CodeInvalidRequest, "Checksum algorithm provided is unsupported.")
		}
	}
	up, err := h.be.CreateMultipartUpload(r.Context(), b.Name, rq.ep.Key, hdrs, algo)
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	if algo != "" {
		w.Header().Set("X-Amz-Checksum-Algorithm", algo)
	}
	return writeXML(w, initiateMultipartUploadResult{NS: xmlNS, Bucket: b.Name, Key: rq.ep.Key, UploadID: up.UploadID})
}

func (h *handler) uploadPart(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	bv, err := h.uploadBody(r, rq, "")
	if err != nil {
		return err
	}
	part, err := h.be.UploadPart(r.Context(), model.PartInput{
		Bucket: b.Name, Key: rq.ep.Key, UploadID: rq.ep.UploadID, PartNumber: rq.ep.PartNumber,
		Body: bv, Sums: bv.Sums,
	})
	if err != nil {
		return fmt.Errorf("upload part: %w", err)
	}
	hdr := w.Header()
	hdr.Set("ETag", quoteETag(part.ETag))
	bv.setChecksumHeader(hdr)
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) completeMultipartUpload(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	cond, err := writeConditions(r.Header)
	if err != nil {
		return err
	}
	bv, err := h.hashes.newBodyVerifier(r.Header, r.Body, rq.auth.Trailer, bodyOptions{
		expected: rq.auth.DecodedLength, limit: -1, onlyMD5: true,
	})
	if err != nil {
		return err
	}
	doc, err := decodeComplete(bv)
	if err != nil {
		return err
	}
	parts := make([]model.CompletedPart, len(doc.Parts))
	for i, p := range doc.Parts {
		parts[i] = model.CompletedPart{PartNumber: p.PartNumber, ETag: unquoteETag(p.ETag)}
	}
	algo, want, composite, err := completeChecksum(r.Header)
	if err != nil {
		return err
	}
	if composite {
		if err := h.checkCompositeChecksum(r.Context(), b.Name, rq, parts, algo, want); err != nil {
			return err
		}
	}
	meta, err := h.be.CompleteMultipartUpload(r.Context(), b.Name, rq.ep.Key, rq.ep.UploadID, parts, cond)
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	if composite && meta.Checksums[algo] != want {
		// A retried Complete answered from the object the first one made.
		return apiErr(CodeBadDigest, "The "+algo+" you specified did not match the calculated checksum.")
	}
	out := completeMultipartUploadResult{
		NS: xmlNS, Location: objectURL(r, b.Name, rq.ep.Key), Bucket: b.Name, Key: rq.ep.Key, ETag: quoteETag(meta.ETag),
	}
	out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256 = checksumFields(meta.Checksums)
	return writeXML(w, out)
}

// completeChecksum reads the object checksum a CompleteMultipartUpload
// announces in an x-amz-checksum-<algorithm> header, if any. composite is
// true for the "<base64>-<parts>" form, which is checked against the parts;
// a full-object value (one digest) is accepted unchecked as before, since
// checking it means reading the object; anything else is 400 BadDigest.
func completeChecksum(h http.Header) (algo, value string, composite bool, err error) {
	for _, a := range checksumAlgos {
		v := strings.TrimSpace(h.Get(checksumHeader(a)))
		if v == "" {
			continue
		}
		bad := apiErr(CodeBadDigest, "The "+a+" you specified did not match the calculated checksum.")
		digest, count, isComposite := strings.Cut(v, "-")
		if n, cerr := strconv.Atoi(count); isComposite && (cerr != nil || n < 1 || count[0] == '+') {
			return "", "", false, bad
		}
		if raw, derr := base64.StdEncoding.DecodeString(digest); derr != nil || len(raw) != digestLen(a) {
			return "", "", false, bad
		}
		return a, v, isComposite, nil
	}
	return "", "", false, nil
}

// checkCompositeChecksum refuses a Complete whose announced checksum is not
// the composite checksum of the listed parts (400 BadDigest, as AWS), before
// anything is written. An upload already gone is left to the Complete
// itself (a retry after success is checked against the object's checksum).
func (h *handler) checkCompositeChecksum(ctx context.Context, bucket string, rq *request, parts []model.CompletedPart, algo, want string) error {
	sums := map[int]string{}
	for marker := 0; ; {
		res, err := h.be.ListParts(ctx, model.ListPartsInput{
			Bucket: bucket, Key: rq.ep.Key, UploadID: rq.ep.UploadID, PartNumberMarker: marker, MaxParts: 1000,
		})
		if errors.Is(err, model.ErrNoSuchUpload) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("complete multipart upload: list parts: %w", err)
		}
		for _, p := range res.Parts {
			sums[p.PartNumber] = p.Checksums[algo]
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			break
		}
		marker = res.NextPartNumberMarker
	}
	list := make([]string, len(parts))
	for i, p := range parts {
		list[i] = sums[p.PartNumber]
	}
	if got, ok := model.CompositeChecksum(algo, list); !ok || got != want {
		return apiErr(CodeBadDigest, "The "+algo+" you specified did not match the calculated checksum.")
	}
	return nil
}

// objectURL is the path-style URL of an object for the Location element.
func objectURL(r *http.Request, bucket, key string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: "/" + bucket + "/" + key}
	return u.String()
}

func (h *handler) abortMultipartUpload(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	if err := h.be.AbortMultipartUpload(r.Context(), b.Name, rq.ep.Key, rq.ep.UploadID); err != nil {
		return fmt.Errorf("abort multipart upload: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) listParts(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permRead)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxParts, err := parseMaxKeys(q, "max-parts", 1000, 1000)
	if err != nil {
		return err
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			return apiErr(CodeInvalidArgument, "Provided part-number-marker not an integer or within integer range")
		}
	}
	res, err := h.be.ListParts(r.Context(), model.ListPartsInput{
		Bucket: b.Name, Key: rq.ep.Key, UploadID: rq.ep.UploadID, PartNumberMarker: marker, MaxParts: maxParts,
	})
	if err != nil {
		return fmt.Errorf("list parts: %w", err)
	}
	own := bucketOwner(b)
	out := listPartsResult{
		NS: xmlNS, Bucket: b.Name, Key: rq.ep.Key, UploadID: rq.ep.UploadID, Initiator: *own, Owner: *own,
		StorageClass: "STANDARD", PartNumberMarker: marker, NextPartNumberMarker: res.NextPartNumberMarker,
		MaxParts: maxParts, IsTruncated: res.IsTruncated, ChecksumAlgorithm: res.Upload.ChecksumAlgorithm,
	}
	out.Parts = make([]partXML, len(res.Parts))
	for i, p := range res.Parts {
		x := partXML{PartNumber: p.PartNumber, LastModified: xmlTime(p.LastModified), ETag: quoteETag(p.ETag), Size: p.Size}
		x.ChecksumCRC32, x.ChecksumCRC32C, x.ChecksumCRC64NVME, x.ChecksumSHA1, x.ChecksumSHA256 = checksumFields(p.Checksums)
		out.Parts[i] = x
	}
	return writeXML(w, out)
}

func (h *handler) listMultipartUploads(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permRead)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxUploads, err := parseMaxKeys(q, "max-uploads", 1000, 1000)
	if err != nil {
		return err
	}
	e, et, err := parseEncodingType(q)
	if err != nil {
		return err
	}
	in := model.ListUploadsInput{
		Bucket: b.Name, Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"),
		KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"), MaxUploads: maxUploads,
	}
	res, err := h.be.ListMultipartUploads(r.Context(), in)
	if err != nil {
		return fmt.Errorf("list multipart uploads: %w", err)
	}
	own := bucketOwner(b)
	out := listMultipartUploadsResult{
		NS: xmlNS, Bucket: b.Name, KeyMarker: e.enc(in.KeyMarker), UploadIDMarker: in.UploadIDMarker,
		NextKeyMarker: e.enc(res.NextKeyMarker), NextUploadIDMarker: res.NextUploadIDMarker,
		Prefix: e.enc(in.Prefix), Delimiter: e.enc(in.Delimiter), MaxUploads: maxUploads,
		IsTruncated: res.IsTruncated, EncodingType: et, CommonPrefixes: e.prefixes(res.CommonPrefixes),
	}
	out.Uploads = make([]uploadXML, len(res.Uploads))
	for i, u := range res.Uploads {
		out.Uploads[i] = uploadXML{
			Key: e.enc(u.Key), UploadID: u.UploadID, Initiator: *own, Owner: *own, StorageClass: "STANDARD",
			Initiated: xmlTime(u.Initiated), ChecksumAlgorithm: u.ChecksumAlgorithm,
		}
	}
	return writeXML(w, out)
}
