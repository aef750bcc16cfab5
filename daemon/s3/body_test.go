package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/entrepot/entrepot/daemon/model"
)

// Test vectors for "hello world" from aws-sdk-go-v2
// service/internal/checksum/algorithms_test.go.
var helloChecksums = map[string]string{
	algoCRC32:     "DUoRhQ==",
	algoCRC32C:    "yZRlqg==",
	algoCRC64NVME: "jSnVw/bqjr4=",
	algoSHA1:      "Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
	algoSHA256:    "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
}

func md5b64(s string) string {
	sum := md5.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestChecksumVectors(t *testing.T) {
	hs := newHashes()
	for algo, want := range helloChecksums {
		h := hs.new(algo)
		io.WriteString(h, "hello world")
		if got := base64.StdEncoding.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("%s = %s, want %s", algo, got, want)
		}
	}
}

func TestBodyVerifier(t *testing.T) {
	const body = "hello world"
	hs := newHashes()
	cases := []struct {
		name     string
		headers  map[string]string
		trailer  http.Header
		expected int64
		limit    int64
		body     io.Reader
		setupErr ErrorCode
		readErr  ErrorCode
		algo     string
	}{
		{name: "plain", expected: 11},
		{name: "unknown length", expected: -1},
		{name: "content-md5 ok", headers: map[string]string{"Content-Md5": md5b64(body)}, expected: 11},
		{name: "content-md5 mismatch", headers: map[string]string{"Content-Md5": md5b64("other")}, expected: 11, readErr: CodeBadDigest},
		{name: "content-md5 malformed", headers: map[string]string{"Content-Md5": "nope"}, setupErr: CodeInvalidDigest},
		{name: "content-md5 wrong length", headers: map[string]string{"Content-Md5": "AAAA"}, setupErr: CodeInvalidDigest},
		{name: "crc32 header ok", headers: map[string]string{"X-Amz-Checksum-Crc32": helloChecksums[algoCRC32]}, expected: 11, algo: algoCRC32},
		{name: "crc64nvme header ok", headers: map[string]string{"X-Amz-Checksum-Crc64nvme": helloChecksums[algoCRC64NVME]}, expected: 11, algo: algoCRC64NVME},
		{name: "sha256 header mismatch", headers: map[string]string{"X-Amz-Checksum-Sha256": helloChecksums[algoSHA1][:0] + "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzeo="}, expected: 11, readErr: CodeBadDigest},
		{name: "crc32 header malformed", headers: map[string]string{"X-Amz-Checksum-Crc32": "!!"}, setupErr: CodeInvalidRequest},
		{name: "two checksum headers", headers: map[string]string{"X-Amz-Checksum-Crc32": helloChecksums[algoCRC32], "X-Amz-Checksum-Sha1": helloChecksums[algoSHA1]}, setupErr: CodeInvalidRequest},
		{name: "trailer ok", headers: map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32c"}, trailer: http.Header{"X-Amz-Checksum-Crc32c": {helloChecksums[algoCRC32C]}}, expected: 11, algo: algoCRC32C},
		{name: "trailer mismatch", headers: map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32c"}, trailer: http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}}, expected: 11, readErr: CodeBadDigest},
		{name: "sdk algorithm only", headers: map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "sha1"}, expected: 11, algo: algoSHA1},
		{name: "sdk algorithm unknown", headers: map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "md4"}, setupErr: CodeInvalidRequest},
		{name: "short body", expected: 12, readErr: CodeIncompleteBody},
		{name: "long body", expected: 5, readErr: CodeIncompleteBody},
		{name: "truncated connection", expected: 11, body: io.MultiReader(strings.NewReader("hello"), iotest.ErrReader(io.ErrUnexpectedEOF)), readErr: CodeIncompleteBody},
		{name: "announced too large", expected: 100, limit: 10, setupErr: CodeEntityTooLarge},
		{name: "streamed too large", expected: -1, limit: 10, readErr: CodeEntityTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.headers {
				h.Set(k, v)
			}
			var tr func() http.Header
			if c.trailer != nil {
				tr = func() http.Header { return c.trailer }
			}
			src := c.body
			if src == nil {
				src = strings.NewReader(body)
			}
			limit := c.limit
			if limit == 0 {
				limit = -1
			}
			bv, err := hs.newBodyVerifier(h, src, tr, bodyOptions{expected: c.expected, limit: limit, tooLarge: apiErr(CodeEntityTooLarge, "")})
			if c.setupErr != "" {
				if toAPIError(err, false).Code != c.setupErr {
					t.Fatalf("setup err %v, want %s", err, c.setupErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("setup: %v", err)
			}
			got, err := io.ReadAll(bv)
			if c.readErr != "" {
				if toAPIError(err, false).Code != c.readErr {
					t.Fatalf("read err %v, want %s", err, c.readErr)
				}
				if c.readErr == CodeBadDigest && !errors.Is(err, model.ErrBadDigest) {
					t.Fatalf("BadDigest does not wrap model.ErrBadDigest: %v", err)
				}
				return
			}
			if err != nil || string(got) != body {
				t.Fatalf("read %q, %v", got, err)
			}
			sums := bv.Sums()
			want := md5.Sum([]byte(body))
			if !bytes.Equal(sums.MD5, want[:]) {
				t.Fatalf("md5 %x", sums.MD5)
			}
			if c.algo != "" && sums.Checksums[c.algo] != helloChecksums[c.algo] {
				t.Fatalf("checksums %v", sums.Checksums)
			}
			if c.algo == "" && len(sums.Checksums) != 0 {
				t.Fatalf("unexpected checksums %v", sums.Checksums)
			}
		})
	}
}

func TestHeadersFromRequest(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Encoding", "aws-chunked,gzip")
	h.Set("X-Amz-Meta-Color", "Blue")
	h["X-AMZ-META-Mixed-Case"] = []string{"v"}
	got, err := headersFromRequest(h)
	if err != nil {
		t.Fatal(err)
	}
	if got.ContentType != "text/plain" || got.ContentEncoding != "gzip" || got.UserMeta["color"] != "Blue" || got.UserMeta["mixed-case"] != "v" {
		t.Fatalf("got %+v", got)
	}
	h.Set("X-Amz-Meta-Big", strings.Repeat("x", maxUserMeta))
	if _, err := headersFromRequest(h); toAPIError(err, false).Code != CodeMetadataTooLarge {
		t.Fatalf("big metadata: %v", err)
	}
}

func TestErrorTableComplete(t *testing.T) {
	for code, ci := range errorTable {
		if ci.status < 300 || ci.status > 599 || ci.message == "" {
			t.Errorf("%s: bad row %+v", code, ci)
		}
	}
	if (&Error{Code: "Nope"}).Status() != 500 {
		t.Error("unknown code is not 500")
	}
	// every code toAPIError can produce has a row
	for _, err := range []error{ErrNotImplemented, ErrMethodNotAllowed, ErrInvalidPartNumber, ErrInvalidURI, ErrInvalidArgument,
		errXML, errBodyTooLarge, errRangeNotSatisfiable, model.ErrNoSuchBucket, model.ErrBucketAlreadyExists,
		model.ErrBucketAlreadyOwnedByYou, model.ErrBucketNotEmpty, model.ErrInvalidBucketName, model.ErrNoSuchKey,
		model.ErrKeyTooLong, model.ErrNoSuchUpload, model.ErrInvalidPart, model.ErrInvalidPartOrder, model.ErrEntityTooSmall,
		model.ErrEntityTooLarge, model.ErrPreconditionFailed, model.ErrNoSuchAccessKey, model.ErrInvalidArgument, model.ErrBadDigest} {
		ae := toAPIError(err, false)
		if _, ok := errorTable[ae.Code]; !ok || ae.Code == CodeInternalError {
			t.Errorf("%v maps to %s", err, ae.Code)
		}
	}
}
