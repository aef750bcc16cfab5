package s3

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/entrepot/entrepot/daemon/model"
)

const defaultMaxKeys = 1000

// tokenVersion prefixes continuation tokens so their format can change.
const tokenVersion = 1

// encodeToken makes an opaque ListObjectsV2 continuation token from a marker.
func encodeToken(marker string) string {
	b := make([]byte, 0, 1+len(marker))
	b = append(b, tokenVersion)
	b = append(b, marker...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken reverses encodeToken; anything else is InvalidArgument.
func decodeToken(tok string) (string, error) {
	bad := apiErr(CodeInvalidArgument, "The continuation token provided is incorrect")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(tok, "="))
	if err != nil || len(raw) < 1 || raw[0] != tokenVersion || len(raw) > 1+4096 || !utf8.Valid(raw[1:]) {
		return "", bad
	}
	return string(raw[1:]), nil
}

// parseMaxKeys parses a max-keys style parameter: absent = def, > limit = limit.
func parseMaxKeys(q url.Values, name string, def, limit int) (int, error) {
	v, ok := q[name]
	if !ok || v[0] == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 0 {
		return 0, apiErr(CodeInvalidArgument, fmt.Sprintf("Provided %s not an integer or within integer range", name))
	}
	return min(n, limit), nil
}

// urlEncoder applies encoding-type=url to response strings.
type urlEncoder bool

func parseEncodingType(q url.Values) (urlEncoder, string, error) {
	switch v := q.Get("encoding-type"); v {
	case "":
		return false, "", nil
	case "url":
		return true, "url", nil
	default:
		return false, "", apiErr(CodeInvalidArgument, "Invalid Encoding Method specified in Request")
	}
}

// enc percent-encodes s like S3's encoding-type=url: everything but
// unreserved characters and '/'. Clients decode with url.QueryUnescape.
func (e urlEncoder) enc(s string) string {
	if !e {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		const hexd = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

func (e urlEncoder) prefixes(ps []string) []commonPrefix {
	out := make([]commonPrefix, len(ps))
	for i, p := range ps {
		out[i] = commonPrefix{Prefix: e.enc(p)}
	}
	return out
}

func (e urlEncoder) objects(objs []model.ObjectMeta, own *owner) []listObject {
	out := make([]listObject, len(objs))
	for i, o := range objs {
		out[i] = listObject{
			Key: e.enc(o.Key), LastModified: xmlTime(o.LastModified), ETag: quoteETag(o.ETag),
			Size: listedSize(o), Owner: own, StorageClass: "STANDARD", // listedSize: ssec.go
		}
		for _, a := range checksumAlgos {
			if _, ok := o.Checksums[a]; ok {
				out[i].ChecksumAlgorithm = a
				break
			}
		}
	}
	return out
}

func bucketOwner(b model.Bucket) *owner {
	id := b.Owner
	if id == "" {
		id = "entrepot"
	}
	return &owner{ID: id, DisplayName: id}
}

// listPage lists one page. With max-keys=0 the answer is empty and not
// truncated, as AWS answers: a page that can hold nothing has no next page
// to ask for (a v1 client following IsTruncated would loop forever).
func (h *handler) listPage(r *http.Request, in model.ListInput) (model.ListResult, error) {
	if in.MaxKeys == 0 { // the bucket exists: the caller's bucketFor checked it
		return model.ListResult{}, nil
	}
	res, err := h.be.ListObjects(r.Context(), in)
	if err != nil {
		return res, fmt.Errorf("list objects: %w", err)
	}
	return res, nil
}

func (h *handler) listObjects(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permRead)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxKeys, err := parseMaxKeys(q, "max-keys", defaultMaxKeys, defaultMaxKeys)
	if err != nil {
		return err
	}
	e, et, err := parseEncodingType(q)
	if err != nil {
		return err
	}
	in := model.ListInput{Bucket: b.Name, Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), Marker: q.Get("marker"), MaxKeys: maxKeys}
	res, err := h.listPage(r, in)
	if err != nil {
		return err
	}
	out := listBucketResult{
		NS: xmlNS, Name: b.Name, Prefix: e.enc(in.Prefix), Marker: e.enc(in.Marker), MaxKeys: maxKeys,
		Delimiter: e.enc(in.Delimiter), IsTruncated: res.IsTruncated, EncodingType: et,
		Contents: e.objects(res.Objects, bucketOwner(b)), CommonPrefixes: e.prefixes(res.CommonPrefixes),
	}
	if res.IsTruncated && in.Delimiter != "" {
		out.NextMarker = e.enc(res.NextMarker)
	}
	return writeXML(w, out)
}

func (h *handler) listObjectsV2(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.bucketFor(r.Context(), rq, rq.ep.Bucket, permRead)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxKeys, err := parseMaxKeys(q, "max-keys", defaultMaxKeys, defaultMaxKeys)
	if err != nil {
		return err
	}
	e, et, err := parseEncodingType(q)
	if err != nil {
		return err
	}
	startAfter := q.Get("start-after")
	marker := startAfter
	token, hasToken := q["continuation-token"]
	if hasToken && token[0] != "" { // an empty token is no token (it is still echoed)
		m, err := decodeToken(token[0])
		if err != nil {
			return err
		}
		marker = max(marker, m)
	}
	in := model.ListInput{Bucket: b.Name, Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), Marker: marker, MaxKeys: maxKeys}
	res, err := h.listPage(r, in)
	if err != nil {
		return err
	}
	var own *owner
	if q.Get("fetch-owner") == "true" {
		own = bucketOwner(b)
	}
	out := listBucketResultV2{
		NS: xmlNS, Name: b.Name, Prefix: e.enc(in.Prefix), StartAfter: e.enc(startAfter), MaxKeys: maxKeys,
		Delimiter: e.enc(in.Delimiter), IsTruncated: res.IsTruncated, EncodingType: et,
		KeyCount: len(res.Objects) + len(res.CommonPrefixes),
		Contents: e.objects(res.Objects, own), CommonPrefixes: e.prefixes(res.CommonPrefixes),
	}
	if hasToken {
		out.ContinuationToken = &token[0]
	}
	if res.IsTruncated {
		out.NextContinuationToken = encodeToken(res.NextMarker)
	}
	return writeXML(w, out)
}
