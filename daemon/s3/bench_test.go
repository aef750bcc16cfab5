package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/s3/sigv4"
)

// benchHandler returns a handler over the fake store with one object of size bytes.
func benchHandler(b *testing.B, size int) (http.Handler, *fakeStore) {
	st := newFakeStore()
	ctx := context.Background()
	st.ImportKey(ctx, testKeyID, testSecret, "bench")
	st.CreateBucket(ctx, testKeyID, "bench")
	h, err := NewHandler(Config{Backend: st})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("PUT", "http://127.0.0.1/bench/obj", bytes.NewReader(make([]byte, size)))
	sigv4.SignRequest(req, sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, testRegion, "s3", "", time.Now())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	return h, st
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkGetObject measures the handler's own cost per GET (signature
// check, routing, headers, streaming) over an in-memory store.
func BenchmarkGetObject(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			h, _ := benchHandler(b, size)
			req := httptest.NewRequest("GET", "http://127.0.0.1/bench/obj", nil)
			sigv4.SignRequest(req, sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, testRegion, "s3", "", time.Now())
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			}
		})
	}
}

// BenchmarkPutObject measures the handler's cost per PUT including MD5.
func BenchmarkPutObject(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			h, _ := benchHandler(b, 1)
			data := make([]byte, size)
			body := bytes.NewReader(data)
			req := httptest.NewRequest("PUT", "http://127.0.0.1/bench/obj", body)
			sigv4.SignRequest(req, sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, testRegion, "s3", "", time.Now())
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(data)
				req.Body = io.NopCloser(body)
				h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return "1MiB"
	}
	return "4KiB"
}
