package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	miniosigner "github.com/minio/minio-go/v7/pkg/signer"

	"github.com/entrepot/entrepot/daemon/s3/sigv4"
)

const (
	sdkKey    = "GK31c2f218a2e44f485b94239e"
	sdkSecret = "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835"
	sdkRegion = "garage"
)

func sdkVerifier(now time.Time) *sigv4.Verifier {
	return &sigv4.Verifier{
		Region: sdkRegion,
		Secret: func(_ context.Context, id string) (string, error) {
			if id != sdkKey {
				return "", sigv4.ErrUnknownAccessKey
			}
			return sdkSecret, nil
		},
		Now: func() time.Time { return now },
	}
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAWSSDKSignerCrossCheck(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: sdkKey, SecretAccessKey: sdkSecret}
	cases := []struct {
		name       string
		method     string
		path       string // already escaped, as the S3 client sends it
		query      string
		headers    map[string]string
		body       string
		payload    string
		disableEsc bool
	}{
		{name: "get", method: "GET", path: "/bucket/key.txt", payload: sigv4.EmptySHA256, disableEsc: true},
		{name: "put with body hash", method: "PUT", path: "/bucket/dir/file%20name%2B1.bin", body: "some data", disableEsc: true},
		{name: "unsigned payload", method: "PUT", path: "/bucket/k", body: "x", payload: sigv4.UnsignedPayload, disableEsc: true},
		{name: "list with query", method: "GET", path: "/bucket", query: "list-type=2&prefix=a%2Fb%20c&delimiter=%2F&max-keys=100", payload: sigv4.EmptySHA256, disableEsc: true},
		{name: "subresource", method: "GET", path: "/bucket", query: "versioning", payload: sigv4.EmptySHA256, disableEsc: true},
		{name: "metadata headers", method: "PUT", path: "/bucket/k", body: "abc", disableEsc: true,
			headers: map[string]string{"X-Amz-Meta-Foo": "  spaced   value ", "Content-Type": "application/octet-stream", "X-Amz-Storage-Class": "STANDARD"}},
		{name: "unicode key", method: "PUT", path: "/bucket/%C3%A9t%C3%A9/%E2%82%AC.txt", body: "euro", disableEsc: true},
		// The generic signer (without S3's DisableURIPathEscaping) escapes the
		// path once more; for plain keys both agree.
		{name: "signer escapes plain path", method: "GET", path: "/bucket/plain-key_1.txt", payload: sigv4.EmptySHA256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := "http://placeholder" + tc.path
			if tc.query != "" {
				url += "?" + tc.query
			}
			r, err := http.NewRequest(tc.method, url, bytes.NewReader([]byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.body == "" {
				r.Body, r.ContentLength = http.NoBody, 0
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			payload := tc.payload
			if payload == "" {
				payload = hexSHA([]byte(tc.body))
			}
			r.Header.Set("X-Amz-Content-Sha256", payload)
			r.URL.Host = "127.0.0.1:1" // replaced below; the signer signs r.Host/URL.Host
			// Sign for the real server address: start it first.
			type out struct {
				body []byte
				err  error
			}
			ch := make(chan out, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				res, err := sdkVerifier(now).Verify(req.Context(), req)
				if err != nil {
					ch <- out{nil, err}
					return
				}
				b, err := io.ReadAll(res.Body)
				ch <- out{b, err}
			}))
			defer srv.Close()
			r.URL.Host = strings.TrimPrefix(srv.URL, "http://")
			r.Host = r.URL.Host
			err = signer.SignHTTP(context.Background(), creds, r, payload, "s3", sdkRegion, now, func(o *v4.SignerOptions) {
				o.DisableURIPathEscaping = tc.disableEsc
			})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			o := <-ch
			if o.err != nil {
				t.Fatalf("our Verify rejected the aws-sdk-go-v2 signature: %v", o.err)
			}
			if string(o.body) != tc.body {
				t.Fatalf("body %q", o.body)
			}
		})
	}
}

func TestAWSSDKPresignCrossCheck(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: sdkKey, SecretAccessKey: sdkSecret}
	for _, tc := range []struct {
		name, method, path, body string
	}{
		{"get", "GET", "/bucket/some%20key.txt", ""},
		{"put", "PUT", "/bucket/upload.bin", "uploaded through a presigned URL"},
		{"with query", "GET", "/bucket/k?response-content-type=text%2Fplain&versionId=3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvURL := startEcho(t, now)
			r, err := http.NewRequest(tc.method, srvURL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			q := r.URL.Query()
			q.Set("X-Amz-Expires", "900")
			r.URL.RawQuery = q.Encode()
			u, _, err := signer.PresignHTTP(context.Background(), creds, r, sigv4.UnsignedPayload, "s3", sdkRegion, now,
				func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequest(tc.method, u, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != tc.body {
				t.Fatalf("presigned %s: status %d body %q", u, resp.StatusCode, b)
			}
		})
	}
}

// startEcho starts a loopback server that verifies each request and echoes
// its verified body (status 403 with the error otherwise).
func startEcho(t *testing.T, now time.Time) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		res, err := sdkVerifier(now).Verify(req.Context(), req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		b, err := io.ReadAll(res.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// fakeS3 verifies every request, records the x-amz-content-sha256 modes seen
// and stores PUT bodies; enough S3 for the clients' PutObject/GetObject.
type fakeS3 struct {
	v        *sigv4.Verifier
	mu       sync.Mutex
	modes    map[string]int
	objects  map[string][]byte
	errs     []error
	trailers int // requests whose body ended with verified checksum trailers
}

// checkTrailerChecksums compares CRC32/CRC32C trailers with the body.
func checkTrailerChecksums(tr http.Header, body []byte) error {
	for name, table := range map[string]*crc32.Table{
		"X-Amz-Checksum-Crc32":  crc32.IEEETable,
		"X-Amz-Checksum-Crc32c": crc32.MakeTable(crc32.Castagnoli),
	} {
		got := tr.Get(name)
		if got == "" {
			continue
		}
		want := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, table)))
		if got != want {
			return fmt.Errorf("trailer %s = %s, body has %s", name, got, want)
		}
	}
	return nil
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, err := f.v.Verify(r.Context(), r)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(res.Body)
	}
	trailers := 0
	if err == nil {
		trailers = len(res.Trailer())
		err = checkTrailerChecksums(res.Trailer(), body)
	}
	mode := r.Header.Get("X-Amz-Content-Sha256")
	if len(mode) == 64 {
		mode = "sha256"
	}
	if mode == "" {
		mode = "presigned"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("%s %s (%s): %w", r.Method, r.URL, mode, err))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error>`, err)
		return
	}
	f.modes[mode]++
	if trailers > 0 {
		f.trailers++
	}
	switch r.Method {
	case http.MethodPut:
		f.objects[r.URL.Path] = body
		w.Header().Set("ETag", `"`+hexSHA(body)[:32]+`"`)
	case http.MethodGet, http.MethodHead:
		obj, ok := f.objects[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(obj)))
		w.Header().Set("ETag", `"`+hexSHA(obj)[:32]+`"`)
		w.Write(obj)
	}
}

func newFakeS3(t *testing.T, tls bool) (*fakeS3, *httptest.Server) {
	f := &fakeS3{v: sdkVerifier(time.Now()), modes: map[string]int{}, objects: map[string][]byte{}}
	f.v.Now = nil
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(f)
	} else {
		srv = httptest.NewServer(f)
	}
	t.Cleanup(srv.Close)
	return f, srv
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>8)
	}
	return b
}

// TestAWSSDKS3Client drives the real aws-sdk-go-v2 S3 client (its default
// checksum and payload-signing behaviour) against a loopback server that
// authenticates with our Verifier.
func TestAWSSDKS3Client(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) { testAWSSDKS3Client(t, tls) })
	}
}

func testAWSSDKS3Client(t *testing.T, tls bool) {
	f, srv := newFakeS3(t, tls)
	ctx := context.Background()
	client := s3.New(s3.Options{
		Region:       sdkRegion,
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		HTTPClient:   srv.Client(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: sdkKey, SecretAccessKey: sdkSecret}, nil
		}),
		RetryMaxAttempts: 1,
	})
	for _, size := range []int{0, 10, 200 << 10} {
		key := fmt.Sprintf("dir/obj %d+é.bin", size)
		data := testData(size)
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("PutObject %d: %v (server errors %v)", size, err, f.errs)
		}
		if tls {
			// Over TLS an unseekable body is streamed (aws-chunked, unsigned, with a checksum trailer).
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key),
				Body: io.NopCloser(bytes.NewReader(data)), ContentLength: aws.Int64(int64(size)),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}); err != nil {
				t.Fatalf("PutObject unseekable %d: %v (server errors %v)", size, err, f.errs)
			}
		}
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObject: %v (server errors %v)", err, f.errs)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: stored %d bytes differ", size, len(got))
		}
	}
	pc := s3.NewPresignClient(client)
	p, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/obj 10+é.bin")}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, testData(10)) {
		t.Fatalf("presigned GET: %d %q (server errors %v)", resp.StatusCode, got, f.errs)
	}
	if len(f.errs) > 0 {
		t.Fatalf("server rejected requests: %v", f.errs)
	}
	if tls && (f.modes[sigv4.StreamingUnsignedPayloadTrailer] == 0 || f.trailers == 0) {
		t.Errorf("the SDK never streamed an unsigned trailer body: %v, %d with trailers", f.modes, f.trailers)
	}
	t.Logf("payload modes seen: %v", f.modes)
}

// TestMinioClient drives minio-go, which signs aws-chunked bodies
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) over plain HTTP.
func TestMinioClient(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) { testMinioClient(t, tls) })
	}
}

func testMinioClient(t *testing.T, tls bool) {
	f, srv := newFakeS3(t, tls)
	ctx := context.Background()
	for _, trailing := range []bool{false, true} {
		mc, err := minio.New(strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://"), &minio.Options{
			Creds:           miniocreds.NewStaticV4(sdkKey, sdkSecret, ""),
			Secure:          tls,
			Transport:       srv.Client().Transport,
			Region:          sdkRegion,
			TrailingHeaders: trailing,
			MaxRetries:      1,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 100 << 10} {
			key := fmt.Sprintf("m/%v/%d", trailing, size)
			data := testData(size)
			opts := minio.PutObjectOptions{DisableMultipart: true}
			if trailing {
				opts.AutoChecksum = minio.ChecksumCRC32C
			}
			if _, err := mc.PutObject(ctx, "bucket", key, bytes.NewReader(data), int64(size), opts); err != nil {
				t.Fatalf("PutObject trailing=%v size=%d: %v (server errors %v)", trailing, size, err, f.errs)
			}
			if !bytes.Equal(f.objects["/bucket/"+key], data) {
				t.Fatalf("stored object differs (%d bytes)", len(f.objects["/bucket/"+key]))
			}
		}
	}
	if len(f.errs) > 0 {
		t.Fatalf("server rejected requests: %v", f.errs)
	}
	if !tls && f.modes[sigv4.StreamingPayload] == 0 {
		t.Errorf("minio-go never sent signed aws-chunked bodies: %v", f.modes)
	}
	t.Logf("payload modes seen: %v", f.modes)
}

// stdHasher adapts crypto/sha256 to minio-go's hasher interface.
type stdHasher struct{ hash.Hash }

func (stdHasher) Close() {}

// TestMinioSignerTrailers drives minio-go's own aws-chunked encoders with
// trailers: signed (StreamingSignV4) and unsigned (SignV4Trailer). minio-go
// ends trailer lines with "\n\r\n", not "\r\n".
func TestMinioSignerTrailers(t *testing.T) {
	for _, signed := range []bool{true, false} {
		for _, size := range []int{0, 1, 70 << 10} {
			t.Run(fmt.Sprintf("signed=%v/%d", signed, size), func(t *testing.T) {
				f, srv := newFakeS3(t, false)
				data := testData(size)
				crc := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))))
				trailer := http.Header{"x-amz-checksum-crc32c": {crc}}
				req, err := http.NewRequest("PUT", srv.URL+"/bucket/minio-trailer", bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if size == 0 {
					req.Body = nil
				}
				req.ContentLength = int64(size)
				if signed {
					req.Trailer = trailer
					req = miniosigner.StreamingSignV4(req, sdkKey, sdkSecret, "", sdkRegion, int64(size), time.Now().UTC(), stdHasher{sha256.New()})
				} else {
					req.Header.Set("X-Amz-Content-Sha256", sigv4.StreamingUnsignedPayloadTrailer)
					req = miniosigner.SignV4Trailer(*req, sdkKey, sdkSecret, "", sdkRegion, trailer)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if len(f.errs) > 0 || resp.StatusCode != 200 {
					t.Fatalf("status %d, server errors %v", resp.StatusCode, f.errs)
				}
				if f.trailers != 1 || !bytes.Equal(f.objects["/bucket/minio-trailer"], data) {
					t.Fatalf("trailers %d, modes %v, stored %d bytes", f.trailers, f.modes, len(f.objects["/bucket/minio-trailer"]))
				}
				want := sigv4.StreamingUnsignedPayloadTrailer
				if signed {
					want = sigv4.StreamingPayloadTrailer
				}
				if f.modes[want] != 1 {
					t.Fatalf("modes %v, want %s", f.modes, want)
				}
			})
		}
	}
}
