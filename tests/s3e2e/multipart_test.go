package s3e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const mib = 1 << 20

// multipartETag is hex(md5(concat(md5(part_i)))) + "-N".
func multipartETag(parts ...[]byte) string {
	var cat []byte
	for _, p := range parts {
		s := md5.Sum(p)
		cat = append(cat, s[:]...)
	}
	s := md5.Sum(cat)
	return quoted(fmt.Sprintf("%s-%d", hex.EncodeToString(s[:]), len(parts)))
}

func createUpload(t *testing.T, bucket, key string) string {
	t.Helper()
	out, err := client().CreateMultipartUpload(ctxT(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		ContentType: aws.String("application/x-mp"), Metadata: map[string]string{"mp": "yes"}})
	if err != nil {
		t.Fatalf("create upload: %v", err)
	}
	if aws.ToString(out.UploadId) == "" {
		t.Fatal("empty upload id")
	}
	return aws.ToString(out.UploadId)
}

func uploadPart(t *testing.T, bucket, key, id string, n int32, body []byte) types.CompletedPart {
	t.Helper()
	out, err := client().UploadPart(ctxT(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id),
		PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("upload part %d: %v", n, err)
	}
	if aws.ToString(out.ETag) != quoted(md5hex(body)) {
		t.Errorf("part %d ETag %s, want %s", n, aws.ToString(out.ETag), quoted(md5hex(body)))
	}
	return types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag}
}

func complete(bucket, key, id string, parts ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
	return client().CompleteMultipartUpload(context.Background(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: aws.String(id), MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
}

func TestMultipartUpload(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	p1, p2, p3 := payload(5*mib, 31), payload(5*mib+7, 32), payload(1000, 33)
	id := createUpload(t, bucket, "mp/obj")
	other := createUpload(t, bucket, "other")

	c2 := uploadPart(t, bucket, "mp/obj", id, 2, payload(5*mib, 99)) // replaced below
	c1 := uploadPart(t, bucket, "mp/obj", id, 1, p1)
	c2 = uploadPart(t, bucket, "mp/obj", id, 2, p2)
	c3 := uploadPart(t, bucket, "mp/obj", id, 3, p3)
	_ = c2

	lp, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("mp/obj"), UploadId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, p := range lp.Parts {
		sizes = append(sizes, aws.ToInt64(p.Size))
	}
	if !slices.Equal(sizes, []int64{5 * mib, 5*mib + 7, 1000}) || aws.ToString(lp.Parts[1].ETag) != quoted(md5hex(p2)) {
		t.Fatalf("ListParts sizes %v (re-uploaded part 2 must replace the first)", sizes)
	}
	// ListParts paging.
	lp, err = cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("mp/obj"), UploadId: aws.String(id), MaxParts: aws.Int32(1), PartNumberMarker: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToString(lp.NextPartNumberMarker) != "2" {
		t.Fatalf("ListParts page: %d parts, truncated %v, next %q", len(lp.Parts), aws.ToBool(lp.IsTruncated), aws.ToString(lp.NextPartNumberMarker))
	}

	lu, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var ups []string
	for _, u := range lu.Uploads {
		ups = append(ups, aws.ToString(u.Key)+"/"+aws.ToString(u.UploadId))
	}
	if !slices.Equal(ups, []string{"mp/obj/" + id, "other/" + other}) {
		t.Fatalf("uploads %v", ups)
	}
	lu, err = cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String("mp/")})
	if err != nil || len(lu.Uploads) != 1 {
		t.Fatalf("uploads with prefix: %v %v", lu, err)
	}
	lu, err = cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), MaxUploads: aws.Int32(1)})
	if err != nil || len(lu.Uploads) != 1 || !aws.ToBool(lu.IsTruncated) || aws.ToString(lu.NextKeyMarker) == "" {
		t.Fatalf("uploads page: %+v %v", lu, err)
	}
	lu, err = cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), MaxUploads: aws.Int32(1),
		KeyMarker: lu.NextKeyMarker, UploadIdMarker: lu.NextUploadIdMarker})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].Key) != "other" {
		t.Fatalf("uploads second page: %+v %v", lu, err)
	}

	// The object does not exist before Complete.
	headMissing(t, bucket, "mp/obj")
	out, err := complete(bucket, "mp/obj", id, c1, c2, c3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.ETag), multipartETag(p1, p2, p3); got != want {
		t.Errorf("multipart ETag %s, want %s", got, want)
	}
	whole := slices.Concat(p1, p2, p3)
	mustEqualBytes(t, "completed object", get(t, bucket, "mp/obj"), whole)
	h, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("mp/obj")})
	if err != nil {
		t.Fatal(err)
	}
	if h.Metadata["mp"] != "yes" || aws.ToString(h.ContentType) != "application/x-mp" || aws.ToInt64(h.ContentLength) != int64(len(whole)) {
		t.Errorf("completed object head: %v %q %d", h.Metadata, aws.ToString(h.ContentType), aws.ToInt64(h.ContentLength))
	}
	// A range across the part boundary.
	g, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("mp/obj"), Range: aws.String(fmt.Sprintf("bytes=%d-%d", 5*mib-10, 5*mib+10))})
	if err != nil {
		t.Fatal(err)
	}
	g.Body.Close()

	_, err = cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("mp/obj"), UploadId: aws.String(id)})
	wantErr(t, "list parts of a completed upload", err, http.StatusNotFound, "NoSuchUpload")

	// Abort the other one.
	uploadPart(t, bucket, "other", other, 1, p3)
	if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("other"), UploadId: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String("other"), UploadId: aws.String(other)})
	wantErr(t, "list parts of an aborted upload", err, http.StatusNotFound, "NoSuchUpload")
	_, err = cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("other"), UploadId: aws.String(other), PartNumber: aws.Int32(2), Body: bytes.NewReader(p3)})
	wantErr(t, "upload part to an aborted upload", err, http.StatusNotFound, "NoSuchUpload")
	headMissing(t, bucket, "other")
	if st := snapshot(t, bucket); len(st.uploads) != 0 {
		t.Fatalf("uploads left: %v", st.uploads)
	}
}

func TestMultipartCompleteErrors(t *testing.T) {
	bucket := newBucket(t)
	small, big := payload(1000, 41), payload(5*mib, 42)
	id := createUpload(t, bucket, "k")
	c1 := uploadPart(t, bucket, "k", id, 1, small)
	c2 := uploadPart(t, bucket, "k", id, 2, big)
	c3 := uploadPart(t, bucket, "k", id, 3, small)
	wrong := types.CompletedPart{PartNumber: aws.Int32(2), ETag: aws.String(`"0123456789abcdef0123456789abcdef"`)}
	missing := types.CompletedPart{PartNumber: aws.Int32(4), ETag: c3.ETag}
	cases := []struct {
		name  string
		parts []types.CompletedPart
		code  string
	}{
		{name: "out of order", parts: []types.CompletedPart{c2, c1}, code: "InvalidPartOrder"},
		{name: "wrong etag", parts: []types.CompletedPart{wrong}, code: "InvalidPart"},
		{name: "unknown part", parts: []types.CompletedPart{c2, missing}, code: "InvalidPart"},
		{name: "small part before the last", parts: []types.CompletedPart{c1, c2, c3}, code: "EntityTooSmall"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, bucket)
			_, err := complete(bucket, "k", id, tc.parts...)
			wantErr(t, "complete", err, http.StatusBadRequest, tc.code)
			unchanged(t, "refused complete", bucket, before)
		})
	}
	// The upload is still usable: completing with valid parts works.
	if _, err := complete(bucket, "k", id, c2, c3); err != nil {
		t.Fatalf("complete after refusals: %v", err)
	}
	mustEqualBytes(t, "completed", get(t, bucket, "k"), slices.Concat(big, small))
}

func TestUploadPartCopy(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	src := payload(11*mib+5, 51)
	put(t, bucket, "src", src)
	id := createUpload(t, bucket, "dst")
	var parts []types.CompletedPart
	ranges := [][2]int{{0, 5*mib - 1}, {5 * mib, 10*mib - 1}, {10 * mib, len(src) - 1}}
	for i, r := range ranges {
		out, err := cl.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("dst"), UploadId: aws.String(id),
			PartNumber: aws.Int32(int32(i + 1)), CopySource: copySource(bucket, "src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]))})
		if err != nil {
			t.Fatalf("upload part copy %d: %v", i+1, err)
		}
		if got, want := aws.ToString(out.CopyPartResult.ETag), quoted(md5hex(src[r[0]:r[1]+1])); got != want {
			t.Errorf("part copy %d ETag %s, want %s", i+1, got, want)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
	}
	// A whole-object part copy (no range) also works.
	id2 := createUpload(t, bucket, "dst2")
	out, err := cl.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("dst2"), UploadId: aws.String(id2),
		PartNumber: aws.Int32(1), CopySource: copySource(bucket, "src")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := complete(bucket, "dst2", id2, types.CompletedPart{PartNumber: aws.Int32(1), ETag: out.CopyPartResult.ETag}); err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "whole part copy", get(t, bucket, "dst2"), src)

	// A range outside the source is refused.
	before := snapshot(t, bucket)
	_, err = cl.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("dst"), UploadId: aws.String(id),
		PartNumber: aws.Int32(9), CopySource: copySource(bucket, "src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", len(src), len(src)+10))})
	wantErr(t, "part copy of a range past the end", err, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
	unchanged(t, "refused part copy", bucket, before)

	// Delete the source before completing: the parts must keep their data.
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("src")}); err != nil {
		t.Fatal(err)
	}
	if _, err := complete(bucket, "dst", id, parts...); err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "copied parts", get(t, bucket, "dst"), src)
}

func TestManagerUploadWithChecksums(t *testing.T) {
	bucket := newBucket(t)
	body := payload(12*mib+3, 61)
	up := manager.NewUploader(client(), func(u *manager.Uploader) { u.PartSize = 5 * mib; u.Concurrency = 3 })
	out, err := up.Upload(ctxT(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("managed"), Body: bytes.NewReader(body),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.ETag), multipartETag(body[:5*mib], body[5*mib:10*mib], body[10*mib:]); got != want {
		t.Errorf("ETag %s, want %s", got, want)
	}
	mustEqualBytes(t, "managed upload", get(t, bucket, "managed"), body)
	dl := manager.NewDownloader(client(), func(d *manager.Downloader) { d.PartSize = 2 * mib; d.Concurrency = 3 })
	buf := manager.NewWriteAtBuffer(make([]byte, 0, len(body)))
	if _, err := dl.Download(ctxT(t), buf, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("managed")}); err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "ranged parallel download", buf.Bytes(), body)
}
