package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("0f", 32)
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/garage/s3/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"AWS4-ECDSA-P256-SHA256 Credential=x",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,Credential=,SignedHeaders=host;;x,Signature=" + sig,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAuthorization(header)
		if err != nil {
			if !errors.Is(err, ErrMalformedAuth) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if !validSignature(a.Signature) || a.AccessKeyID == "" || len(a.Date) != 8 || a.Region == "" || a.Service == "" {
			t.Fatalf("accepted invalid fields: %+v", a)
		}
		// Rendering the parsed value parses back to the same value.
		again, err := ParseAuthorization(Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope() +
			", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature)
		if err != nil || again.Scope() != a.Scope() || again.AccessKeyID != a.AccessKeyID ||
			strings.Join(again.SignedHeaders, ";") != strings.Join(a.SignedHeaders, ";") {
			t.Fatalf("re-parse: %+v, %v (from %+v)", again, err, a)
		}
	})
}

func FuzzParsePresignedQuery(f *testing.F) {
	f.Add(strings.SplitN(examplePresignedURL, "?", 2)[1])
	f.Add("AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D")
	f.Add(strings.Replace(strings.SplitN(examplePresignedURL, "?", 2)[1], "86400", "604801", 1))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := ParsePresignedQuery(q)
		if err != nil {
			if !errors.Is(err, ErrMalformedAuth) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if p.Expires < time.Second || p.Expires > maxExpires || p.Time.IsZero() || !validSignature(p.Signature) {
			t.Fatalf("accepted invalid presign: %+v", p)
		}
	})
}

func FuzzCanonicalURI(f *testing.F) {
	for _, s := range []string{"/test$file.text", "/a%2fb", "/%zz", "/€/%E2%82%AC", "", "/a%7E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := CanonicalURI(s)
		if CanonicalURI(c) != c {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, c, CanonicalURI(c))
		}
		for i := 0; i < len(c); i++ {
			if ch := c[i]; !isUnreserved(ch) && ch != '/' && ch != '%' {
				t.Fatalf("unescaped byte %q in %q", ch, c)
			}
		}
	})
}

// FuzzChunkedReader feeds arbitrary bodies to the aws-chunked decoder in all
// three modes: it must not panic, must never return more than the declared
// decoded length, must return exactly that length on success and must only
// fail with the package's body errors.
func FuzzChunkedReader(f *testing.F) {
	// Small signed bodies (the docs examples are 65 KiB: too slow to
	// minimise); same key, scope and seeds as the docs examples.
	f.Add(smallSignedBody(f, streamSeed, nil), uint32(40), uint8(0), uint16(7))
	f.Add(smallSignedBody(f, trailerSeed, http.Header{"X-Amz-Checksum-Crc32c": {trailerCRC32C}}), uint32(40), uint8(1), uint16(16))
	f.Add([]byte("b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"), uint32(11), uint8(2), uint16(3))
	f.Add([]byte("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), uint32(11), uint8(2), uint16(1))
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint32(4), uint8(2), uint16(64))
	f.Add([]byte("ffffff\r\n"), uint32(1<<24), uint8(2), uint16(64))
	f.Fuzz(func(t *testing.T, body []byte, decoded uint32, mode uint8, readSize uint16) {
		var cfg chunkConfig
		switch mode % 3 {
		case 0:
			cfg = exampleChunkConfig(int64(decoded))
		case 1:
			cfg = exampleTrailerConfig()
			cfg.decodedLength = int64(decoded)
		case 2:
			cfg = unsignedTrailerConfig(int64(decoded), "x-amz-checksum-crc32")
		}
		cr := newChunkedReader(bytes.NewReader(body), cfg)
		buf := make([]byte, int(readSize)%70000+1)
		var total int64
		for i := 0; ; i++ {
			n, err := cr.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned n=%d for len %d", n, len(buf))
			}
			total += int64(n)
			if total > int64(decoded) {
				t.Fatalf("returned %d bytes, declared %d", total, decoded)
			}
			if err == io.EOF {
				if total != int64(decoded) {
					t.Fatalf("EOF after %d bytes, declared %d", total, decoded)
				}
				return
			}
			if err != nil {
				if !errors.Is(err, ErrIncompleteBody) && !errors.Is(err, ErrMalformedChunk) && !errors.Is(err, ErrChunkSignatureMismatch) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if n == 0 && i > len(body)+10 {
				t.Fatal("no progress")
			}
		}
	})
}

// smallSignedBody is a signed aws-chunked body of 40 bytes in 16-byte chunks.
func smallSignedBody(t testing.TB, seed string, trailer http.Header) []byte {
	var b bytes.Buffer
	w := NewChunkedWriter(&b, NewChunkSigner(exampleCreds, "us-east-1", "s3", exampleTime, seed), 16)
	w.Trailer = trailer
	if _, err := w.Write([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCD")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// smallStreamingRequest is a raw signed request with a 40-byte aws-chunked body.
func smallStreamingRequest(t testing.TB, payload string) string {
	signed := payload != StreamingUnsignedPayloadTrailer
	var trailer http.Header
	r, _ := http.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/k", nil)
	r.Header.Set("X-Amz-Decoded-Content-Length", "40")
	if payload != StreamingPayload {
		trailer = http.Header{"X-Amz-Checksum-Crc32c": {trailerCRC32C}}
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32c")
	}
	SignRequest(r, exampleCreds, "us-east-1", "s3", payload, exampleTime)
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	var signer *ChunkSigner
	if signed {
		signer = NewChunkSigner(exampleCreds, "us-east-1", "s3", exampleTime, a.Signature)
	}
	w := NewChunkedWriter(&body, signer, 16)
	w.Trailer = trailer
	w.Write([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCD"))
	w.Close()
	r.Body, r.ContentLength = io.NopCloser(&body), int64(body.Len())
	var raw bytes.Buffer
	if err := r.Write(&raw); err != nil {
		t.Fatal(err)
	}
	return raw.String()
}

// FuzzVerify runs whole raw HTTP requests through Verify and the body reader.
func FuzzVerify(f *testing.F) {
	seeds := []string{
		"GET /test.txt HTTP/1.1\r\nHost: examplebucket.s3.amazonaws.com\r\nRange: bytes=0-9\r\nx-amz-content-sha256: " + EmptySHA256 +
			"\r\nx-amz-date: 20130524T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41\r\n\r\n",
		"GET " + strings.TrimPrefix(examplePresignedURL, "https://examplebucket.s3.amazonaws.com") + " HTTP/1.1\r\nHost: examplebucket.s3.amazonaws.com\r\n\r\n",
	}
	for _, payload := range []string{StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer} {
		seeds = append(seeds, smallStreamingRequest(f, payload))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	v := verifierAt(exampleTime)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		res, err := v.Verify(context.Background(), r)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, io.LimitReader(res.Body, 1<<22))
		if res.DecodedLength >= 0 && n > res.DecodedLength && r.Header.Get("X-Amz-Decoded-Content-Length") != "" {
			t.Fatalf("read %d bytes, decoded length %d", n, res.DecodedLength)
		}
	})
}

// TestFuzzSeedsValid makes sure the fuzz seeds exercise the success paths.
func TestFuzzSeedsValid(t *testing.T) {
	for _, payload := range []string{StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(smallStreamingRequest(t, payload))))
		if err != nil {
			t.Fatal(err)
		}
		res, err := verifierAt(exampleTime).Verify(context.Background(), r)
		if err != nil {
			t.Fatalf("%s: Verify: %v", payload, err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil || string(b) != "0123456789abcdefghijklmnopqrstuvwxyzABCD" {
			t.Fatalf("%s: body %q, %v", payload, b, err)
		}
	}
	for _, tc := range []struct {
		seed string
		cfg  chunkConfig
		tr   http.Header
	}{
		{streamSeed, exampleChunkConfig(40), nil},
		{trailerSeed, func() chunkConfig { c := exampleTrailerConfig(); c.decodedLength = 40; return c }(), http.Header{"X-Amz-Checksum-Crc32c": {trailerCRC32C}}},
	} {
		b, err := io.ReadAll(newChunkedReader(bytes.NewReader(smallSignedBody(t, tc.seed, tc.tr)), tc.cfg))
		if err != nil || len(b) != 40 {
			t.Fatalf("seed %s: %d bytes, %v", tc.seed, len(b), err)
		}
	}
}
