package web

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/entrepot/entrepot/daemon/model"
)

// fakeBackend is an in-memory Backend.
type fakeBackend struct {
	buckets map[string]model.Bucket
	objects map[string][]byte // bucket/key
	metas   map[string]model.ObjectMeta
}

func newFake() *fakeBackend {
	return &fakeBackend{buckets: map[string]model.Bucket{}, objects: map[string][]byte{}, metas: map[string]model.ObjectMeta{}}
}

func (f *fakeBackend) put(bucket, key, ct string, data []byte) {
	sum := md5.Sum(data)
	f.objects[bucket+"/"+key] = data
	f.metas[bucket+"/"+key] = model.ObjectMeta{Bucket: bucket, Key: key, Size: int64(len(data)), ETag: hex.EncodeToString(sum[:]),
		LastModified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Headers: model.Headers{ContentType: ct}}
}

func (f *fakeBackend) GetBucket(_ context.Context, name string) (model.Bucket, error) {
	b, ok := f.buckets[name]
	if !ok {
		return b, fmt.Errorf("bucket %q: %w", name, model.ErrNoSuchBucket)
	}
	return b, nil
}

func (f *fakeBackend) HeadObject(_ context.Context, bucket, key string) (model.ObjectMeta, error) {
	m, ok := f.metas[bucket+"/"+key]
	if !ok {
		return m, model.ErrNoSuchKey
	}
	return m, nil
}

func (f *fakeBackend) OpenObject(_ context.Context, m model.ObjectMeta, off, n int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.objects[m.Bucket+"/"+m.Key][off : off+n])), nil
}

func TestBucketFromHost(t *testing.T) {
	for _, tc := range []struct{ host, root, want string }{
		{"site.web.example:3902", "web.example", "site"},
		{"Site.Web.Example.", "web.example", "site"},
		{"www.example.com", "web.example", "www.example.com"},
		{"www.example.com:80", "", "www.example.com"},
		{"[::1]:3902", "", "::1"},
	} {
		if got := BucketFromHost(tc.host, tc.root); got != tc.want {
			t.Errorf("BucketFromHost(%q, %q) = %q, want %q", tc.host, tc.root, got, tc.want)
		}
	}
}

func FuzzBucketFromHost(f *testing.F) {
	f.Add("site.web.example:3902", "web.example")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, host, root string) {
		b := BucketFromHost(host, root)
		if root != "" && b != "" && strings.HasSuffix(b, "."+root) && strings.HasSuffix(strings.ToLower(host), "."+root) {
			t.Fatalf("root domain kept: %q from %q", b, host)
		}
	})
}

func TestServe(t *testing.T) {
	be := newFake()
	be.buckets["site"] = model.Bucket{Name: "site", Config: &model.BucketConfig{
		Website: &model.WebsiteConfig{IndexSuffix: "index.html", ErrorDocument: "err.html"},
		CORS:    []model.CORSRule{{AllowedOrigins: []string{"https://a.example"}, AllowedMethods: []string{"GET"}}},
	}}
	be.buckets["plain"] = model.Bucket{Name: "plain"}
	be.put("site", "index.html", "text/html", []byte("<h1>home</h1>"))
	be.put("site", "err.html", "text/html", []byte("oops"))
	be.put("site", "app.js", "", []byte("console.log(1)"))
	be.put("site", "sub/index.html", "text/html", []byte("sub"))
	be.put("site", "secret", "", []byte("ciphertext"))
	m := be.metas["site/secret"]
	m.Headers.SSEC = &model.SSECInfo{V: 1}
	be.metas["site/secret"] = m
	h, err := NewHandler(Config{Backend: be, RootDomain: "web.example"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, host, path string
		hdr                      map[string]string
		status                   int
		body, ctype, location    string
	}{
		{"index", "GET", "site.web.example", "/", nil, 200, "<h1>home</h1>", "text/html", ""},
		{"head", "HEAD", "site", "/", nil, 200, "", "text/html", ""},
		{"js type guessed", "GET", "site", "/app.js", nil, 200, "console.log(1)", "text/javascript", ""},
		{"dir redirect", "GET", "site", "/sub", nil, 302, "", "", "/sub/"},
		{"error document", "GET", "site", "/missing", nil, 404, "oops", "text/html", ""},
		{"range", "GET", "site", "/app.js", map[string]string{"Range": "bytes=8-10"}, 206, "log", "", ""},
		{"bad range", "GET", "site", "/app.js", map[string]string{"Range": "bytes=100-200"}, 416, "", "", ""},
		{"sse-c object", "GET", "site", "/secret", nil, 403, "AccessDenied", "", ""},
		{"no website", "GET", "plain", "/", nil, 404, "NoSuchWebsiteConfiguration", "", ""},
		{"no bucket", "GET", "nope", "/", nil, 404, "NoSuchBucket", "", ""},
		{"put", "PUT", "site", "/x", nil, 405, "", "", ""},
		{"preflight ok", "OPTIONS", "site", "/", map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}, 200, "", "", ""},
		{"preflight denied", "OPTIONS", "site", "/", map[string]string{"Origin": "https://b.example", "Access-Control-Request-Method": "GET"}, 403, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://x"+tc.path, nil)
			req.Host = tc.host
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.body != "" && !strings.Contains(string(body), tc.body) {
				t.Fatalf("body %q lacks %q", body, tc.body)
			}
			if tc.method == "HEAD" && len(body) != 0 {
				t.Fatalf("HEAD body %q", body)
			}
			if tc.ctype != "" && !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("content type %q", res.Header.Get("Content-Type"))
			}
			if tc.location != "" && res.Header.Get("Location") != tc.location {
				t.Fatalf("location %q", res.Header.Get("Location"))
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	be := newFake()
	be.buckets["site"] = model.Bucket{Name: "site", Config: &model.BucketConfig{Website: &model.WebsiteConfig{IndexSuffix: "index.html"}}}
	be.put("site", "index.html", "text/html", []byte("x"))
	reg := prometheus.NewRegistry()
	h, err := NewHandler(Config{Backend: be, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/", "/missing"} {
		req := httptest.NewRequest("GET", "http://site"+p, nil)
		req.Host = "site"
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	if got := testutil.ToFloat64(h.(*handler).requests.WithLabelValues("200")); got != 2 {
		t.Fatalf("200s counted %v", got)
	}
	if got := testutil.ToFloat64(h.(*handler).requests.WithLabelValues("404")); got != 1 {
		t.Fatalf("404s counted %v", got)
	}
	if _, err := NewHandler(Config{Backend: be, Registerer: reg}); err == nil {
		t.Fatal("registering the metrics twice succeeded")
	}
}
