package s3

import (
	"fmt"
	"net/http"
	"net/url"
)

// Operations of bucket configuration, tagging, ACL answers, browser form
// uploads and CORS preflight.
const (
	OpGetBucketWebsite                Op = "GetBucketWebsite"
	OpPutBucketWebsite                Op = "PutBucketWebsite"
	OpDeleteBucketWebsite             Op = "DeleteBucketWebsite"
	OpGetBucketCors                   Op = "GetBucketCors"
	OpPutBucketCors                   Op = "PutBucketCors"
	OpDeleteBucketCors                Op = "DeleteBucketCors"
	OpGetBucketLifecycleConfiguration Op = "GetBucketLifecycleConfiguration"
	OpPutBucketLifecycleConfiguration Op = "PutBucketLifecycleConfiguration"
	OpDeleteBucketLifecycle           Op = "DeleteBucketLifecycle"
	OpGetBucketTagging                Op = "GetBucketTagging"
	OpPutBucketTagging                Op = "PutBucketTagging"
	OpDeleteBucketTagging             Op = "DeleteBucketTagging"
	OpGetObjectTagging                Op = "GetObjectTagging"
	OpPutObjectTagging                Op = "PutObjectTagging"
	OpDeleteObjectTagging             Op = "DeleteObjectTagging"
	OpGetBucketAcl                    Op = "GetBucketAcl"
	OpPutBucketAcl                    Op = "PutBucketAcl"
	OpGetObjectAcl                    Op = "GetObjectAcl"
	OpPutObjectAcl                    Op = "PutObjectAcl"
	OpPostObject                      Op = "PostObject"
	OpOptions                         Op = "PreflightRequest"
)

// extraEndpoint routes the operations above. ok is false when the request
// is none of them (ParseEndpoint continues).
func extraEndpoint(r *http.Request, ep Endpoint, q url.Values) (Endpoint, bool, error) {
	if ep.Bucket == "" {
		return ep, false, nil
	}
	if r.Method == http.MethodOptions {
		ep.Op = OpOptions
		return ep, true, nil
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	type row struct {
		sub           string
		object        bool
		get, put, del Op
	}
	rows := [...]row{
		{"website", false, OpGetBucketWebsite, OpPutBucketWebsite, OpDeleteBucketWebsite},
		{"cors", false, OpGetBucketCors, OpPutBucketCors, OpDeleteBucketCors},
		{"lifecycle", false, OpGetBucketLifecycleConfiguration, OpPutBucketLifecycleConfiguration, OpDeleteBucketLifecycle},
		{"tagging", false, OpGetBucketTagging, OpPutBucketTagging, OpDeleteBucketTagging},
		{"tagging", true, OpGetObjectTagging, OpPutObjectTagging, OpDeleteObjectTagging},
		{"acl", false, OpGetBucketAcl, OpPutBucketAcl, ""},
		{"acl", true, OpGetObjectAcl, OpPutObjectAcl, ""},
	}
	for _, rw := range rows {
		if !has(rw.sub) || rw.object != (ep.Key != "") {
			continue
		}
		var op Op
		switch r.Method {
		case http.MethodGet:
			op = rw.get
		case http.MethodPut:
			op = rw.put
		case http.MethodDelete:
			op = rw.del
		}
		if op == "" {
			return ep, true, fmt.Errorf("%s ?%s: %w", r.Method, rw.sub, ErrMethodNotAllowed)
		}
		ep.Op = op
		return ep, true, nil
	}
	if r.Method == http.MethodPost && ep.Key == "" && !has("delete") && !has("uploads") {
		ep.Op = OpPostObject
		return ep, true, nil
	}
	return ep, false, nil
}
