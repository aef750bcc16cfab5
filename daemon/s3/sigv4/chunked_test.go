package sigv4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// exampleChunkConfig is the decoder configuration of the AWS streaming example.
func exampleChunkConfig(decoded int64) chunkConfig {
	return chunkConfig{
		signed:        true,
		key:           SigningKey(exampleCreds.SecretAccessKey, "20130524", "us-east-1", "s3"),
		amzDate:       "20130524T000000Z",
		scope:         "20130524/us-east-1/s3/aws4_request",
		seed:          streamSeed,
		decodedLength: decoded,
	}
}

func exampleTrailerConfig() chunkConfig {
	cfg := exampleChunkConfig(streamDataSize)
	cfg.trailer = true
	cfg.seed = trailerSeed
	cfg.trailerNames = []string{"x-amz-checksum-crc32c"}
	return cfg
}

func unsignedTrailerConfig(decoded int64, names ...string) chunkConfig {
	return chunkConfig{trailer: true, decodedLength: decoded, trailerNames: names}
}

func TestChunkedReaderErrors(t *testing.T) {
	good := streamExampleBody()
	goodTrailer := trailerExampleBody()
	flip := func(s string, i int) string { b := []byte(s); b[i] ^= 1; return string(b) }
	dataStart := strings.Index(good, "\r\n") + 2
	chunk2 := strings.Index(good, "400;")
	final := strings.Index(good, "0;chunk-signature="+streamFinal)
	cases := []struct {
		name string
		cfg  chunkConfig
		body string
		want error
	}{
		{"docs example", exampleChunkConfig(streamDataSize), good, nil},
		{"docs example without final CRLF", exampleChunkConfig(streamDataSize), strings.TrimSuffix(good, "\r\n"), nil},
		{"flipped byte chunk 1", exampleChunkConfig(streamDataSize), flip(good, dataStart+100), ErrChunkSignatureMismatch},
		{"flipped byte chunk 2", exampleChunkConfig(streamDataSize), flip(good, chunk2+100), ErrChunkSignatureMismatch},
		{"wrong seed", func() chunkConfig { c := exampleChunkConfig(streamDataSize); c.seed = streamChunk1; return c }(), good, ErrChunkSignatureMismatch},
		{"wrong final signature", exampleChunkConfig(streamDataSize), strings.Replace(good, streamFinal, streamChunk2, 1), ErrChunkSignatureMismatch},
		{"chunks reordered", exampleChunkConfig(streamDataSize), strings.Replace(strings.Replace(good, streamChunk1, "X", 1), streamChunk2, streamChunk1, 1), ErrMalformedChunk},
		{"signature uppercase", exampleChunkConfig(streamDataSize), strings.Replace(good, streamChunk1, strings.ToUpper(streamChunk1), 1), ErrMalformedChunk},
		{"no chunk signature", exampleChunkConfig(streamDataSize), "10000\r\n" + good[dataStart:], ErrMalformedChunk},
		{"truncated in header", exampleChunkConfig(streamDataSize), good[:10], ErrIncompleteBody},
		{"truncated in data", exampleChunkConfig(streamDataSize), good[:dataStart+1000], ErrIncompleteBody},
		{"truncated before CRLF", exampleChunkConfig(streamDataSize), good[:chunk2-2], ErrIncompleteBody},
		{"missing final chunk", exampleChunkConfig(streamDataSize), good[:final], ErrIncompleteBody},
		{"empty body", exampleChunkConfig(streamDataSize), "", ErrIncompleteBody},
		{"data not followed by CRLF", exampleChunkConfig(streamDataSize), good[:chunk2-2] + "XX" + good[chunk2:], ErrMalformedChunk},
		{"LF only header", exampleChunkConfig(streamDataSize), strings.Replace(good, "\r\n", "\n", 1), ErrMalformedChunk},
		{"bad hex size", exampleChunkConfig(streamDataSize), "1g000" + good[5:], ErrMalformedChunk},
		{"negative size", exampleChunkConfig(streamDataSize), "-1" + good[5:], ErrMalformedChunk},
		{"size too large", exampleChunkConfig(1 << 30), "1000001" + good[5:], ErrMalformedChunk},
		{"header line too long", exampleChunkConfig(streamDataSize), "10000;" + strings.Repeat("x", MaxChunkLineLen) + "\r\n", ErrMalformedChunk},
		{"header line huge", unsignedTrailerConfig(10), strings.Repeat("1", 100<<10), ErrMalformedChunk},
		{"decoded length smaller", exampleChunkConfig(streamDataSize - 1), good, ErrIncompleteBody},
		{"decoded length larger", exampleChunkConfig(streamDataSize + 1), good, ErrIncompleteBody},
		{"data after final chunk", exampleChunkConfig(streamDataSize), good + "junk", ErrMalformedChunk},
		{"garbage after final chunk", exampleChunkConfig(streamDataSize), strings.TrimSuffix(good, "\r\n") + "xx\r\n", ErrMalformedChunk},

		{"docs trailer example", exampleTrailerConfig(), goodTrailer, nil},
		{"trailer value tampered", exampleTrailerConfig(), strings.Replace(goodTrailer, trailerCRC32C, "AAAAAA==", 1), ErrChunkSignatureMismatch},
		{"trailer signature wrong", exampleTrailerConfig(), strings.Replace(goodTrailer, trailerSig, streamFinal, 1), ErrChunkSignatureMismatch},
		{"trailer signature missing", exampleTrailerConfig(), strings.Replace(goodTrailer, "x-amz-trailer-signature:"+trailerSig+"\r\n", "", 1), ErrMalformedChunk},
		{"declared trailer missing", exampleTrailerConfig(), strings.Replace(goodTrailer, "x-amz-checksum-crc32c:"+trailerCRC32C+"\r\n", "", 1), ErrMalformedChunk},
		{"undeclared trailer", func() chunkConfig {
			c := exampleTrailerConfig()
			c.trailerNames = []string{"x-amz-checksum-sha256"}
			return c
		}(), goodTrailer, ErrMalformedChunk},
		{"trailer without final CRLF", exampleTrailerConfig(), strings.TrimSuffix(goodTrailer, "\r\n"), nil},
		{"trailer line without colon", exampleTrailerConfig(), strings.Replace(goodTrailer, "x-amz-checksum-crc32c:", "x-amz-checksum-crc32c ", 1), ErrMalformedChunk},

		{"unsigned trailer", unsignedTrailerConfig(11, "x-amz-checksum-crc32"), "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", nil},
		{"unsigned no trailers", unsignedTrailerConfig(11), "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", nil},
		{"unsigned chunk extension ignored", unsignedTrailerConfig(5), "5;foo=bar\r\nhello\r\n0\r\n\r\n", nil},
		{"unsigned signature trailer rejected", unsignedTrailerConfig(5), "5\r\nhello\r\n0\r\nx-amz-trailer-signature:" + trailerSig + "\r\n\r\n", ErrMalformedChunk},
		{"unsigned repeated trailer", unsignedTrailerConfig(5, "x-amz-checksum-crc32"), "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:a\r\nx-amz-checksum-crc32:b\r\n\r\n", ErrMalformedChunk},
		{"unsigned too many trailer lines", unsignedTrailerConfig(5, "a"), "5\r\nhello\r\n0\r\n" + strings.Repeat("a:b\r\n", maxTrailerLines+1) + "\r\n", ErrMalformedChunk},
		{"unsigned truncated trailer", unsignedTrailerConfig(5, "x-amz-checksum-crc32"), "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:DUo", ErrIncompleteBody},
		{"unsigned minio-go trailer format", unsignedTrailerConfig(5, "x-amz-checksum-crc32"), "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\n\r\n\r\n", nil},
		{"signed minio-go trailer format", exampleTrailerConfig(), strings.Replace(goodTrailer, trailerCRC32C+"\r\n", trailerCRC32C+"\n\r\n", 1), nil},
		{"unsigned junk after trailers", unsignedTrailerConfig(5, "x-amz-checksum-crc32"), "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\njunk\r\n", ErrMalformedChunk},
		{"signed trailer after signature", exampleTrailerConfig(), strings.TrimSuffix(goodTrailer, "\r\n") + "x-amz-checksum-crc32c:AAAAAA==\r\n\r\n", ErrMalformedChunk},
		{"unsigned too long", unsignedTrailerConfig(4), "5\r\nhello\r\n0\r\n\r\n", ErrIncompleteBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 1000, 1 << 17} {
				cr := newChunkedReader(strings.NewReader(tc.body), tc.cfg)
				got, err := readAllSmall(cr, step)
				if !errorIs(err, tc.want) {
					t.Fatalf("read size %d: err %v, want %v", step, err, tc.want)
				}
				if int64(len(got)) > tc.cfg.decodedLength {
					t.Fatalf("returned %d bytes, more than the declared %d", len(got), tc.cfg.decodedLength)
				}
				if err == nil && int64(len(got)) != tc.cfg.decodedLength {
					t.Fatalf("returned %d bytes at EOF, want %d", len(got), tc.cfg.decodedLength)
				}
				again := tc.want
				if again == nil {
					again = io.EOF
				}
				if n, err2 := cr.Read(make([]byte, 8)); n != 0 || !errors.Is(err2, again) {
					t.Fatalf("error not sticky: %d, %v", n, err2)
				}
			}
		})
	}
}

func TestChunkedReaderTrailer(t *testing.T) {
	cr := newChunkedReader(strings.NewReader("b\r\nhello world\r\n0\r\nX-Amz-Checksum-CRC32: DUoRhQ== \r\n\r\n"),
		unsignedTrailerConfig(11, "x-amz-checksum-crc32"))
	if len(cr.Trailer()) != 0 {
		t.Fatal("trailer visible before EOF")
	}
	if b, err := io.ReadAll(cr); err != nil || string(b) != "hello world" {
		t.Fatalf("read %q, %v", b, err)
	}
	if got := cr.Trailer().Get("X-Amz-Checksum-Crc32"); got != "DUoRhQ==" {
		t.Fatalf("trailer %q", got)
	}
}

// TestChunkedReaderPassesReadErrors checks that a transport error is neither
// hidden nor turned into success.
func TestChunkedReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	src := io.MultiReader(strings.NewReader(streamExampleBody()[:5000]), iotest.ErrReader(boom))
	_, err := io.ReadAll(newChunkedReader(src, exampleChunkConfig(streamDataSize)))
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
}

func TestChunkedRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 8191, 8192, 8193, 3*8192 + 17}
	modes := []struct {
		name    string
		payload string
		signed  bool
		trailer bool
	}{
		{"signed", StreamingPayload, true, false},
		{"signed trailer", StreamingPayloadTrailer, true, true},
		{"unsigned trailer", StreamingUnsignedPayloadTrailer, false, true},
	}
	for _, m := range modes {
		for _, size := range sizes {
			t.Run(m.name+"/"+itoa(size), func(t *testing.T) {
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(i * 7)
				}
				var trailer http.Header
				if m.trailer {
					trailer = http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}
				}
				r, _ := http.NewRequest("PUT", "http://127.0.0.1:3900/bucket/obj", nil)
				r.Header.Set("Content-Encoding", "aws-chunked")
				r.Header.Set("X-Amz-Decoded-Content-Length", itoa(size))
				if m.trailer {
					r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
				}
				encLen := EncodedLength(int64(size), 8192, m.signed, trailer)
				r.Header.Set("Content-Length", itoa(int(encLen)))
				SignRequest(r, exampleCreds, "us-east-1", "s3", m.payload, testNow)
				a, err := ParseAuthorization(r.Header.Get("Authorization"))
				if err != nil {
					t.Fatal(err)
				}
				var signer *ChunkSigner
				if m.signed {
					signer = NewChunkSigner(exampleCreds, "us-east-1", "s3", testNow, a.Signature)
				}
				var body bytes.Buffer
				w := NewChunkedWriter(&body, signer, 8192)
				w.Trailer = trailer
				if _, err := w.Write(data); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if int64(body.Len()) != encLen {
					t.Fatalf("EncodedLength %d, written %d", encLen, body.Len())
				}
				r.Body = io.NopCloser(&body)
				r.ContentLength = encLen
				res, err := verifierAt(testNow).Verify(context.Background(), toServer(t, r))
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.DecodedLength != int64(size) {
					t.Fatalf("DecodedLength %d", res.DecodedLength)
				}
				got, err := readAllSmall(res.Body, 1000)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(got, data) {
					t.Fatal("decoded data differs")
				}
				if m.trailer && res.Trailer().Get("X-Amz-Checksum-Crc32") != "AAAAAA==" {
					t.Fatalf("trailer %v", res.Trailer())
				}
			})
		}
	}
}

func TestStreamingHeaderErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(r *http.Request)
		want   error
	}{
		{"missing decoded length", func(r *http.Request) { r.Header.Del("X-Amz-Decoded-Content-Length") }, ErrMalformedAuth},
		{"negative decoded length", func(r *http.Request) { r.Header.Set("X-Amz-Decoded-Content-Length", "-1") }, ErrMalformedAuth},
		{"non-numeric decoded length", func(r *http.Request) { r.Header.Set("X-Amz-Decoded-Content-Length", "12a") }, ErrMalformedAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("PUT", "http://b.example/k", strings.NewReader("0\r\n\r\n"))
			r.Header.Set("X-Amz-Decoded-Content-Length", "0")
			tc.mutate(r)
			SignRequest(r, exampleCreds, "us-east-1", "s3", StreamingUnsignedPayloadTrailer, testNow)
			if _, err := verifierAt(testNow).Verify(context.Background(), toServer(t, r)); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}
