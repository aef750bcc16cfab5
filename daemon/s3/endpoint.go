package s3

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Op names one S3 operation. Values are the AWS API action names and are used
// as metric labels and in logs.
type Op string

// Operations the router recognises.
const (
	OpListBuckets             Op = "ListBuckets"
	OpCreateBucket            Op = "CreateBucket"
	OpDeleteBucket            Op = "DeleteBucket"
	OpHeadBucket              Op = "HeadBucket"
	OpGetBucketLocation       Op = "GetBucketLocation"
	OpGetBucketVersioning     Op = "GetBucketVersioning"
	OpListObjects             Op = "ListObjects"
	OpListObjectsV2           Op = "ListObjectsV2"
	OpListMultipartUploads    Op = "ListMultipartUploads"
	OpDeleteObjects           Op = "DeleteObjects"
	OpPutObject               Op = "PutObject"
	OpCopyObject              Op = "CopyObject"
	OpGetObject               Op = "GetObject"
	OpHeadObject              Op = "HeadObject"
	OpDeleteObject            Op = "DeleteObject"
	OpCreateMultipartUpload   Op = "CreateMultipartUpload"
	OpUploadPart              Op = "UploadPart"
	OpUploadPartCopy          Op = "UploadPartCopy"
	OpCompleteMultipartUpload Op = "CompleteMultipartUpload"
	OpAbortMultipartUpload    Op = "AbortMultipartUpload"
	OpListParts               Op = "ListParts"
	// OpUnknown is used for metrics and logs when routing failed.
	OpUnknown Op = "Unknown"
)

// Endpoint is the result of routing one request.
type Endpoint struct {
	Op     Op
	Bucket string // "" only for ListBuckets
	Key    string // decoded object key; "" for service and bucket operations
	// UploadID is the uploadId query parameter of multipart operations.
	UploadID string
	// PartNumber is the partNumber query parameter (UploadPart, UploadPartCopy,
	// GetObject/HeadObject with ?partNumber); 0 when absent.
	PartNumber int
	// VirtualHost is true when the bucket came from the Host header.
	VirtualHost bool
}

// Router errors; toAPIError maps them to S3 codes.
var (
	// ErrNotImplemented: a subresource or form of request this server does not implement (501).
	ErrNotImplemented = errors.New("not implemented")
	// ErrMethodNotAllowed: the method is not valid for the resource (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrInvalidPartNumber: partNumber is not an integer in 1..10000.
	ErrInvalidPartNumber = errors.New("part number must be an integer between 1 and 10000, inclusive")
	// ErrInvalidURI: the path cannot be parsed.
	ErrInvalidURI = errors.New("invalid URI")
)

// unsupportedSubresources are query parameters that select an S3 feature this
// server does not implement; their presence answers 501 NotImplemented rather
// than silently performing a different operation.
var unsupportedSubresources = [...]string{
	"accelerate", "analytics", "attributes", "encryption",
	"intelligent-tiering", "inventory", "legal-hold", "logging",
	"metadataTable", "metrics", "notification", "object-lock", "ownershipControls",
	"policy", "policyStatus", "publicAccessBlock", "renameObject", "replication",
	"requestPayment", "restore", "retention", "select", "session",
	"torrent", "versions",
}

// maxPartNumber is the highest part number S3 accepts.
const maxPartNumber = 10000

// ParseEndpoint routes r. It is pure: it looks only at the method, Host,
// URL path and query, and the x-amz-copy-source header (which turns a PUT
// into a copy). rootDomain enables virtual-host style addressing
// ("<bucket>.<rootDomain>"); "" means path style only.
func ParseEndpoint(r *http.Request, rootDomain string) (Endpoint, error) {
	var ep Endpoint
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	if path[0] != '/' {
		return ep, fmt.Errorf("parse path %q: %w", path, ErrInvalidURI)
	}
	if b, ok := hostBucket(r.Host, rootDomain); ok {
		ep.Bucket = b
		ep.VirtualHost = true
		ep.Key = path[1:]
	} else {
		rest := path[1:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			ep.Bucket, ep.Key = rest[:i], rest[i+1:]
		} else {
			ep.Bucket = rest
		}
	}
	q := r.URL.Query()
	if xep, ok, err := extraEndpoint(r, ep, q); ok { // extra_endpoint.go
		return xep, err
	}
	for _, s := range unsupportedSubresources {
		if _, ok := q[s]; ok {
			return ep, fmt.Errorf("subresource %q: %w", s, ErrNotImplemented)
		}
	}
	_, hasUploads := q["uploads"]
	_, hasUploadID := q["uploadId"]
	ep.UploadID = q.Get("uploadId")
	if pn, ok := q["partNumber"]; ok {
		n, err := strconv.Atoi(pn[0])
		if err != nil || n < 1 || n > maxPartNumber {
			return ep, fmt.Errorf("parse partNumber %q: %w", pn[0], ErrInvalidPartNumber)
		}
		ep.PartNumber = n
	}
	method := r.Method
	switch {
	case ep.Bucket == "":
		if method == http.MethodGet {
			ep.Op = OpListBuckets
			return ep, nil
		}
		return ep, fmt.Errorf("%s on the service: %w", method, ErrMethodNotAllowed)
	case ep.Key == "":
		return bucketOp(ep, method, q, hasUploads)
	}
	switch method {
	case http.MethodGet:
		if hasUploadID {
			ep.Op = OpListParts
		} else {
			ep.Op = OpGetObject
		}
	case http.MethodHead:
		ep.Op = OpHeadObject
	case http.MethodPut:
		copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
		switch {
		case hasUploadID && ep.PartNumber != 0 && copySrc:
			ep.Op = OpUploadPartCopy
		case hasUploadID && ep.PartNumber != 0:
			ep.Op = OpUploadPart
		case hasUploadID || ep.PartNumber != 0:
			return ep, fmt.Errorf("PUT with only one of uploadId and partNumber: %w", ErrInvalidArgument)
		case copySrc:
			ep.Op = OpCopyObject
		default:
			ep.Op = OpPutObject
		}
	case http.MethodDelete:
		if hasUploadID {
			ep.Op = OpAbortMultipartUpload
		} else {
			ep.Op = OpDeleteObject
		}
	case http.MethodPost:
		switch {
		case hasUploads:
			ep.Op = OpCreateMultipartUpload
		case hasUploadID:
			ep.Op = OpCompleteMultipartUpload
		default:
			return ep, fmt.Errorf("POST on an object without uploads or uploadId: %w", ErrNotImplemented)
		}
	default:
		return ep, fmt.Errorf("%s on an object: %w", method, ErrMethodNotAllowed)
	}
	if ep.PartNumber != 0 && (ep.Op == OpGetObject || ep.Op == OpHeadObject) {
		return ep, fmt.Errorf("%s with partNumber: %w", ep.Op, ErrNotImplemented)
	}
	return ep, nil
}

func bucketOp(ep Endpoint, method string, q url.Values, hasUploads bool) (Endpoint, error) {
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch method {
	case http.MethodGet:
		switch {
		case has("location"):
			ep.Op = OpGetBucketLocation
		case has("versioning"):
			ep.Op = OpGetBucketVersioning
		case hasUploads:
			ep.Op = OpListMultipartUploads
		case q.Get("list-type") == "2":
			ep.Op = OpListObjectsV2
		case has("list-type"):
			return ep, fmt.Errorf("list-type %q: %w", q.Get("list-type"), ErrInvalidArgument)
		default:
			ep.Op = OpListObjects
		}
	case http.MethodHead:
		ep.Op = OpHeadBucket
	case http.MethodPut:
		if has("versioning") {
			return ep, fmt.Errorf("PutBucketVersioning: %w", ErrNotImplemented)
		}
		ep.Op = OpCreateBucket
	case http.MethodDelete:
		ep.Op = OpDeleteBucket
	case http.MethodPost:
		if has("delete") {
			ep.Op = OpDeleteObjects
			return ep, nil
		}
		return ep, fmt.Errorf("POST on a bucket (browser form upload): %w", ErrNotImplemented)
	default:
		return ep, fmt.Errorf("%s on a bucket: %w", method, ErrMethodNotAllowed)
	}
	return ep, nil
}

// hostBucket extracts the bucket from a virtual-host style Host header.
func hostBucket(host, rootDomain string) (string, bool) {
	if rootDomain == "" || host == "" {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	rootDomain = strings.TrimPrefix(strings.TrimSuffix(rootDomain, "."), ".")
	if len(host) <= len(rootDomain)+1 {
		return "", false
	}
	suffix := host[len(host)-len(rootDomain):]
	if host[len(host)-len(rootDomain)-1] != '.' || !strings.EqualFold(suffix, rootDomain) {
		return "", false
	}
	return strings.ToLower(host[:len(host)-len(rootDomain)-1]), true
}
