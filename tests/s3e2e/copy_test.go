package s3e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func copySource(bucket, key string) *string {
	return aws.String(bucket + "/" + url.PathEscape(key))
}

func TestCopyObject(t *testing.T) {
	src := newBucket(t)
	dst := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	body := payload(2<<20+33, 21)
	srcKey := "src dir/ü key"
	_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(src), Key: aws.String(srcKey), Body: strings.NewReader(string(body)),
		ContentType: aws.String("application/x-test"), Metadata: map[string]string{"origin": "src"}})
	if err != nil {
		t.Fatal(err)
	}
	srcETag := quoted(md5hex(body))

	t.Run("metadata directive COPY", func(t *testing.T) {
		out, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String("copy"), CopySource: copySource(src, srcKey)})
		if err != nil {
			t.Fatal(err)
		}
		if out.CopyObjectResult == nil || aws.ToString(out.CopyObjectResult.ETag) != srcETag {
			t.Errorf("copy result %+v, want ETag %s", out.CopyObjectResult, srcETag)
		}
		mustEqualBytes(t, "copied bytes", get(t, dst, "copy"), body)
		h, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(dst), Key: aws.String("copy")})
		if err != nil {
			t.Fatal(err)
		}
		if h.Metadata["origin"] != "src" || aws.ToString(h.ContentType) != "application/x-test" {
			t.Errorf("copied metadata %v content-type %q", h.Metadata, aws.ToString(h.ContentType))
		}
	})
	t.Run("metadata directive REPLACE", func(t *testing.T) {
		_, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String("replaced"), CopySource: copySource(src, srcKey),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"origin": "replaced"}, ContentType: aws.String("text/plain")})
		if err != nil {
			t.Fatal(err)
		}
		h, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(dst), Key: aws.String("replaced")})
		if err != nil {
			t.Fatal(err)
		}
		if h.Metadata["origin"] != "replaced" || aws.ToString(h.ContentType) != "text/plain" {
			t.Errorf("replaced metadata %v content-type %q", h.Metadata, aws.ToString(h.ContentType))
		}
		mustEqualBytes(t, "replaced bytes", get(t, dst, "replaced"), body)
	})
	t.Run("in place with REPLACE", func(t *testing.T) {
		_, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String("copy"), CopySource: copySource(dst, "copy"),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"origin": "self"}})
		if err != nil {
			t.Fatal(err)
		}
		mustEqualBytes(t, "self copy", get(t, dst, "copy"), body)
	})

	past, future := time.Now().Add(-24*time.Hour), time.Now().Add(24*time.Hour)
	refused := []struct {
		name string
		in   s3.CopyObjectInput
	}{
		{name: "if-match other", in: s3.CopyObjectInput{CopySourceIfMatch: aws.String(`"00000000000000000000000000000000"`)}},
		{name: "if-none-match same", in: s3.CopyObjectInput{CopySourceIfNoneMatch: aws.String(srcETag)}},
		{name: "if-modified-since future", in: s3.CopyObjectInput{CopySourceIfModifiedSince: &future}},
		{name: "if-unmodified-since past", in: s3.CopyObjectInput{CopySourceIfUnmodifiedSince: &past}},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.name, func(t *testing.T) {
			before := snapshot(t, dst)
			in := tc.in
			in.Bucket, in.Key, in.CopySource = aws.String(dst), aws.String("cond"), copySource(src, srcKey)
			_, err := cl.CopyObject(ctx, &in)
			wantErr(t, "conditional copy", err, http.StatusPreconditionFailed, "PreconditionFailed")
			unchanged(t, "refused copy", dst, before)
		})
	}
	t.Run("accepted conditions", func(t *testing.T) {
		_, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String("cond-ok"), CopySource: copySource(src, srcKey),
			CopySourceIfMatch: aws.String(srcETag), CopySourceIfUnmodifiedSince: &future})
		if err != nil {
			t.Fatal(err)
		}
		mustEqualBytes(t, "conditional copy", get(t, dst, "cond-ok"), body)
	})
	t.Run("missing source", func(t *testing.T) {
		before := snapshot(t, dst)
		_, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst), Key: aws.String("nope"), CopySource: copySource(src, "absent")})
		wantErr(t, "copy of a missing key", err, http.StatusNotFound, "NoSuchKey")
		unchanged(t, "failed copy", dst, before)
	})
	t.Run("source survives deletion of the copy", func(t *testing.T) {
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(dst), Key: aws.String("replaced")}); err != nil {
			t.Fatal(err)
		}
		mustEqualBytes(t, "source after copy deleted", get(t, src, srcKey), body)
	})
}

func TestDeleteObjects(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	for _, k := range []string{"a", "b", "c", "d", "e/f"} {
		put(t, bucket, k, []byte(k))
	}
	out, err := cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("a")}, {Key: aws.String("c")}, {Key: aws.String("e/f")}, {Key: aws.String("never-existed")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	if len(out.Errors) != 0 || len(deleted) != 4 {
		t.Fatalf("deleted %v errors %+v, want 4 deleted (absent keys count) and no errors", deleted, out.Errors)
	}
	// Quiet mode reports no successes.
	out, err = cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("d")}}, Quiet: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Errorf("quiet delete listed %d deleted, %d errors", len(out.Deleted), len(out.Errors))
	}
	st := snapshot(t, bucket)
	if len(st.objects) != 1 || st.objects["b"] == "" {
		t.Fatalf("after DeleteObjects: %v, want only b", st)
	}
}
