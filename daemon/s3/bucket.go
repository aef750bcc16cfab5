package s3

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

// maxBucketsLimit is the largest max-buckets ListBuckets accepts (AWS: 1..10000).
const maxBucketsLimit = 10000

// listBuckets lists the buckets the key may use, by name. max-buckets,
// continuation-token and prefix page and filter it as AWS does; without
// max-buckets every bucket is listed.
func (h *handler) listBuckets(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	limit := -1
	if v, ok := q["max-buckets"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > maxBucketsLimit {
			return apiErr(CodeInvalidArgument, "Argument max-buckets must be an integer between 1 and 10000.")
		}
		limit = n
	}
	after := ""
	if v := q.Get("continuation-token"); v != "" {
		name, err := decodeToken(v)
		if err != nil {
			return err
		}
		after = name
	}
	prefix := q.Get("prefix")
	all, err := h.be.ListBuckets(r.Context())
	if err != nil {
		return fmt.Errorf("list buckets: %w", err)
	}
	out := listAllMyBucketsResult{NS: xmlNS, Owner: owner{ID: rq.key.ID, DisplayName: rq.key.Name}, Prefix: prefix}
	out.Buckets = make([]bucketInfo, 0, len(all))
	for _, b := range all {
		p := rq.key.Perms[b.ID]
		if (!p.Read && !p.Write && !p.Owner) || b.Name <= after || !strings.HasPrefix(b.Name, prefix) {
			continue
		}
		if len(out.Buckets) == limit {
			out.ContinuationToken = encodeToken(out.Buckets[limit-1].Name)
			break
		}
		out.Buckets = append(out.Buckets, bucketInfo{Name: b.Name, CreationDate: xmlTime(b.Created), BucketRegion: h.region})
	}
	return writeXML(w, out)
}

func (h *handler) createBucket(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !rq.key.CanCreateBucket {
		// A key that may not create buckets still learns that it already owns one.
		if b, err := h.be.GetBucket(r.Context(), rq.ep.Bucket); err == nil && rq.key.Perms[b.ID].Owner {
			return h.alreadyOwned(w, rq)
		}
		return apiErr(CodeAccessDenied, "This access key is not allowed to create buckets.")
	}
	bv, err := h.hashes.newBodyVerifier(r.Header, r.Body, rq.auth.Trailer,
		bodyOptions{expected: rq.auth.DecodedLength, limit: maxCreateBucketBody, tooLarge: apiErr(CodeMaxMessageLengthExceeded, "")})
	if err != nil {
		return err
	}
	loc, err := decodeCreateBucket(bv)
	if err != nil {
		return err
	}
	if loc != "" && loc != h.region {
		return apiErr(CodeIllegalLocationConstraint, fmt.Sprintf("The %s location constraint is incompatible for the region specific endpoint this request was sent to.", loc))
	}
	if _, err := h.be.CreateBucket(r.Context(), rq.key.ID, rq.ep.Bucket); err != nil {
		if errors.Is(err, model.ErrBucketAlreadyOwnedByYou) {
			return h.alreadyOwned(w, rq)
		}
		return fmt.Errorf("create bucket %q: %w", rq.ep.Bucket, err)
	}
	return createdBucket(w, rq)
}

// legacyRegion is the region where S3 answers 200 to an owner re-creating
// its bucket (AWS CreateBucket: "for legacy compatibility ... in the North
// Virginia Region"); every other region answers 409 BucketAlreadyOwnedByYou.
const legacyRegion = "us-east-1"

// alreadyOwned answers CreateBucket of a bucket the caller owns; the bucket
// and its objects are left as they are.
func (h *handler) alreadyOwned(w http.ResponseWriter, rq *request) error {
	if h.region != legacyRegion {
		return apiErr(CodeBucketAlreadyOwnedByYou, "")
	}
	return createdBucket(w, rq)
}

func createdBucket(w http.ResponseWriter, rq *request) error {
	w.Header().Set("Location", "/"+rq.ep.Bucket)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) deleteBucket(w http.ResponseWriter, r *http.Request, rq *request) error {
	if _, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permOwner); err != nil {
		return err
	}
	if err := h.be.DeleteBucket(r.Context(), rq.ep.Bucket); err != nil {
		return fmt.Errorf("delete bucket %q: %w", rq.ep.Bucket, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) headBucket(w http.ResponseWriter, r *http.Request, rq *request) error {
	if _, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permRead); err != nil {
		return err
	}
	w.Header().Set("X-Amz-Bucket-Region", h.region)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// getBucketLocation answers the region; any permission on the bucket is
// enough because clients (minio-go) use it to discover the region.
func (h *handler) getBucketLocation(w http.ResponseWriter, r *http.Request, rq *request) error {
	if _, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permAny); err != nil {
		return err
	}
	loc := h.region
	if loc == "us-east-1" {
		loc = "" // AWS answers an empty constraint for us-east-1
	}
	return writeXML(w, locationConstraint{NS: xmlNS, Value: loc})
}

// getBucketVersioning answers that versioning was never enabled.
func (h *handler) getBucketVersioning(w http.ResponseWriter, r *http.Request, rq *request) error {
	if _, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permAny); err != nil {
		return err
	}
	return writeXML(w, versioningConfiguration{NS: xmlNS})
}
