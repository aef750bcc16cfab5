package s3e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/entrepot/entrepot/tests/harness"
)

func minioClient(t *testing.T) *minio.Client {
	t.Helper()
	mc, err := harness.Minio(cluster)
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func readMinio(t *testing.T, mc *minio.Client, bucket, key string, opts minio.GetObjectOptions) []byte {
	t.Helper()
	obj, err := mc.GetObject(ctxT(t), bucket, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func TestMinioClient(t *testing.T) {
	mc := minioClient(t)
	ctx := ctxT(t)
	bucket := "e2e-minio-" + md5hex([]byte(time.Now().String()))[:8]
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emptyAndDelete(t, bucket) })
	if ok, err := mc.BucketExists(ctx, bucket); err != nil || !ok {
		t.Fatalf("BucketExists %v %v", ok, err)
	}

	small := payload(2000, 111)
	big := payload(6*mib+3, 112)
	// Over plain HTTP minio-go signs every chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
	info, err := mc.PutObject(ctx, bucket, "small", bytes.NewReader(small), int64(len(small)),
		minio.PutObjectOptions{ContentType: "text/x-small", UserMetadata: map[string]string{"Owner": "minio"}})
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag != md5hex(small) {
		t.Errorf("ETag %s, want %s", info.ETag, md5hex(small))
	}
	if _, err := mc.PutObject(ctx, bucket, "dir/big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 16 * mib}); err != nil {
		t.Fatal(err)
	}
	// Unknown size: minio-go streams a multipart upload.
	if _, err := mc.PutObject(ctx, bucket, "dir/stream", io.NopCloser(bytes.NewReader(big)), -1, minio.PutObjectOptions{PartSize: 5 * mib}); err != nil {
		t.Fatal(err)
	}

	st, err := mc.StatObject(ctx, bucket, "small", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(small)) || st.ContentType != "text/x-small" || st.UserMetadata["Owner"] != "minio" {
		t.Errorf("stat: size %d type %q meta %v", st.Size, st.ContentType, st.UserMetadata)
	}
	mustEqualBytes(t, "minio get small", readMinio(t, mc, bucket, "small", minio.GetObjectOptions{}), small)
	mustEqualBytes(t, "minio get big", readMinio(t, mc, bucket, "dir/big", minio.GetObjectOptions{}), big)
	mustEqualBytes(t, "minio get streamed", readMinio(t, mc, bucket, "dir/stream", minio.GetObjectOptions{}), big)
	var ro minio.GetObjectOptions
	if err := ro.SetRange(1<<20-5, 1<<20+5); err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "minio range", readMinio(t, mc, bucket, "dir/big", ro), big[1<<20-5:1<<20+6])

	if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: "copy"}, minio.CopySrcOptions{Bucket: bucket, Object: "dir/big"}); err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "minio copy", readMinio(t, mc, bucket, "copy", minio.GetObjectOptions{}), big)
	// ComposeObject uses UploadPartCopy with ranges.
	if _, err := mc.ComposeObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: "composed"},
		minio.CopySrcOptions{Bucket: bucket, Object: "dir/big", MatchRange: true, Start: 0, End: 5*mib - 1},
		minio.CopySrcOptions{Bucket: bucket, Object: "small"}); err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "minio compose", readMinio(t, mc, bucket, "composed", minio.GetObjectOptions{}), append(bytes.Clone(big[:5*mib]), small...))

	var keys, top []string
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		top = append(top, o.Key)
	}
	slices.Sort(top) // minio-go yields a page's keys before its prefixes
	if !slices.Equal(keys, []string{"composed", "copy", "dir/big", "dir/stream", "small"}) || !slices.Equal(top, []string{"composed", "copy", "dir/", "small"}) {
		t.Fatalf("recursive %q, top level %q", keys, top)
	}
	var v1 []string
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, UseV1: true, Prefix: "dir/"}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		v1 = append(v1, o.Key)
	}
	if !slices.Equal(v1, []string{"dir/big", "dir/stream"}) {
		t.Fatalf("v1 listing %q", v1)
	}

	// Presigned GET and PUT through minio-go.
	pu, err := mc.PresignedPutObject(ctx, bucket, "presigned", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r := doURL(t, http.MethodPut, pu.String(), small); r.Status != http.StatusOK {
		t.Fatalf("presigned put: %d %s", r.Status, r.Body)
	}
	pg, err := mc.PresignedGetObject(ctx, bucket, "presigned", 5*time.Minute, url.Values{"response-content-type": {"application/x-presigned"}})
	if err != nil {
		t.Fatal(err)
	}
	r := doURL(t, http.MethodGet, pg.String(), nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-presigned" {
		t.Fatalf("presigned get: %d type %q", r.Status, r.Header.Get("Content-Type"))
	}
	mustEqualBytes(t, "presigned get", r.Body, small)

	// Bulk delete.
	objs := make(chan minio.ObjectInfo, 3)
	for _, k := range []string{"copy", "composed", "presigned"} {
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	for e := range mc.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
		t.Fatalf("remove %s: %v", e.ObjectName, e.Err)
	}
	if err := mc.RemoveObject(ctx, bucket, "small", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.StatObject(ctx, bucket, "small", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Fatalf("stat removed: %v", err)
	}
	if err := mc.RemoveBucket(ctx, bucket); minio.ToErrorResponse(err).Code != "BucketNotEmpty" {
		t.Fatalf("remove non-empty bucket: %v, want BucketNotEmpty", err)
	}
}

func TestMinioIncompleteUploads(t *testing.T) {
	mc := minioClient(t)
	bucket := newBucket(t)
	core := minio.Core{Client: mc}
	ctx := ctxT(t)
	id, err := core.NewMultipartUpload(ctx, bucket, "pending", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := payload(1000, 121)
	if _, err := core.PutObjectPart(ctx, bucket, "pending", id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	var found []string
	for u := range mc.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		found = append(found, u.Key+"/"+u.UploadID)
	}
	if !slices.Equal(found, []string{"pending/" + id}) {
		t.Fatalf("incomplete uploads %v", found)
	}
	if err := mc.RemoveIncompleteUpload(ctx, bucket, "pending"); err != nil {
		t.Fatal(err)
	}
	if st := snapshot(t, bucket); len(st.uploads) != 0 {
		t.Fatalf("uploads left: %v", st.uploads)
	}
}

// TestMinioTrailersOverTLS uses minio-go's unsigned trailer path (https).
func TestMinioTrailersOverTLS(t *testing.T) {
	bucket := newBucket(t)
	proxy, err := harness.NewTLSProxy(cluster.Node(0).Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	mc, err := harness.NewMinioClient(proxy.URL(), cluster.Credentials(), proxy.Client().Transport, true)
	if err != nil {
		t.Fatal(err)
	}
	body := payload(2*mib+9, 131)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ck := range []minio.ChecksumType{minio.ChecksumCRC32C, minio.ChecksumSHA256} {
		if _, err := mc.PutObject(ctx, bucket, "t-"+ck.String(), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{Checksum: ck}); err != nil {
			t.Fatalf("put with %s trailer: %v", ck, err)
		}
		mustEqualBytes(t, "trailer upload "+ck.String(), get(t, bucket, "t-"+ck.String()), body)
	}
}
