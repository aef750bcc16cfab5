package s3e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestPutGetHeadDelete(t *testing.T) {
	bucket := newBucket(t)
	cases := []struct {
		name string
		key  string
		size int
	}{
		{name: "empty", key: "empty", size: 0},
		{name: "one byte", key: "one", size: 1},
		{name: "inline", key: "small/inline.bin", size: 3000},
		{name: "one block and one byte", key: "blocks/1MiB+1", size: 1<<20 + 1},
		{name: "several blocks", key: "blocks/5MiB", size: 5<<20 + 12345},
		{name: "odd key", key: "dir/sub dir/ä+%#?&=.txt", size: 100},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			cl := client()
			body := payload(tc.size, uint64(i))
			out := put(t, bucket, tc.key, body)
			if got, want := aws.ToString(out.ETag), quoted(md5hex(body)); got != want {
				t.Errorf("put ETag %s, want %s", got, want)
			}
			mustEqualBytes(t, "get", get(t, bucket, tc.key), body)
			h, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(tc.key)})
			if err != nil {
				t.Fatalf("head: %v", err)
			}
			if aws.ToInt64(h.ContentLength) != int64(tc.size) || aws.ToString(h.ETag) != quoted(md5hex(body)) {
				t.Errorf("head: length %d etag %s", aws.ToInt64(h.ContentLength), aws.ToString(h.ETag))
			}
			if h.LastModified == nil || time.Since(*h.LastModified) > 5*time.Minute {
				t.Errorf("head: last modified %v", h.LastModified)
			}
			if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(tc.key)}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err = cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(tc.key)})
			wantErr(t, "get deleted", err, http.StatusNotFound, "NoSuchKey")
			headMissing(t, bucket, tc.key)
			// Deleting an absent key succeeds (204).
			if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(tc.key)}); err != nil {
				t.Fatalf("delete absent: %v", err)
			}
		})
	}
}

func TestOverwrite(t *testing.T) {
	bucket := newBucket(t)
	put(t, bucket, "k", payload(2<<20, 1))
	second := payload(1000, 2)
	put(t, bucket, "k", second)
	mustEqualBytes(t, "after overwrite", get(t, bucket, "k"), second)
}

func TestMetadataAndContentHeaders(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	_, err := cl.PutObject(ctx, &s3.PutObjectInput{
		Bucket:             aws.String(bucket),
		Key:                aws.String("doc.html"),
		Body:               strings.NewReader("<p>hi</p>"),
		ContentType:        aws.String("text/html; charset=utf-8"),
		CacheControl:       aws.String("max-age=60"),
		ContentDisposition: aws.String(`attachment; filename="doc.html"`),
		ContentLanguage:    aws.String("fr"),
		ContentEncoding:    aws.String("identity"),
		Expires:            aws.Time(expires),
		Metadata:           map[string]string{"color": "blue", "Multi-Word": "x y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, ct, cc, cd, clang, ce *string, exp *string, meta map[string]string) {
		t.Helper()
		got := map[string]string{
			"content-type": aws.ToString(ct), "cache-control": aws.ToString(cc), "content-disposition": aws.ToString(cd),
			"content-language": aws.ToString(clang), "content-encoding": aws.ToString(ce),
			"meta color": meta["color"], "meta multi-word": meta["multi-word"],
		}
		want := map[string]string{
			"content-type": "text/html; charset=utf-8", "cache-control": "max-age=60", "content-disposition": `attachment; filename="doc.html"`,
			"content-language": "fr", "content-encoding": "identity", "meta color": "blue", "meta multi-word": "x y",
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s = %q, want %q", what, k, got[k], w)
			}
		}
		if exp == nil {
			t.Errorf("%s: no Expires header", what)
		} else if e, err := http.ParseTime(*exp); err != nil || !e.Equal(expires) {
			t.Errorf("%s: Expires %q, want %v", what, *exp, expires)
		}
	}
	h, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc.html")})
	if err != nil {
		t.Fatal(err)
	}
	check("head", h.ContentType, h.CacheControl, h.ContentDisposition, h.ContentLanguage, h.ContentEncoding, h.ExpiresString, h.Metadata)
	g, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc.html")})
	if err != nil {
		t.Fatal(err)
	}
	g.Body.Close()
	check("get", g.ContentType, g.CacheControl, g.ContentDisposition, g.ContentLanguage, g.ContentEncoding, g.ExpiresString, g.Metadata)

	// response-* query parameters override headers on GET.
	g, err = cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc.html"),
		ResponseContentType: aws.String("text/plain"), ResponseCacheControl: aws.String("no-store")})
	if err != nil {
		t.Fatal(err)
	}
	g.Body.Close()
	if aws.ToString(g.ContentType) != "text/plain" || aws.ToString(g.CacheControl) != "no-store" {
		t.Errorf("response overrides: content-type %q cache-control %q", aws.ToString(g.ContentType), aws.ToString(g.CacheControl))
	}
}

func TestRangeGet(t *testing.T) {
	bucket := newBucket(t)
	body := payload(3<<20+100, 7) // spans several blocks
	put(t, bucket, "r", body)
	size := len(body)
	cases := []struct {
		name       string
		rng        string
		start, end int // inclusive
	}{
		{name: "first bytes", rng: "bytes=0-99", start: 0, end: 99},
		{name: "across a block boundary", rng: "bytes=1048000-1049000", start: 1048000, end: 1049000},
		{name: "open end", rng: fmt.Sprintf("bytes=%d-", size-10), start: size - 10, end: size - 1},
		{name: "suffix", rng: "bytes=-50", start: size - 50, end: size - 1},
		{name: "end past size", rng: fmt.Sprintf("bytes=%d-%d", size-5, size+1000), start: size - 5, end: size - 1},
		{name: "whole", rng: "bytes=0-", start: 0, end: size - 1},
	}
	cl := client()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := cl.GetObject(ctxT(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("r"), Range: aws.String(tc.rng)})
			if err != nil {
				t.Fatal(err)
			}
			defer out.Body.Close()
			got, err := io.ReadAll(out.Body)
			if err != nil {
				t.Fatal(err)
			}
			mustEqualBytes(t, tc.rng, got, body[tc.start:tc.end+1])
			if want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, size); aws.ToString(out.ContentRange) != want {
				t.Errorf("Content-Range %q, want %q", aws.ToString(out.ContentRange), want)
			}
		})
	}
	// The raw status of a range answer is 206.
	r := rawSigned(t, http.MethodGet, bucket, "r", nil, nil, map[string]string{"Range": "bytes=0-0"})
	if r.Status != http.StatusPartialContent || len(r.Body) != 1 {
		t.Fatalf("range status %d with %d bytes, want 206 with 1", r.Status, len(r.Body))
	}
	for _, bad := range []string{fmt.Sprintf("bytes=%d-", size), fmt.Sprintf("bytes=%d-%d", size+10, size+20)} {
		before := snapshot(t, bucket)
		_, err := cl.GetObject(ctxT(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("r"), Range: aws.String(bad)})
		wantErr(t, "range "+bad, err, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
		unchanged(t, "unsatisfiable range", bucket, before)
	}
}

func TestConditionalRequests(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	body := payload(5000, 3)
	etag := aws.ToString(put(t, bucket, "c", body).ETag)
	past, future := time.Now().Add(-24*time.Hour), time.Now().Add(24*time.Hour)

	type cond struct {
		ifMatch, ifNoneMatch string
		ifMod, ifUnmod       *time.Time
	}
	cases := []struct {
		name   string
		c      cond
		status int // 200, 304 or 412
	}{
		{name: "if-match same", c: cond{ifMatch: etag}, status: 200},
		{name: "if-match star", c: cond{ifMatch: "*"}, status: 200},
		{name: "if-match other", c: cond{ifMatch: `"0123456789abcdef0123456789abcdef"`}, status: 412},
		{name: "if-none-match same", c: cond{ifNoneMatch: etag}, status: 304},
		{name: "if-none-match other", c: cond{ifNoneMatch: `"0123456789abcdef0123456789abcdef"`}, status: 200},
		{name: "if-modified-since past", c: cond{ifMod: &past}, status: 200},
		{name: "if-modified-since future", c: cond{ifMod: &future}, status: 304},
		{name: "if-unmodified-since future", c: cond{ifUnmod: &future}, status: 200},
		{name: "if-unmodified-since past", c: cond{ifUnmod: &past}, status: 412},
		{name: "if-match wins over if-unmodified-since", c: cond{ifMatch: etag, ifUnmod: &past}, status: 200},
		{name: "if-none-match wins over if-modified-since", c: cond{ifNoneMatch: `"0123456789abcdef0123456789abcdef"`, ifMod: &future}, status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("c"), IfModifiedSince: tc.c.ifMod, IfUnmodifiedSince: tc.c.ifUnmod}
			hin := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("c"), IfModifiedSince: tc.c.ifMod, IfUnmodifiedSince: tc.c.ifUnmod}
			if tc.c.ifMatch != "" {
				in.IfMatch, hin.IfMatch = aws.String(tc.c.ifMatch), aws.String(tc.c.ifMatch)
			}
			if tc.c.ifNoneMatch != "" {
				in.IfNoneMatch, hin.IfNoneMatch = aws.String(tc.c.ifNoneMatch), aws.String(tc.c.ifNoneMatch)
			}
			out, err := cl.GetObject(ctx, in)
			_, herr := cl.HeadObject(ctx, hin)
			switch tc.status {
			case 200:
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				b, _ := io.ReadAll(out.Body)
				out.Body.Close()
				mustEqualBytes(t, "conditional get", b, body)
				if herr != nil {
					t.Fatalf("head: %v", herr)
				}
			case 304:
				if _, st, _ := apiErr(err); st != http.StatusNotModified {
					t.Fatalf("get: %v, want 304", err)
				}
				if _, st, _ := apiErr(herr); st != http.StatusNotModified {
					t.Fatalf("head: %v, want 304", herr)
				}
			case 412:
				wantErr(t, "get", err, http.StatusPreconditionFailed, "PreconditionFailed")
				if _, st, _ := apiErr(herr); st != http.StatusPreconditionFailed {
					t.Fatalf("head: %v, want 412", herr)
				}
			}
		})
	}

	// PUT with If-None-Match: * creates only when absent.
	before := snapshot(t, bucket)
	_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("c"), Body: strings.NewReader("replacement"), IfNoneMatch: aws.String("*")})
	wantErr(t, "put if-none-match * on existing", err, http.StatusPreconditionFailed, "PreconditionFailed")
	unchanged(t, "refused conditional put", bucket, before)
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("new"), Body: strings.NewReader("fresh"), IfNoneMatch: aws.String("*")}); err != nil {
		t.Fatalf("put if-none-match * on absent key: %v", err)
	}
	mustEqualBytes(t, "conditional create", get(t, bucket, "new"), []byte("fresh"))
}

func TestContentMD5AndChecksums(t *testing.T) {
	bucket := newBucket(t)
	ctx := ctxT(t)
	cl := client()
	body := payload(70000, 11)
	sum := md5.Sum(body)

	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("md5"), Body: bytes.NewReader(body),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))}); err != nil {
		t.Fatalf("put with right Content-MD5: %v", err)
	}
	algos := []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha1,
		types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmCrc64nvme}
	for _, a := range algos {
		t.Run(string(a), func(t *testing.T) {
			key := "sum-" + string(a)
			if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), ChecksumAlgorithm: a}); err != nil {
				t.Fatalf("put with SDK-computed %s: %v", a, err)
			}
			out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(out.Body) // the SDK validates a returned checksum here
			out.Body.Close()
			if err != nil {
				t.Fatalf("read with checksum validation: %v", err)
			}
			mustEqualBytes(t, "get", got, body)
		})
	}
}

// TestVersionIDNull: on an unversioned bucket S3 serves versionId=null as
// the current object; rclone sends HEAD ?versionId=null after every
// multipart upload.
func TestVersionIDNull(t *testing.T) {
	bucket := newBucket(t)
	body := payload(1234, 141)
	put(t, bucket, "v", body)
	q := map[string][]string{"versionId": {"null"}}
	r := rawSigned(t, http.MethodHead, bucket, "v", q, nil, nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Length") != "1234" {
		t.Fatalf("HEAD ?versionId=null: %d, length %q", r.Status, r.Header.Get("Content-Length"))
	}
	r = rawSigned(t, http.MethodGet, bucket, "v", q, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET ?versionId=null: %d %s", r.Status, r.Body)
	}
	mustEqualBytes(t, "GET ?versionId=null", r.Body, body)
}
