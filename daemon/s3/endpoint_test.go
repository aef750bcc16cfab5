package s3

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

type endpointCase struct {
	name, method, target, root string
	copySource                 string
	want                       Endpoint
	err                        error
}

// endpointCases are taken from the request examples of the AWS S3 API
// reference (path-style and virtual-hosted-style) plus key edge cases.
var endpointCases = []endpointCase{
	{name: "ListBuckets", method: "GET", target: "http://s3.amazonaws.com/",
		want: Endpoint{Op: OpListBuckets}},
	{name: "ListBuckets vhost root", method: "GET", target: "http://s3.amazonaws.com/", root: "s3.amazonaws.com",
		want: Endpoint{Op: OpListBuckets}},
	{name: "path style object (AWS VirtualHosting doc)", method: "GET", target: "https://s3.us-west-2.amazonaws.com/amzn-s3-demo-bucket1/photos/puppy.jpg",
		want: Endpoint{Op: OpGetObject, Bucket: "amzn-s3-demo-bucket1", Key: "photos/puppy.jpg"}},
	{name: "vhost object (AWS VirtualHosting doc)", method: "GET", target: "https://amzn-s3-demo-bucket1.s3.us-west-2.amazonaws.com/photos/puppy.jpg", root: "s3.us-west-2.amazonaws.com",
		want: Endpoint{Op: OpGetObject, Bucket: "amzn-s3-demo-bucket1", Key: "photos/puppy.jpg", VirtualHost: true}},
	{name: "vhost with port and upper case host", method: "HEAD", target: "http://My-Bucket.S3.Local:3900/a.txt", root: "s3.local",
		want: Endpoint{Op: OpHeadObject, Bucket: "my-bucket", Key: "a.txt", VirtualHost: true}},
	{name: "other host is path style", method: "GET", target: "http://127.0.0.1:3900/b/k", root: "s3.local",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "k"}},
	{name: "host only suffix-like is path style", method: "GET", target: "http://xs3.local/b/k", root: "s3.local",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "k"}},
	{name: "ListObjectsV2 (AWS example)", method: "GET", target: "http://amzn-s3-demo-bucket.s3.amazonaws.com/?list-type=2&prefix=E&start-after=ExampleGuide.pdf", root: "s3.amazonaws.com",
		want: Endpoint{Op: OpListObjectsV2, Bucket: "amzn-s3-demo-bucket", VirtualHost: true}},
	{name: "ListObjects v1 path style", method: "GET", target: "http://h/quotes?prefix=N&marker=Ned&max-keys=40",
		want: Endpoint{Op: OpListObjects, Bucket: "quotes"}},
	{name: "ListObjects trailing slash", method: "GET", target: "http://h/quotes/",
		want: Endpoint{Op: OpListObjects, Bucket: "quotes"}},
	{name: "GetBucketLocation (AWS example)", method: "GET", target: "http://myBucket.s3.amazonaws.com/?location", root: "s3.amazonaws.com",
		want: Endpoint{Op: OpGetBucketLocation, Bucket: "mybucket", VirtualHost: true}},
	{name: "GetBucketVersioning", method: "GET", target: "http://h/b?versioning",
		want: Endpoint{Op: OpGetBucketVersioning, Bucket: "b"}},
	{name: "CreateBucket", method: "PUT", target: "http://h/amzn-s3-demo-bucket",
		want: Endpoint{Op: OpCreateBucket, Bucket: "amzn-s3-demo-bucket"}},
	{name: "DeleteBucket", method: "DELETE", target: "http://h/b/",
		want: Endpoint{Op: OpDeleteBucket, Bucket: "b"}},
	{name: "HeadBucket", method: "HEAD", target: "http://h/b",
		want: Endpoint{Op: OpHeadBucket, Bucket: "b"}},
	{name: "DeleteObjects (AWS example)", method: "POST", target: "http://amzn-s3-demo-bucket.s3.amazonaws.com/?delete", root: "s3.amazonaws.com",
		want: Endpoint{Op: OpDeleteObjects, Bucket: "amzn-s3-demo-bucket", VirtualHost: true}},
	{name: "ListMultipartUploads (AWS example)", method: "GET", target: "http://example-bucket.s3.amazonaws.com/?uploads&max-uploads=3", root: "s3.amazonaws.com",
		want: Endpoint{Op: OpListMultipartUploads, Bucket: "example-bucket", VirtualHost: true}},
	{name: "PutObject", method: "PUT", target: "http://h/b/my-image.jpg",
		want: Endpoint{Op: OpPutObject, Bucket: "b", Key: "my-image.jpg"}},
	{name: "PutObject sdk x-id", method: "PUT", target: "http://h/b/k?x-id=PutObject",
		want: Endpoint{Op: OpPutObject, Bucket: "b", Key: "k"}},
	{name: "CopyObject (AWS example)", method: "PUT", target: "http://h/b/my-second-image.jpg", copySource: "/amzn-s3-demo-bucket/my-image.jpg",
		want: Endpoint{Op: OpCopyObject, Bucket: "b", Key: "my-second-image.jpg"}},
	{name: "DeleteObject", method: "DELETE", target: "http://h/b/my-second-image.jpg",
		want: Endpoint{Op: OpDeleteObject, Bucket: "b", Key: "my-second-image.jpg"}},
	{name: "CreateMultipartUpload (AWS example)", method: "POST", target: "http://example-bucket.s3.amazonaws.com/example-object?uploads", root: "s3.amazonaws.com",
		want: Endpoint{Op: OpCreateMultipartUpload, Bucket: "example-bucket", Key: "example-object", VirtualHost: true}},
	{name: "UploadPart (AWS example)", method: "PUT", target: "http://h/b/my-movie.m2ts?partNumber=1&uploadId=VCVsb2FkIElEIGZvciBlbZZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZR",
		want: Endpoint{Op: OpUploadPart, Bucket: "b", Key: "my-movie.m2ts", PartNumber: 1, UploadID: "VCVsb2FkIElEIGZvciBlbZZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZR"}},
	{name: "UploadPartCopy (AWS example)", method: "PUT", target: "http://h/b/newobject?partNumber=2&uploadId=VCVsb2FkIElEIGZvciBlbZZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZR", copySource: "/source-bucket/sourceobject",
		want: Endpoint{Op: OpUploadPartCopy, Bucket: "b", Key: "newobject", PartNumber: 2, UploadID: "VCVsb2FkIElEIGZvciBlbZZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZR"}},
	{name: "CompleteMultipartUpload (AWS example)", method: "POST", target: "http://h/b/example-object?uploadId=AAAsb2FkIElEIGZvciBlbHZpbmcncyWeeS1tb3ZpZS5tMnRzIRRwbG9hZA",
		want: Endpoint{Op: OpCompleteMultipartUpload, Bucket: "b", Key: "example-object", UploadID: "AAAsb2FkIElEIGZvciBlbHZpbmcncyWeeS1tb3ZpZS5tMnRzIRRwbG9hZA"}},
	{name: "AbortMultipartUpload", method: "DELETE", target: "http://h/b/example-object?uploadId=VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZ",
		want: Endpoint{Op: OpAbortMultipartUpload, Bucket: "b", Key: "example-object", UploadID: "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZ"}},
	{name: "ListParts (AWS example)", method: "GET", target: "http://h/b/example-object?uploadId=XXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA&max-parts=2&part-number-marker=1",
		want: Endpoint{Op: OpListParts, Bucket: "b", Key: "example-object", UploadID: "XXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"}},
	{name: "key with spaces", method: "GET", target: "http://h/b/my%20key%20with%20spaces.txt",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "my key with spaces.txt"}},
	{name: "key with plus stays plus", method: "GET", target: "http://h/b/a+b",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "a+b"}},
	{name: "unicode key", method: "GET", target: "http://h/b/photos/%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC.jpg",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "photos/été/日本.jpg"}},
	{name: "encoded slash", method: "GET", target: "http://h/b/dir%2Ffile",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "dir/file"}},
	{name: "trailing slash key", method: "PUT", target: "http://h/b/dir/",
		want: Endpoint{Op: OpPutObject, Bucket: "b", Key: "dir/"}},
	{name: "double slash key", method: "GET", target: "http://h/b//a//b",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "/a//b"}},
	{name: "vhost double slash key", method: "GET", target: "http://b.s3.local//x", root: "s3.local",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "/x", VirtualHost: true}},
	{name: "vhost bucket root trailing dot", method: "GET", target: "http://b.s3.local./", root: "s3.local",
		want: Endpoint{Op: OpListObjects, Bucket: "b", VirtualHost: true}},
	{name: "presigned query does not change the op", method: "GET", target: "http://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "k"}},
	{name: "response overrides", method: "GET", target: "http://h/b/k?response-content-type=text/plain",
		want: Endpoint{Op: OpGetObject, Bucket: "b", Key: "k"}},

	{name: "GetObjectAcl", method: "GET", target: "http://h/b/k?acl", want: Endpoint{Op: OpGetObjectAcl, Bucket: "b", Key: "k"}},
	{name: "PutBucketTagging", method: "PUT", target: "http://h/b?tagging", want: Endpoint{Op: OpPutBucketTagging, Bucket: "b"}},
	{name: "versions is not implemented", method: "GET", target: "http://h/b?versions", err: ErrNotImplemented},
	{name: "PutBucketVersioning not implemented", method: "PUT", target: "http://h/b?versioning", err: ErrNotImplemented},
	{name: "browser POST", method: "POST", target: "http://h/b", want: Endpoint{Op: OpPostObject, Bucket: "b"}},
	{name: "POST object without uploads", method: "POST", target: "http://h/b/k", err: ErrNotImplemented},
	{name: "GET partNumber not implemented", method: "GET", target: "http://h/b/k?partNumber=1", err: ErrNotImplemented},
	{name: "partNumber zero", method: "PUT", target: "http://h/b/k?partNumber=0&uploadId=x", err: ErrInvalidPartNumber},
	{name: "partNumber too big", method: "PUT", target: "http://h/b/k?partNumber=10001&uploadId=x", err: ErrInvalidPartNumber},
	{name: "partNumber without uploadId", method: "PUT", target: "http://h/b/k?partNumber=3", err: ErrInvalidArgument},
	{name: "list-type 3", method: "GET", target: "http://h/b?list-type=3", err: ErrInvalidArgument},
	{name: "PUT on service", method: "PUT", target: "http://h/", err: ErrMethodNotAllowed},
	{name: "PATCH object", method: "PATCH", target: "http://h/b/k", err: ErrMethodNotAllowed},
	{name: "OPTIONS bucket", method: "OPTIONS", target: "http://h/b", want: Endpoint{Op: OpOptions, Bucket: "b"}},
}

func newEndpointRequest(c endpointCase) *http.Request {
	r := httptest.NewRequest(c.method, c.target, nil)
	if c.copySource != "" {
		r.Header.Set("X-Amz-Copy-Source", c.copySource)
	}
	return r
}

func TestParseEndpoint(t *testing.T) {
	for _, c := range endpointCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseEndpoint(newEndpointRequest(c), c.root)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got != c.want {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseEndpointErrorsMapToS3Codes(t *testing.T) {
	cases := map[string]ErrorCode{
		"http://h/b/k?torrent":                 CodeNotImplemented,
		"http://h/b/k?partNumber=0&uploadId=x": CodeInvalidArgument,
	}
	for target, want := range cases {
		_, err := ParseEndpoint(httptest.NewRequest("PUT", target, nil), "")
		if got := toAPIError(err, false); got.Code != want || got.Status() == 0 {
			t.Errorf("%s: code %s, want %s", target, got.Code, want)
		}
	}
	_, err := ParseEndpoint(httptest.NewRequest("PATCH", "http://h/b/k", nil), "")
	if got := toAPIError(err, false); got.Code != CodeMethodNotAllowed || got.Status() != 405 {
		t.Errorf("PATCH: %s %d", got.Code, got.Status())
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, c := range endpointCases {
		r := newEndpointRequest(c)
		f.Add(c.method, r.Host, r.URL.Path, r.URL.RawQuery, c.root, c.copySource != "")
	}
	f.Fuzz(func(t *testing.T, method, host, path, query, root string, copySrc bool) {
		r := &http.Request{Method: method, Host: host, Header: http.Header{}}
		r.URL = &url.URL{Path: path, RawQuery: query}
		if copySrc {
			r.Header.Set("X-Amz-Copy-Source", "/a/b")
		}
		ep, err := ParseEndpoint(r, root)
		if err != nil {
			return
		}
		if ep.Op == "" {
			t.Fatalf("no op and no error for %q %q", method, path)
		}
		if ep.Op != OpListBuckets && ep.Bucket == "" {
			t.Fatalf("op %s without bucket", ep.Op)
		}
		if ep.Key != "" && !strings.Contains(r.URL.Path, ep.Key) {
			t.Fatalf("key %q not in path %q", ep.Key, r.URL.Path)
		}
	})
}
