package s3e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/entrepot/entrepot/tests/harness"
)

var cluster *harness.DevCluster

func TestMain(m *testing.M) {
	os.Exit(harness.RunWithDev(m, &cluster))
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func client() *s3.Client { return harness.S3(cluster) }

var nameRE = regexp.MustCompile(`[^a-z0-9-]+`)

// newBucket creates a bucket unique to t and empties and deletes it at
// cleanup.
func newBucket(t *testing.T) string {
	t.Helper()
	base := strings.Trim(nameRE.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	name := strings.Trim(fmt.Sprintf("e2e-%s-%06x", base, rand.Uint32()&0xffffff), "-")
	name = strings.ReplaceAll(name, "--", "-")
	ctx := ctxT(t)
	if _, err := client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() { emptyAndDelete(t, name) })
	return name
}

func emptyAndDelete(t *testing.T, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := client()
	ups, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err == nil {
		for _, u := range ups.Uploads {
			_, _ = cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
		}
	}
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for i := 0; p.HasMorePages() && i < 100; i++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			break
		}
		for _, o := range page.Contents {
			_, _ = cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		}
	}
	if _, err := cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil && !t.Failed() {
		t.Errorf("cleanup: delete bucket %s: %v", bucket, err)
	}
}

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func quoted(s string) string { return `"` + s + `"` }

func put(t *testing.T, bucket, key string, body []byte) *s3.PutObjectOutput {
	t.Helper()
	out, err := client().PutObject(ctxT(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s/%s (%d bytes): %v", bucket, key, len(body), err)
	}
	return out
}

func get(t *testing.T, bucket, key string) []byte {
	t.Helper()
	out, err := client().GetObject(ctxT(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b
}

func mustEqualBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes sha256 %s, want %d bytes sha256 %s", what, len(got), sha256hex(got)[:16], len(want), sha256hex(want)[:16])
	}
}

// apiErr returns the S3 error code, HTTP status and request id of err.
func apiErr(err error) (code string, status int, requestID string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
		requestID = re.ServiceRequestID()
	}
	return code, status, requestID
}

// wantErr fails t unless err is an S3 error with the code (any of codes)
// and status, carrying a request id.
func wantErr(t *testing.T, what string, err error, status int, codes ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %d %v", what, status, codes)
	}
	code, st, rid := apiErr(err)
	if st != status || (len(codes) > 0 && !slices.Contains(codes, code)) {
		t.Fatalf("%s: got %d %q (%v), want %d %v", what, st, code, err, status, codes)
	}
	if rid == "" {
		t.Errorf("%s: error response has no x-amz-request-id", what)
	}
}

// state is what a refusal must leave unchanged: every object (key, ETag,
// size, sha256 of its bytes) and every multipart upload with its parts.
type state struct {
	objects map[string]string
	uploads map[string]string
}

func snapshot(t *testing.T, bucket string) state {
	t.Helper()
	ctx := ctxT(t)
	cl := client()
	st := state{objects: map[string]string{}, uploads: map[string]string{}}
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for i := 0; p.HasMorePages() && i < 100; i++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("snapshot list: %v", err)
		}
		for _, o := range page.Contents {
			body := get(t, bucket, aws.ToString(o.Key))
			st.objects[aws.ToString(o.Key)] = fmt.Sprintf("%s %d %s", aws.ToString(o.ETag), aws.ToInt64(o.Size), sha256hex(body))
		}
	}
	ups, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("snapshot uploads: %v", err)
	}
	for _, u := range ups.Uploads {
		parts, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
		if err != nil {
			t.Fatalf("snapshot parts: %v", err)
		}
		var desc []string
		for _, p := range parts.Parts {
			desc = append(desc, fmt.Sprintf("%d:%s:%d", aws.ToInt32(p.PartNumber), aws.ToString(p.ETag), aws.ToInt64(p.Size)))
		}
		st.uploads[aws.ToString(u.Key)+"?"+aws.ToString(u.UploadId)] = strings.Join(desc, ",")
	}
	return st
}

func (s state) String() string { return fmt.Sprintf("objects %v uploads %v", s.objects, s.uploads) }

func unchanged(t *testing.T, what, bucket string, before state) {
	t.Helper()
	after := snapshot(t, bucket)
	if after.String() != before.String() {
		t.Fatalf("%s changed the bucket:\nbefore %v\nafter  %v", what, before, after)
	}
}

// xmlError is the body of an S3 error response.
type xmlError struct {
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	RequestID string `xml:"RequestId"`
}

// rawResult is a raw HTTP exchange.
type rawResult struct {
	Status int
	Header http.Header
	Body   []byte
	Err    xmlError
}

// doRaw sends req (already signed or anonymous) and decodes an error body.
func doRaw(t *testing.T, req *http.Request) rawResult {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	r := rawResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode >= 300 && len(b) > 0 {
		if err := xml.Unmarshal(b, &r.Err); err != nil {
			t.Fatalf("%s %s: status %d with a body that is not S3 XML: %v: %q", req.Method, req.URL, resp.StatusCode, err, b)
		}
	}
	return r
}

// wantRawErr fails t unless r is an S3 XML error with status and code.
func wantRawErr(t *testing.T, what string, r rawResult, status int, codes ...string) {
	t.Helper()
	if r.Status != status || !slices.Contains(codes, r.Err.Code) {
		t.Fatalf("%s: got %d %q (%s), want %d %v", what, r.Status, r.Err.Code, r.Body, status, codes)
	}
	if r.Err.RequestID == "" && r.Header.Get("x-amz-request-id") == "" {
		t.Errorf("%s: error has no request id", what)
	}
}

// newRawRequest builds a request to the node for bucket/key with query.
func newRawRequest(t *testing.T, method, bucket, key string, query url.Values, body []byte) *http.Request {
	t.Helper()
	u := cluster.Node(0).Endpoint() + "/" + bucket
	if key != "" {
		u += "/" + (&url.URL{Path: key}).EscapedPath()
	}
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	return req
}

// signRaw signs req with SigV4 headers over the body's sha256 (or the
// given payload hash) at time at.
func signRaw(t *testing.T, req *http.Request, payloadHash string, at time.Time, secret string) {
	t.Helper()
	c := cluster.Credentials()
	if secret == "" {
		secret = c.SecretAccessKey
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	err := v4.NewSigner().SignHTTP(req.Context(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: secret},
		req, payloadHash, "s3", c.Region, at)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
}

func rawSigned(t *testing.T, method, bucket, key string, query url.Values, body []byte, hdr map[string]string) rawResult {
	t.Helper()
	req := newRawRequest(t, method, bucket, key, query, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	signRaw(t, req, sha256hex(body), time.Now(), "")
	return doRaw(t, req)
}

func headMissing(t *testing.T, bucket, key string) {
	t.Helper()
	_, err := client().HeadObject(ctxT(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		t.Fatalf("%s/%s exists, want absent", bucket, key)
	}
	var nf *types.NotFound
	if _, st, _ := apiErr(err); st != http.StatusNotFound && !errors.As(err, &nf) {
		t.Fatalf("head %s/%s: %v, want 404", bucket, key, err)
	}
}
