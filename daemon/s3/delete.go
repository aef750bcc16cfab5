package s3

import (
	"errors"
	"net/http"
	"sync"

	"github.com/entrepot/entrepot/daemon/model"
)

// deleteParallelism bounds the concurrent deletes of one DeleteObjects.
const deleteParallelism = 8

// deleteObjects is the multi-object delete. AWS requires Content-MD5 or a
// checksum (x-amz-checksum-* / x-amz-sdk-checksum-algorithm) on it; a signed
// payload hash is accepted too, as it protects the body as well. A request
// with none of them is InvalidRequest.
func (h *handler) deleteObjects(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	bv, err := h.hashes.newBodyVerifier(r.Header, r.Body, rq.auth.Trailer, bodyOptions{
		expected: rq.auth.DecodedLength, limit: maxDeleteBody, tooLarge: apiErr(CodeMaxMessageLengthExceeded, ""),
	})
	if err != nil {
		return err
	}
	if !bv.hasIntegrity(r.Header) {
		return apiErr(CodeInvalidRequest, "Missing required header for this request: Content-MD5")
	}
	doc, err := decodeDelete(bv)
	if err != nil {
		return err
	}
	// Deletes run with bounded parallelism (each one is a synced metadata
	// write); answers keep the request's order.
	errs := make([]error, len(doc.Objects))
	var wg sync.WaitGroup
	sem := make(chan struct{}, deleteParallelism)
	for i, o := range doc.Objects {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = h.be.DeleteObject(r.Context(), b.Name, o.Key)
		}()
	}
	wg.Wait()
	out := deleteResult{NS: xmlNS}
	for i, o := range doc.Objects {
		if err := errs[i]; err != nil && !errors.Is(err, model.ErrNoSuchKey) {
			ae := toAPIError(err, false)
			if ae.Code == CodeInternalError {
				h.log.Error("s3 delete objects", "request_id", rq.id, "err", err)
			}
			out.Errors = append(out.Errors, deleteErrorXML{Key: o.Key, Code: string(ae.Code), Message: ae.message()})
			continue
		}
		if !doc.Quiet {
			out.Deleted = append(out.Deleted, deletedXML{Key: o.Key})
		}
	}
	return writeXML(w, out)
}
