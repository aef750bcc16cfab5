package sigv4

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"testing"
)

// benchBody is an aws-chunked encoding of size bytes in chunks of chunk bytes.
func benchBody(b *testing.B, size, chunk int, signed bool) []byte {
	data := bytes.Repeat([]byte("entrepot"), size/8)
	var buf bytes.Buffer
	var signer *ChunkSigner
	if signed {
		signer = NewChunkSigner(exampleCreds, "us-east-1", "s3", exampleTime, streamSeed)
	}
	w := NewChunkedWriter(&buf, signer, chunk)
	if !signed {
		w.Trailer = http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}
	}
	if _, err := w.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkChunkedReader(b *testing.B) {
	const size = 16 << 20
	cases := []struct {
		name   string
		chunk  int
		read   int
		signed bool
	}{
		{"signed/64KiB-chunks/32KiB-reads", 64 << 10, 32 << 10, true},
		{"signed/1MiB-chunks/32KiB-reads", 1 << 20, 32 << 10, true},
		{"signed/1MiB-chunks/1MiB-reads", 1 << 20, 1 << 20, true},
		{"signed/64KiB-chunks/4KiB-reads", 64 << 10, 4 << 10, true},
		{"unsigned-trailer/64KiB-chunks/32KiB-reads", 64 << 10, 32 << 10, false},
		{"unsigned-trailer/1MiB-chunks/1MiB-reads", 1 << 20, 1 << 20, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			body := benchBody(b, size, tc.chunk, tc.signed)
			cfg := exampleChunkConfig(size)
			if !tc.signed {
				cfg = unsignedTrailerConfig(size, "x-amz-checksum-crc32")
			}
			buf := make([]byte, tc.read)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				cr := newChunkedReader(bytes.NewReader(body), cfg)
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{cr}, buf)
				if err != nil || n != size {
					b.Fatalf("copied %d, %v", n, err)
				}
			}
		})
	}
}

func BenchmarkPayloadHash(b *testing.B) {
	const size = 16 << 20
	data := bytes.Repeat([]byte("entrepot"), size/8)
	want := sha256.Sum256(data)
	buf := make([]byte, 32<<10)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		hr := newHashReader(io.NopCloser(bytes.NewReader(data)), want[:])
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{hr}, buf)
		if err != nil || n != size {
			b.Fatalf("copied %d, %v", n, err)
		}
	}
}

func BenchmarkVerifyHeaderAuth(b *testing.B) {
	r, _ := http.NewRequest("GET", "http://127.0.0.1:3900/bucket/some/key.txt?versionId=1", nil)
	r.Header.Set("Range", "bytes=0-9")
	SignRequest(r, exampleCreds, "us-east-1", "s3", EmptySHA256, exampleTime)
	v := verifierAt(exampleTime)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
