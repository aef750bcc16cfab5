package s3e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/entrepot/entrepot/tests/harness"
)

// recordHeaders is SDK middleware that keeps the last request's
// x-amz-content-sha256, Content-Encoding and x-amz-trailer headers, to prove
// which upload path the SDK took.
type recordHeaders struct {
	mu   sync.Mutex
	last http.Header
}

func (r *recordHeaders) add(stack *smithymiddleware.Stack) error {
	return stack.Finalize.Add(smithymiddleware.FinalizeMiddlewareFunc("recordHeaders",
		func(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				r.mu.Lock()
				r.last = req.Header.Clone()
				r.mu.Unlock()
			}
			return next.HandleFinalize(ctx, in)
		}), smithymiddleware.After)
}

func (r *recordHeaders) get(k string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Get(k)
}

// TestSDKTrailingChecksumsOverTLS sends uploads through a TLS terminator so
// that aws-sdk-go-v2 uses aws-chunked bodies with trailing checksums, its
// default on HTTPS.
func TestSDKTrailingChecksumsOverTLS(t *testing.T) {
	bucket := newBucket(t)
	proxy, err := harness.NewTLSProxy(cluster.Node(0).Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	rec := &recordHeaders{}
	cl := harness.NewS3Client(proxy.URL(), cluster.Credentials(), proxy.Client(), func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, rec.add)
	})
	ctx := ctxT(t)
	body := payload(3*mib+17, 101)
	algos := []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmCrc64nvme}
	for _, a := range algos {
		name := string(a)
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			key := "tls-" + name
			// A non-seekable body forces streaming.
			_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Body: io.NopCloser(bytes.NewReader(body)), ContentLength: aws.Int64(int64(len(body))), ChecksumAlgorithm: a})
			if err != nil {
				t.Fatalf("put over TLS: %v", err)
			}
			if got := rec.get("X-Amz-Content-Sha256"); got != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
				t.Errorf("SDK sent x-amz-content-sha256 %q, want STREAMING-UNSIGNED-PAYLOAD-TRAILER", got)
			}
			if !strings.Contains(rec.get("Content-Encoding"), "aws-chunked") || !strings.HasPrefix(rec.get("X-Amz-Trailer"), "x-amz-checksum-") {
				t.Errorf("SDK sent content-encoding %q trailer %q", rec.get("Content-Encoding"), rec.get("X-Amz-Trailer"))
			}
			out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			mustEqualBytes(t, "get over TLS", got, body)
			if aws.ToString(out.ContentEncoding) != "" && strings.Contains(aws.ToString(out.ContentEncoding), "aws-chunked") {
				t.Errorf("stored Content-Encoding leaks aws-chunked: %q", aws.ToString(out.ContentEncoding))
			}
		})
	}
	t.Run("multipart parts with trailers", func(t *testing.T) {
		id, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("tls-mp"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatal(err)
		}
		p1, p2 := payload(5*mib, 102), payload(100, 103)
		var parts []types.CompletedPart
		for i, p := range [][]byte{p1, p2} {
			out, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("tls-mp"), UploadId: id.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: io.NopCloser(bytes.NewReader(p)), ContentLength: aws.Int64(int64(len(p))), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
			if err != nil {
				t.Fatalf("upload part %d: %v", i+1, err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
		}
		if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("tls-mp"), UploadId: id.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatal(err)
		}
		mustEqualBytes(t, "multipart over TLS", get(t, bucket, "tls-mp"), append(p1, p2...))
	})
}
