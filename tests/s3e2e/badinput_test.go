package s3e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/entrepot/entrepot/tests/harness"
)

func contentMD5(b []byte) string { s := md5.Sum(b); return base64.StdEncoding.EncodeToString(s[:]) }

func TestWrongCredentials(t *testing.T) {
	bucket := newBucket(t)
	put(t, bucket, "existing", []byte("original"))
	good := cluster.Credentials()
	cases := []struct {
		name   string
		creds  harness.Credentials
		status int
		code   string
	}{
		{name: "wrong secret", creds: harness.Credentials{Region: good.Region, AccessKeyID: good.AccessKeyID, SecretAccessKey: good.SecretAccessKey + "x"},
			status: http.StatusForbidden, code: "SignatureDoesNotMatch"},
		{name: "unknown key", creds: harness.Credentials{Region: good.Region, AccessKeyID: "GK000000000000000000000000", SecretAccessKey: good.SecretAccessKey},
			status: http.StatusForbidden, code: "InvalidAccessKeyId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			bad := harness.NewS3Client(cluster.Node(0).Endpoint(), tc.creds, nil, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
			before := snapshot(t, bucket)
			for _, key := range []string{"existing", "new"} {
				_, err := bad.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("forged")})
				wantErr(t, "put "+key, err, tc.status, tc.code)
			}
			_, err := bad.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("existing")})
			wantErr(t, "delete", err, tc.status, tc.code)
			_, err = bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("existing")})
			wantErr(t, "get", err, tc.status, tc.code)
			_, err = bad.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("e2e-forged-bucket")})
			wantErr(t, "create bucket", err, tc.status, tc.code)
			_, err = bad.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
			wantErr(t, "delete bucket", err, tc.status, tc.code)
			unchanged(t, tc.name, bucket, before)
			_, err = client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("e2e-forged-bucket")})
			wantErr(t, "forged bucket must not exist", err, http.StatusNotFound)
		})
	}
	t.Run("anonymous", func(t *testing.T) {
		before := snapshot(t, bucket)
		r := doRaw(t, newRawRequest(t, http.MethodPut, bucket, "existing", nil, []byte("anon")))
		wantRawErr(t, "anonymous put", r, http.StatusForbidden, "AccessDenied")
		r = doRaw(t, newRawRequest(t, http.MethodGet, bucket, "existing", nil, nil))
		wantRawErr(t, "anonymous get", r, http.StatusForbidden, "AccessDenied")
		unchanged(t, "anonymous requests", bucket, before)
	})
	t.Run("skewed clock", func(t *testing.T) {
		before := snapshot(t, bucket)
		req := newRawRequest(t, http.MethodPut, bucket, "existing", nil, []byte("late"))
		signRaw(t, req, sha256hex([]byte("late")), time.Now().Add(-time.Hour), "")
		wantRawErr(t, "request signed an hour ago", doRaw(t, req), http.StatusForbidden, "RequestTimeTooSkewed")
		unchanged(t, "skewed request", bucket, before)
	})
	t.Run("payload hash mismatch", func(t *testing.T) {
		before := snapshot(t, bucket)
		req := newRawRequest(t, http.MethodPut, bucket, "existing", nil, []byte("actual body"))
		signRaw(t, req, sha256hex([]byte("claimed body")), time.Now(), "")
		wantRawErr(t, "x-amz-content-sha256 not matching the body", doRaw(t, req), http.StatusBadRequest, "XAmzContentSHA256Mismatch", "BadDigest")
		unchanged(t, "payload hash mismatch", bucket, before)
	})
}

// presign returns a query-signed URL for method on bucket/key signed at
// `at`, valid for expires.
func presign(t *testing.T, method, bucket, key string, at time.Time, expires time.Duration) string {
	t.Helper()
	c := cluster.Credentials()
	q := url.Values{"X-Amz-Expires": {fmt.Sprint(int(expires.Seconds()))}}
	req := newRawRequest(t, method, bucket, key, q, nil)
	u, _, err := v4.NewSigner().PresignHTTP(req.Context(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey},
		req, "UNSIGNED-PAYLOAD", "s3", c.Region, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func doURL(t *testing.T, method, u string, body []byte) rawResult {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doRaw(t, req)
}

func TestPresignedURLs(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	body := payload(30000, 91)

	// SDK presigner, PUT then GET.
	pc := s3.NewPresignClient(client())
	pput, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("p")}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, pput.Method, pput.URL, bytes.NewReader(body))
	for k, vs := range pput.SignedHeader {
		if !strings.EqualFold(k, "host") {
			req.Header[k] = vs
		}
	}
	if r := doRaw(t, req); r.Status != http.StatusOK {
		t.Fatalf("presigned PUT: %d %s", r.Status, r.Body)
	}
	pget, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("p")}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r := doURL(t, http.MethodGet, pget.URL, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("presigned GET: %d %s", r.Status, r.Body)
	}
	mustEqualBytes(t, "presigned GET", r.Body, body)

	// Hand-made presigns: fresh works, expired and tampered do not.
	if r := doURL(t, http.MethodGet, presign(t, http.MethodGet, bucket, "p", time.Now(), time.Minute), nil); r.Status != http.StatusOK {
		t.Fatalf("fresh presigned GET: %d %s", r.Status, r.Body)
	}
	before := snapshot(t, bucket)
	expired := presign(t, http.MethodPut, bucket, "p", time.Now().Add(-2*time.Hour), time.Minute)
	wantRawErr(t, "expired presigned PUT", doURL(t, http.MethodPut, expired, []byte("late")), http.StatusForbidden, "AccessDenied")
	expiredNew := presign(t, http.MethodPut, bucket, "new", time.Now().Add(-2*time.Hour), time.Minute)
	wantRawErr(t, "expired presigned PUT of a new key", doURL(t, http.MethodPut, expiredNew, []byte("late")), http.StatusForbidden, "AccessDenied")
	wantRawErr(t, "expired presigned GET", doURL(t, http.MethodGet, presign(t, http.MethodGet, bucket, "p", time.Now().Add(-2*time.Hour), time.Minute), nil),
		http.StatusForbidden, "AccessDenied")
	fresh := presign(t, http.MethodPut, bucket, "p", time.Now(), time.Minute)
	u, _ := url.Parse(fresh)
	q := u.Query()
	sig := q.Get("X-Amz-Signature")
	q.Set("X-Amz-Signature", strings.Repeat("0", len(sig)))
	u.RawQuery = q.Encode()
	wantRawErr(t, "tampered presigned PUT", doURL(t, http.MethodPut, u.String(), []byte("forged")), http.StatusForbidden, "SignatureDoesNotMatch")
	// A presigned GET URL cannot be used to PUT.
	wantRawErr(t, "presigned GET used for PUT", doURL(t, http.MethodPut, presign(t, http.MethodGet, bucket, "p", time.Now(), time.Minute), []byte("x")),
		http.StatusForbidden, "SignatureDoesNotMatch")
	unchanged(t, "refused presigned requests", bucket, before)
}

func TestContentMD5Refusals(t *testing.T) {
	bucket := newBucket(t)
	put(t, bucket, "existing", []byte("original"))
	ctx := ctxT(t)
	cl := client()
	body := []byte("the real body")
	cases := []struct {
		name   string
		in     s3.PutObjectInput
		status int
		code   string
	}{
		{name: "content-md5 of other bytes", in: s3.PutObjectInput{ContentMD5: aws.String(contentMD5([]byte("other")))}, status: 400, code: "BadDigest"},
		{name: "content-md5 not base64", in: s3.PutObjectInput{ContentMD5: aws.String("not-an-md5!")}, status: 400, code: "InvalidDigest"},
		{name: "sha256 checksum of other bytes", in: s3.PutObjectInput{ChecksumSHA256: aws.String("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")}, status: 400, code: "BadDigest"},
		{name: "crc32 checksum of other bytes", in: s3.PutObjectInput{ChecksumCRC32: aws.String("AAAAAA==")}, status: 400, code: "BadDigest"},
		{name: "crc32c checksum of other bytes", in: s3.PutObjectInput{ChecksumCRC32C: aws.String("AAAAAA==")}, status: 400, code: "BadDigest"},
		{name: "sha1 checksum of other bytes", in: s3.PutObjectInput{ChecksumSHA1: aws.String("2jmj7l5rSw0yVb/vlWAYkK/YBwk=")}, status: 400, code: "BadDigest"},
		{name: "crc64nvme checksum of other bytes", in: s3.PutObjectInput{ChecksumCRC64NVME: aws.String("AAAAAAAAAAA=")}, status: 400, code: "BadDigest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, bucket)
			for _, key := range []string{"existing", "new"} {
				in := tc.in
				in.Bucket, in.Key, in.Body = aws.String(bucket), aws.String(key), bytes.NewReader(body)
				_, err := cl.PutObject(ctx, &in, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
				wantErr(t, tc.name+" on "+key, err, tc.status, tc.code)
			}
			unchanged(t, tc.name, bucket, before)
		})
	}
	// Content-MD5 on UploadPart is checked too.
	id := createUpload(t, bucket, "mp")
	before := snapshot(t, bucket)
	_, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: aws.String(id), PartNumber: aws.Int32(1),
		Body: bytes.NewReader(body), ContentMD5: aws.String(contentMD5([]byte("other")))})
	wantErr(t, "upload part with wrong Content-MD5", err, http.StatusBadRequest, "BadDigest")
	unchanged(t, "refused part", bucket, before)
}

func TestMalformedXMLAndOversizedLists(t *testing.T) {
	bucket := newBucket(t)
	for _, k := range []string{"a", "b"} {
		put(t, bucket, k, []byte(k))
	}
	id := createUpload(t, bucket, "mp")
	part := uploadPart(t, bucket, "mp", id, 1, []byte("part one"))

	var many strings.Builder
	many.WriteString("<Delete>")
	for i := range 1001 {
		fmt.Fprintf(&many, "<Object><Key>k%d</Key></Object>", i)
	}
	many.WriteString("<Object><Key>a</Key></Object></Delete>")

	var parts strings.Builder
	parts.WriteString("<CompleteMultipartUpload>")
	for i := 1; i <= 10001; i++ {
		fmt.Fprintf(&parts, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i, aws.ToString(part.ETag))
	}
	parts.WriteString("</CompleteMultipartUpload>")

	del := url.Values{"delete": {""}}
	cmp := url.Values{"uploadId": {id}}
	cases := []struct {
		name   string
		method string
		key    string
		query  url.Values
		body   string
		codes  []string
	}{
		{name: "delete objects truncated xml", method: http.MethodPost, query: del, body: "<Delete><Object><Key>a</Key>", codes: []string{"MalformedXML"}},
		{name: "delete objects not xml", method: http.MethodPost, query: del, body: "a, b", codes: []string{"MalformedXML"}},
		{name: "delete objects wrong root", method: http.MethodPost, query: del, body: "<Remove><Object><Key>a</Key></Object></Remove>", codes: []string{"MalformedXML"}},
		{name: "delete objects over 1000 keys", method: http.MethodPost, query: del, body: many.String(), codes: []string{"MalformedXML"}},
		{name: "complete not xml", method: http.MethodPost, key: "mp", query: cmp, body: "parts please", codes: []string{"MalformedXML"}},
		{name: "complete truncated xml", method: http.MethodPost, key: "mp", query: cmp, body: "<CompleteMultipartUpload><Part><PartNumber>1", codes: []string{"MalformedXML"}},
		{name: "complete bad part number", method: http.MethodPost, key: "mp", query: cmp,
			body: "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>", codes: []string{"MalformedXML", "InvalidArgument", "InvalidPart"}},
		{name: "complete empty part list", method: http.MethodPost, key: "mp", query: cmp, body: "<CompleteMultipartUpload></CompleteMultipartUpload>",
			codes: []string{"MalformedXML", "InvalidRequest", "InvalidArgument"}},
		{name: "complete with 10001 parts", method: http.MethodPost, key: "mp", query: cmp, body: parts.String(),
			codes: []string{"MalformedXML", "InvalidArgument", "InvalidPart", "InvalidRequest", "EntityTooLarge", "MaxMessageLengthExceeded"}},
		{name: "part number 10001", method: http.MethodPut, key: "mp", query: url.Values{"uploadId": {id}, "partNumber": {"10001"}}, body: "x",
			codes: []string{"InvalidArgument"}},
		{name: "part number 0", method: http.MethodPut, key: "mp", query: url.Values{"uploadId": {id}, "partNumber": {"0"}}, body: "x",
			codes: []string{"InvalidArgument"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, bucket)
			body := []byte(tc.body)
			r := rawSigned(t, tc.method, bucket, tc.key, tc.query, body, map[string]string{"Content-MD5": contentMD5(body)})
			wantRawErr(t, tc.name, r, http.StatusBadRequest, tc.codes...)
			unchanged(t, tc.name, bucket, before)
		})
	}
	headMissing(t, bucket, "mp")
}

func TestTooLargeSinglePut(t *testing.T) {
	bucket := newBucket(t)
	// Declaring more than 5 GiB for a single PUT is refused before any data.
	req := newRawRequest(t, http.MethodPut, bucket, "huge", nil, nil)
	req.ContentLength = 5<<30 + 1
	req.Body = io.NopCloser(io.LimitReader(zeroReader{}, 1<<20))
	signRaw(t, req, "UNSIGNED-PAYLOAD", time.Now(), "")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("5 GiB + 1 single PUT: status %d, want 400 EntityTooLarge", resp.StatusCode)
		}
	}
	// Either refused with 400 or the connection closed early; never stored.
	headMissing(t, bucket, "huge")
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestNoSuchUploadAndBucketForMultipart(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	_, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("k"), UploadId: aws.String("no-such-upload"),
		PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
	wantErr(t, "upload part to unknown upload", err, http.StatusNotFound, "NoSuchUpload")
	_, err = cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("k"), UploadId: aws.String("no-such-upload"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"x"`)}}}})
	wantErr(t, "complete unknown upload", err, http.StatusNotFound, "NoSuchUpload")
	_, err = cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("k"), UploadId: aws.String("no-such-upload")})
	wantErr(t, "abort unknown upload", err, http.StatusNotFound, "NoSuchUpload")
	_, err = cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("e2e-no-such-bucket-4243"), Key: aws.String("k")})
	wantErr(t, "create upload in missing bucket", err, http.StatusNotFound, "NoSuchBucket")
	headMissing(t, bucket, "k")
}
