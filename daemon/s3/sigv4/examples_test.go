package sigv4

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Examples from the AWS documentation "Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk", with the
// signatures published there.
var headerExamples = []struct {
	name      string
	method    string
	url       string
	headers   [][2]string // set on the client request before signing
	payload   string      // x-amz-content-sha256
	body      string
	signed    string
	signature string
}{
	{
		name:      "GET Object",
		method:    "GET",
		url:       "http://examplebucket.s3.amazonaws.com/test.txt",
		headers:   [][2]string{{"Range", "bytes=0-9"}},
		payload:   EmptySHA256,
		signed:    "host;range;x-amz-content-sha256;x-amz-date",
		signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	},
	{
		name:   "PUT Object",
		method: "PUT",
		url:    "http://examplebucket.s3.amazonaws.com/test$file.text",
		headers: [][2]string{
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"X-Amz-Storage-Class", "REDUCED_REDUNDANCY"},
		},
		payload:   "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		body:      "Welcome to Amazon S3.",
		signed:    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
		signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	},
	{
		name:      "GET Bucket Lifecycle",
		method:    "GET",
		url:       "http://examplebucket.s3.amazonaws.com/?lifecycle",
		payload:   EmptySHA256,
		signed:    "host;x-amz-content-sha256;x-amz-date",
		signature: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
	},
	{
		name:      "Get Bucket (List Objects)",
		method:    "GET",
		url:       "http://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
		payload:   EmptySHA256,
		signed:    "host;x-amz-content-sha256;x-amz-date",
		signature: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
	},
}

func TestAWSHeaderExamples(t *testing.T) {
	for _, tc := range headerExamples {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r, err := http.NewRequest(tc.method, tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.headers {
				r.Header.Set(h[0], h[1])
			}
			SignRequest(r, exampleCreds, "us-east-1", "s3", tc.payload, exampleTime)
			want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=" +
				tc.signed + ", Signature=" + tc.signature
			if got := r.Header.Get("Authorization"); got != want {
				t.Fatalf("SignRequest Authorization\n got %s\nwant %s", got, want)
			}

			// The server side, with the header exactly as printed in the docs.
			sr := toServer(t, r)
			sr.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders="+
				tc.signed+",Signature="+tc.signature)
			res, err := verifierAt(exampleTime.Add(time.Minute)).Verify(context.Background(), sr)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if string(got) != tc.body || res.AccessKeyID != exampleCreds.AccessKeyID {
				t.Fatalf("body %q key %q", got, res.AccessKeyID)
			}
		})
	}
}

func TestAWSPutObjectRawRequestLine(t *testing.T) {
	// The docs send the key unescaped ("test$file.text") and sign "/test%24file.text".
	r := rawRequest(t, `PUT /test$file.text HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Date: Fri, 24 May 2013 00:00:00 GMT
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
Content-Length: 21`, "Welcome to Amazon S3.")
	res, err := verifierAt(exampleTime).Verify(context.Background(), r)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if b, err := io.ReadAll(res.Body); err != nil || string(b) != "Welcome to Amazon S3." {
		t.Fatalf("body %q, %v", b, err)
	}
	if res.DecodedLength != 21 {
		t.Fatalf("DecodedLength %d", res.DecodedLength)
	}
}

// The presigned URL example of "Authenticating Requests: Using Query Parameters".
const examplePresignedURL = "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z" +
	"&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

func TestAWSPresignedExample(t *testing.T) {
	r, err := http.NewRequest("GET", "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PresignURL(r, exampleCreds, "us-east-1", "s3", 86400*time.Second, exampleTime)
	if err != nil {
		t.Fatal(err)
	}
	if got != examplePresignedURL {
		t.Fatalf("PresignURL\n got %s\nwant %s", got, examplePresignedURL)
	}

	cases := []struct {
		name string
		now  time.Time
		want error
	}{
		{"at signing time", exampleTime, nil},
		{"just before expiry", exampleTime.Add(86400 * time.Second), nil},
		{"expired", exampleTime.Add(86401 * time.Second), ErrRequestExpired},
		{"not valid yet", exampleTime.Add(-time.Hour), ErrRequestTimeTooSkewed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sr := rawRequest(t, "GET "+strings.TrimPrefix(examplePresignedURL, "https://examplebucket.s3.amazonaws.com")+
				" HTTP/1.1\nHost: examplebucket.s3.amazonaws.com", "")
			res, err := verifierAt(tc.now).Verify(context.Background(), sr)
			if !errorIs(err, tc.want) {
				t.Fatalf("Verify err %v, want %v", err, tc.want)
			}
			if err == nil && res.AccessKeyID != exampleCreds.AccessKeyID {
				t.Fatalf("access key %q", res.AccessKeyID)
			}
		})
	}
}

// The streaming example of "Signature Calculations for the Authorization
// Header: Transferring Payload in Multiple Chunks": 64 KiB + 1 KiB of 'a',
// then the final chunk, with the seed and chunk signatures of the docs.
const (
	streamSeed   = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	streamChunk1 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
	streamChunk2 = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
	streamFinal  = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

	// The trailing-headers variant ("Signature Calculations for the
	// Authorization Header: Including Trailing Headers").
	trailerSeed    = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
	trailerChunk1  = "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
	trailerChunk2  = "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
	trailerFinal   = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
	trailerSig     = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
	trailerCRC32C  = "sOO8/Q=="
	streamDataSize = 65536 + 1024
)

func streamExampleBody() string {
	return "10000;chunk-signature=" + streamChunk1 + "\r\n" + strings.Repeat("a", 65536) + "\r\n" +
		"400;chunk-signature=" + streamChunk2 + "\r\n" + strings.Repeat("a", 1024) + "\r\n" +
		"0;chunk-signature=" + streamFinal + "\r\n\r\n"
}

func trailerExampleBody() string {
	return "10000;chunk-signature=" + trailerChunk1 + "\r\n" + strings.Repeat("a", 65536) + "\r\n" +
		"400;chunk-signature=" + trailerChunk2 + "\r\n" + strings.Repeat("a", 1024) + "\r\n" +
		"0;chunk-signature=" + trailerFinal + "\r\n" +
		"x-amz-checksum-crc32c:" + trailerCRC32C + "\r\n" +
		"x-amz-trailer-signature:" + trailerSig + "\r\n\r\n"
}

func streamExampleRequest(t testing.TB, body string) *http.Request {
	return rawRequest(t, `PUT /examplebucket/chunkObject.txt HTTP/1.1
Host: s3.amazonaws.com
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=`+streamSeed+`
x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD
Content-Encoding: aws-chunked
x-amz-decoded-content-length: 66560
Content-Length: 66824`, body)
}

func trailerExampleRequest(t testing.TB, body string) *http.Request {
	return rawRequest(t, `PUT /examplebucket/chunkObject.txt HTTP/1.1
Host: s3.amazonaws.com
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature=`+trailerSeed+`
x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
Content-Encoding: aws-chunked
x-amz-decoded-content-length: 66560
x-amz-trailer: x-amz-checksum-crc32c
Content-Length: `+itoa(len(body)), body)
}

func TestAWSStreamingExample(t *testing.T) {
	if n := len(streamExampleBody()); n != 66824 {
		t.Fatalf("example body length %d, docs say 66824", n)
	}
	for _, step := range []int{1, 7, 4096, 65536, 1 << 20} {
		t.Run("read size "+itoa(step), func(t *testing.T) {
			res, err := verifierAt(exampleTime).Verify(context.Background(), streamExampleRequest(t, streamExampleBody()))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.DecodedLength != streamDataSize {
				t.Fatalf("DecodedLength %d", res.DecodedLength)
			}
			got, err := readAllSmall(res.Body, step)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, bytes.Repeat([]byte("a"), streamDataSize)) {
				t.Fatalf("decoded %d bytes, not the example data", len(got))
			}
		})
	}
}

func TestAWSStreamingExampleSigning(t *testing.T) {
	r, err := http.NewRequest("PUT", "http://s3.amazonaws.com/examplebucket/chunkObject.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("Content-Length", itoa(int(EncodedLength(streamDataSize, 65536, true, nil))))
	SignRequest(r, exampleCreds, "us-east-1", "s3", StreamingPayload, exampleTime)
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Signature != streamSeed {
		t.Fatalf("seed signature %s, want %s", a.Signature, streamSeed)
	}
	var body bytes.Buffer
	w := NewChunkedWriter(&body, NewChunkSigner(exampleCreds, "us-east-1", "s3", exampleTime, a.Signature), 65536)
	if _, err := w.Write(bytes.Repeat([]byte("a"), streamDataSize)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if body.String() != streamExampleBody() {
		t.Fatalf("ChunkedWriter output differs from the docs example")
	}
}

func TestAWSStreamingTrailerExample(t *testing.T) {
	for _, step := range []int{3, 65536} {
		t.Run("read size "+itoa(step), func(t *testing.T) {
			res, err := verifierAt(exampleTime).Verify(context.Background(), trailerExampleRequest(t, trailerExampleBody()))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got := res.Trailer(); len(got) != 0 {
				t.Fatalf("trailer before EOF: %v", got)
			}
			got, err := readAllSmall(res.Body, step)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(got) != streamDataSize {
				t.Fatalf("decoded %d bytes", len(got))
			}
			if v := res.Trailer().Get("X-Amz-Checksum-Crc32c"); v != trailerCRC32C {
				t.Fatalf("trailer crc32c %q", v)
			}
		})
	}

	// Signing side reproduces every signature of the docs.
	s := NewChunkSigner(exampleCreds, "us-east-1", "s3", exampleTime, trailerSeed)
	got := []string{
		s.Sign(bytes.Repeat([]byte("a"), 65536)),
		s.Sign(bytes.Repeat([]byte("a"), 1024)),
		s.Sign(nil),
		s.SignTrailer([]byte("x-amz-checksum-crc32c:" + trailerCRC32C + "\n")),
	}
	want := []string{trailerChunk1, trailerChunk2, trailerFinal, trailerSig}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("signature %d = %s, want %s", i, got[i], want[i])
		}
	}
}
