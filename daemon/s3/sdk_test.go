package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

func (e *env) awsClient(pathStyle bool, hc *http.Client, endpoint string) *s3.Client {
	if hc == nil {
		hc = e.srv.Client()
	}
	if endpoint == "" {
		endpoint = e.srv.URL
	}
	return s3.New(s3.Options{
		Region:           testRegion,
		Credentials:      awscreds.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
		BaseEndpoint:     aws.String(endpoint),
		UsePathStyle:     pathStyle,
		HTTPClient:       hc,
		RetryMaxAttempts: 1,
	})
}

func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %s (%v), want %s", ae.ErrorCode(), err, code)
	}
}

func TestAWSSDK(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c := e.awsClient(true, nil, "")
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("sdk-bucket")}); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("sdk-bucket")})
		if err != nil { // us-east-1: 200 to the owner
			t.Fatalf("CreateBucket again: %v", err)
		}
		if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("sdk-bucket")}); err != nil {
			t.Fatalf("HeadBucket: %v", err)
		}
		lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil || len(lb.Buckets) != 1 || *lb.Buckets[0].Name != "sdk-bucket" {
			t.Fatalf("ListBuckets: %v %+v", err, lb)
		}
		loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("sdk-bucket")})
		if err != nil || loc.LocationConstraint != "" {
			t.Fatalf("GetBucketLocation: %v %+v", err, loc)
		}

		// PutObject with metadata and the SDK's default checksum
		body := []byte("hello from the aws sdk")
		put, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("sdk-bucket"), Key: aws.String("dir/héllo wörld.txt"), Body: bytes.NewReader(body),
			ContentType: aws.String("text/plain"), Metadata: map[string]string{"Owner": "Alice"},
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		})
		if err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		sum := md5.Sum(body)
		if *put.ETag != `"`+hex.EncodeToString(sum[:])+`"` || put.ChecksumSHA256 == nil {
			t.Fatalf("PutObject answer: etag %s sha256 %v", *put.ETag, put.ChecksumSHA256)
		}
		get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("dir/héllo wörld.txt"), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		got, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil || !bytes.Equal(got, body) || *get.ContentType != "text/plain" || get.Metadata["owner"] != "Alice" ||
			get.ChecksumSHA256 == nil || *get.ChecksumSHA256 != *put.ChecksumSHA256 {
			t.Fatalf("GetObject: %v %q %+v", err, got, get)
		}
		rng, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("dir/héllo wörld.txt"), Range: aws.String("bytes=-5")})
		if err != nil {
			t.Fatalf("range GetObject: %v", err)
		}
		got, _ = io.ReadAll(rng.Body)
		rng.Body.Close()
		if string(got) != "t.txt"[0:0]+string(body[len(body)-5:]) || *rng.ContentRange != fmt.Sprintf("bytes %d-%d/%d", len(body)-5, len(body)-1, len(body)) {
			t.Fatalf("range: %q %s", got, *rng.ContentRange)
		}
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("dir/héllo wörld.txt"), Range: aws.String("bytes=1000-")})
		wantAPIError(t, err, "InvalidRange")
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("nope")})
		var nsk *types.NoSuchKey
		if !errors.As(err, &nsk) {
			t.Fatalf("GetObject missing: %v", err)
		}
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("nope")})
		var nf *types.NotFound
		if !errors.As(err, &nf) {
			t.Fatalf("HeadObject missing: %v", err)
		}
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("dir/héllo wörld.txt")})
		if err != nil || *head.ContentLength != int64(len(body)) || *head.ETag != *put.ETag {
			t.Fatalf("HeadObject: %v %+v", err, head)
		}

		// copy with a url-encoded source, then REPLACE metadata
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("copy.txt"),
			CopySource: aws.String("sdk-bucket/dir/h%C3%A9llo%20w%C3%B6rld.txt")})
		if err != nil {
			t.Fatalf("CopyObject: %v", err)
		}
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("copy.txt"),
			CopySource: aws.String("sdk-bucket/copy.txt")})
		wantAPIError(t, err, "InvalidRequest")
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("copy.txt"),
			CopySource: aws.String("sdk-bucket/copy.txt"), MetadataDirective: types.MetadataDirectiveReplace,
			Metadata: map[string]string{"new": "yes"}, ContentType: aws.String("text/x-new")})
		if err != nil {
			t.Fatalf("CopyObject REPLACE: %v", err)
		}
		head, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("copy.txt")})
		if err != nil || head.Metadata["new"] != "yes" || head.Metadata["owner"] != "" || *head.ContentType != "text/x-new" {
			t.Fatalf("after REPLACE: %v %+v", err, head)
		}

		// listing with pagination
		for i := range 7 {
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String(fmt.Sprintf("list/%02d", i)), Body: strings.NewReader("x")}); err != nil {
				t.Fatal(err)
			}
		}
		var keys []string
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("sdk-bucket"), Prefix: aws.String("list/"), MaxKeys: aws.Int32(3)})
		pages := 0
		for p.HasMorePages() && pages < 10 {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListObjectsV2: %v", err)
			}
			pages++
			for _, o := range page.Contents {
				keys = append(keys, *o.Key)
			}
		}
		if pages != 3 || len(keys) != 7 || keys[6] != "list/06" {
			t.Fatalf("ListObjectsV2 pages %d keys %v", pages, keys)
		}
		v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("sdk-bucket"), Delimiter: aws.String("/")})
		if err != nil || len(v1.CommonPrefixes) != 2 || len(v1.Contents) != 1 || *v1.Contents[0].Key != "copy.txt" {
			t.Fatalf("ListObjects: %v %+v", err, v1)
		}

		// DeleteObjects (the SDK sends a checksum)
		del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("sdk-bucket"), Delete: &types.Delete{
			Objects: []types.ObjectIdentifier{{Key: aws.String("list/00")}, {Key: aws.String("list/01")}}}})
		if err != nil || len(del.Deleted) != 2 {
			t.Fatalf("DeleteObjects: %v %+v", err, del)
		}

		// multipart: two parts (5 MiB + 1 KiB), a ranged part copy, list, complete
		mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), ContentType: aws.String("application/x-big")})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		part1 := bytes.Repeat([]byte("a"), 5<<20)
		up1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
		if err != nil {
			t.Fatalf("UploadPart: %v", err)
		}
		up2, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), UploadId: mp.UploadId, PartNumber: aws.Int32(2),
			CopySource: aws.String("sdk-bucket/dir/h%C3%A9llo%20w%C3%B6rld.txt"), CopySourceRange: aws.String("bytes=0-4")})
		if err != nil {
			t.Fatalf("UploadPartCopy: %v", err)
		}
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), UploadId: mp.UploadId})
		if err != nil || len(lp.Parts) != 2 || *lp.Parts[1].Size != 5 {
			t.Fatalf("ListParts: %v %+v", err, lp)
		}
		lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("sdk-bucket")})
		if err != nil || len(lu.Uploads) != 1 || *lu.Uploads[0].UploadId != *mp.UploadId {
			t.Fatalf("ListMultipartUploads: %v %+v", err, lu)
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), UploadId: mp.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(2), ETag: up2.CopyPartResult.ETag}, {PartNumber: aws.Int32(1), ETag: up1.ETag}}}})
		wantAPIError(t, err, "InvalidPartOrder")
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), UploadId: mp.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"00000000000000000000000000000000"`)}}}})
		wantAPIError(t, err, "InvalidPart")
		done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), UploadId: mp.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up1.ETag}, {PartNumber: aws.Int32(2), ETag: up2.CopyPartResult.ETag}}}})
		if err != nil || !strings.HasSuffix(*done.ETag, `-2"`) {
			t.Fatalf("CompleteMultipartUpload: %v %+v", err, done)
		}
		big, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), Range: aws.String("bytes=5242878-")})
		if err != nil {
			t.Fatalf("GetObject big: %v", err)
		}
		got, _ = io.ReadAll(big.Body)
		big.Body.Close()
		if string(got) != "aahello" || *big.ContentType != "application/x-big" {
			t.Fatalf("multipart object tail %q, type %s", got, *big.ContentType)
		}
		_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("big"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("late")})
		wantAPIError(t, err, "NoSuchUpload")

		// abort
		mp2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("aborted")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("aborted"), UploadId: mp2.UploadId}); err != nil {
			t.Fatalf("AbortMultipartUpload: %v", err)
		}
		_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("aborted"), UploadId: mp2.UploadId})
		wantAPIError(t, err, "NoSuchUpload")

		_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("sdk-bucket")})
		wantAPIError(t, err, "BucketNotEmpty")

		// presigned GET through the SDK presigner
		ps := s3.NewPresignClient(c)
		req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sdk-bucket"), Key: aws.String("dir/héllo wörld.txt")}, s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.srv.Client().Get(req.URL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("SDK presigned GET: %d %q", resp.StatusCode, got)
		}
	})
}

func TestAWSSDKVirtualHost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// every <bucket>.s3.test name is dialled to the test server
		_, port, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
		endpoint := "http://" + testRootDomain + ":" + port
		c := e.awsClient(false, dialTo(e.srv.Listener.Addr().String()), endpoint)
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vhost-bucket")}); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost-bucket"), Key: aws.String("a/b c"), Body: strings.NewReader("vh")}); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("vhost-bucket")})
		if err != nil || len(out.Contents) != 1 || *out.Contents[0].Key != "a/b c" {
			t.Fatalf("ListObjectsV2: %v %+v", err, out)
		}
		if !e.exists("vhost-bucket", "a/b c") {
			t.Fatal("object not stored under the virtual-host bucket")
		}
	})
}

func TestMinioClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		mc, err := minio.New(strings.TrimPrefix(e.srv.URL, "http://"), &minio.Options{
			Creds: miniocreds.NewStaticV4(testKeyID, testSecret, ""), Region: testRegion, BucketLookup: minio.BucketLookupPath,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.MakeBucket(ctx, "minio-bucket", minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("MakeBucket: %v", err)
		}
		ok, err := mc.BucketExists(ctx, "minio-bucket")
		if err != nil || !ok {
			t.Fatalf("BucketExists: %v %v", ok, err)
		}
		small := []byte("small minio object")
		if _, err := mc.PutObject(ctx, "minio-bucket", "s p/ace.txt", bytes.NewReader(small), int64(len(small)),
			minio.PutObjectOptions{ContentType: "text/plain", UserMetadata: map[string]string{"Tag": "v1"}}); err != nil {
			t.Fatalf("PutObject small: %v", err)
		}
		// 11 MiB with 5 MiB parts: a multipart upload
		big := bytes.Repeat([]byte("0123456789abcdef"), 11<<16)
		info, err := mc.PutObject(ctx, "minio-bucket", "big.bin", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20})
		if err != nil {
			t.Fatalf("PutObject multipart: %v", err)
		}
		if !strings.HasSuffix(info.ETag, "-3") {
			t.Fatalf("multipart ETag %q", info.ETag)
		}
		obj, err := mc.GetObject(ctx, "minio-bucket", "big.bin", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("GetObject big: %v, %d bytes", err, len(got))
		}
		st, err := mc.StatObject(ctx, "minio-bucket", "s p/ace.txt", minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(small)) || st.ContentType != "text/plain" || st.UserMetadata["Tag"] != "v1" {
			t.Fatalf("StatObject: %v %+v", err, st)
		}
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "minio-bucket", Object: "copy"}, minio.CopySrcOptions{Bucket: "minio-bucket", Object: "s p/ace.txt"}); err != nil {
			t.Fatalf("CopyObject: %v", err)
		}
		var names []string
		for o := range mc.ListObjects(ctx, "minio-bucket", minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatalf("ListObjects: %v", o.Err)
			}
			names = append(names, o.Key)
		}
		if strings.Join(names, ",") != "big.bin,copy,s p/ace.txt" {
			t.Fatalf("ListObjects: %v", names)
		}
		objs := make(chan minio.ObjectInfo, 3)
		for _, n := range names {
			objs <- minio.ObjectInfo{Key: n}
		}
		close(objs)
		for r := range mc.RemoveObjects(ctx, "minio-bucket", objs, minio.RemoveObjectsOptions{}) {
			t.Fatalf("RemoveObjects: %v", r.Err)
		}
		if e.modes["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"] == 0 {
			t.Errorf("minio-go sent no signed aws-chunked PUT (modes %v); the chunked path is not covered", e.modes)
		}
		if err := mc.RemoveBucket(ctx, "minio-bucket"); err != nil {
			t.Fatalf("RemoveBucket: %v", err)
		}
		_, err = mc.StatObject(ctx, "minio-bucket", "x", minio.StatObjectOptions{})
		if minio.ToErrorResponse(err).Code != "NoSuchBucket" && minio.ToErrorResponse(err).StatusCode != 404 {
			t.Fatalf("Stat after bucket removal: %v", err)
		}
	})
}

// Over TLS the SDK sends bodies as aws-chunked with a trailing checksum
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
func TestAWSSDKTrailingChecksum(t *testing.T) {
	for name, nb := range backends {
		t.Run(name, func(t *testing.T) {
			e := newEnvTLS(t, nb, true)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := e.awsClient(true, nil, "")
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tls-bucket")}); err != nil {
				t.Fatalf("CreateBucket: %v", err)
			}
			body := bytes.Repeat([]byte("trailer "), 100000)
			for _, algo := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256} {
				key := "obj-" + string(algo)
				put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tls-bucket"), Key: aws.String(key),
					Body: bytes.NewReader(body), ChecksumAlgorithm: algo})
				if err != nil {
					t.Fatalf("PutObject %s: %v", algo, err)
				}
				get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tls-bucket"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil {
					t.Fatalf("GetObject %s: %v", algo, err)
				}
				got, err := io.ReadAll(get.Body) // the SDK validates the returned checksum
				get.Body.Close()
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("GetObject %s: %v", algo, err)
				}
				sent := map[types.ChecksumAlgorithm]*string{types.ChecksumAlgorithmCrc32: put.ChecksumCRC32, types.ChecksumAlgorithmCrc32c: put.ChecksumCRC32C,
					types.ChecksumAlgorithmCrc64nvme: put.ChecksumCRC64NVME, types.ChecksumAlgorithmSha1: put.ChecksumSHA1, types.ChecksumAlgorithmSha256: put.ChecksumSHA256}[algo]
				if sent == nil || *sent == "" {
					t.Fatalf("PutObject %s: no checksum echoed", algo)
				}
			}
			// multipart with per-part CRC32 checksums, as the AWS CLI / boto3 now do
			mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("tls-bucket"), Key: aws.String("mp"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
			if err != nil {
				t.Fatalf("CreateMultipartUpload: %v", err)
			}
			var parts []types.CompletedPart
			var whole []byte
			for i, size := range []int{5 << 20, 1000} {
				data := bytes.Repeat([]byte{byte('a' + i)}, size)
				whole = append(whole, data...)
				up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("tls-bucket"), Key: aws.String("mp"), UploadId: mp.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
				if err != nil {
					t.Fatalf("UploadPart %d: %v", i+1, err)
				}
				if up.ChecksumCRC32 == nil {
					t.Fatalf("UploadPart %d: no CRC32 echoed", i+1)
				}
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32})
			}
			lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("tls-bucket"), Key: aws.String("mp"), UploadId: mp.UploadId})
			if err != nil || len(lp.Parts) != 2 || lp.Parts[0].ChecksumCRC32 == nil || *lp.Parts[0].ChecksumCRC32 != *parts[0].ChecksumCRC32 {
				t.Fatalf("ListParts checksums: %v %+v", err, lp)
			}
			if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("tls-bucket"), Key: aws.String("mp"), UploadId: mp.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
				t.Fatalf("CompleteMultipartUpload: %v", err)
			}
			get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tls-bucket"), Key: aws.String("mp"), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatalf("GetObject multipart: %v", err)
			}
			got, err := io.ReadAll(get.Body)
			get.Body.Close()
			if err != nil || !bytes.Equal(got, whole) {
				t.Fatalf("GetObject multipart: %v (%d bytes)", err, len(got))
			}
			if e.modes["STREAMING-UNSIGNED-PAYLOAD-TRAILER"] == 0 {
				t.Fatalf("the SDK sent no trailer-checksum PUT (modes %v)", e.modes)
			}
		})
	}
}
