package s3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
	"github.com/entrepot/entrepot/daemon/s3/sigv4"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	testKeyID      = "GK0123456789abcdef01234567"
	testSecret     = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	otherKeyID     = "GKffffffffffffffffffffffff"
	otherSecret    = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	testRegion     = "us-east-1"
	testRootDomain = "s3.test"
)

// backends are the stores the handler tests run against: the real
// *model.Store on a temporary directory, and the in-memory fake.
var backends = map[string]func(t *testing.T) testStore{
	"model": openModel,
	"fake":  func(*testing.T) testStore { return newFakeStore() },
}

type env struct {
	t     *testing.T
	store testStore
	srv   *httptest.Server
	reg   *prometheus.Registry
	creds sigv4.Credentials

	mu    sync.Mutex
	modes map[string]int // x-amz-content-sha256 of PUT requests seen
}

func newEnv(t *testing.T, newStore func(t *testing.T) testStore) *env {
	return newEnvTLS(t, newStore, false)
}

func newEnvTLS(t *testing.T, newStore func(t *testing.T) testStore, useTLS bool) *env {
	t.Helper()
	ctx := context.Background()
	st := newStore(t)
	for _, k := range [][2]string{{testKeyID, testSecret}, {otherKeyID, otherSecret}} {
		if _, err := st.ImportKey(ctx, k[0], k[1], "test "+k[0][:4]); err != nil {
			t.Fatalf("import key: %v", err)
		}
	}
	if err := st.SetKeyCanCreateBucket(ctx, testKeyID, true); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h, err := NewHandler(Config{Backend: st, Region: testRegion, RootDomain: testRootDomain, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, reg: reg, creds: sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		modes: map[string]int{}}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := r.Header.Get("X-Amz-Content-Sha256"); m != "" && r.Method == http.MethodPut {
			if len(m) == 64 {
				m = "sha256"
			}
			e.mu.Lock()
			e.modes[m]++
			e.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	if useTLS {
		e.srv.StartTLS()
	} else {
		e.srv.Start()
	}
	t.Cleanup(e.srv.Close)
	return e
}

// forEachBackend runs f against every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, e *env)) {
	for name, nb := range backends {
		t.Run(name, func(t *testing.T) { f(t, newEnv(t, nb)) })
	}
}

type rawReq struct {
	method, path string // path includes the query, already escaped
	body         []byte
	header       map[string]string
	creds        *sigv4.Credentials // nil = the env's key; &sigv4.Credentials{} = anonymous
	unsigned     bool               // UNSIGNED-PAYLOAD instead of the body's sha256
	contentLen   int64              // 0 = len(body); -1 = chunked transfer encoding
	region       string             // "" = testRegion
	at           time.Time          // signing time; zero = now
}

// do sends a SigV4-signed request and returns the response with its body read.
func (e *env) do(rr rawReq) (*http.Response, []byte) {
	e.t.Helper()
	var body io.Reader = bytes.NewReader(rr.body)
	if rr.contentLen < 0 {
		body = io.MultiReader(bytes.NewReader(rr.body)) // hides the length
	}
	req, err := http.NewRequest(rr.method, e.srv.URL+rr.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if rr.contentLen < 0 {
		req.ContentLength = -1
	}
	for k, v := range rr.header {
		req.Header.Set(k, v)
	}
	creds := e.creds
	if rr.creds != nil {
		creds = *rr.creds
	}
	if creds.AccessKeyID != "" {
		payload := ""
		if !rr.unsigned {
			sum := sha256.Sum256(rr.body)
			payload = hex.EncodeToString(sum[:])
		}
		if p := rr.header["X-Amz-Content-Sha256"]; p != "" {
			payload = p
		}
		region, at := testRegion, time.Now()
		if rr.region != "" {
			region = rr.region
		}
		if !rr.at.IsZero() {
			at = rr.at
		}
		sigv4.SignRequest(req, creds, region, "s3", payload, at)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", rr.method, rr.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read response: %v", err)
	}
	if resp.Header.Get("X-Amz-Request-Id") == "" || resp.Header.Get("X-Amz-Id-2") == "" {
		e.t.Errorf("%s %s: response without request id headers", rr.method, rr.path)
	}
	return resp, data
}

// wantError checks an S3 error answer.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code ErrorCode) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (%s)", resp.StatusCode, status, body)
	}
	if resp.Request.Method == http.MethodHead {
		if len(body) != 0 {
			t.Fatalf("HEAD error with body %q", body)
		}
		return
	}
	var eb errorBody
	if err := xml.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if eb.Code != string(code) {
		t.Fatalf("code %s, want %s (%s)", eb.Code, code, eb.Message)
	}
	if eb.RequestID == "" || eb.RequestID != resp.Header.Get("X-Amz-Request-Id") || eb.Message == "" {
		t.Fatalf("error body without matching request id or message: %+v", eb)
	}
}

func (e *env) mustBucket(name string) {
	e.t.Helper()
	resp, body := e.do(rawReq{method: "PUT", path: "/" + name})
	if resp.StatusCode != 200 {
		e.t.Fatalf("create bucket: %d %s", resp.StatusCode, body)
	}
}

func (e *env) mustPut(bucket, key string, data []byte) {
	e.t.Helper()
	resp, body := e.do(rawReq{method: "PUT", path: "/" + bucket + "/" + key, body: data})
	if resp.StatusCode != 200 {
		e.t.Fatalf("put %s: %d %s", key, resp.StatusCode, body)
	}
}

func (e *env) exists(bucket, key string) bool {
	_, err := e.store.HeadObject(context.Background(), bucket, key)
	return err == nil
}

func TestAuthErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("auth")
		e.mustPut("auth", "obj", []byte("data"))

		resp, body := e.do(rawReq{method: "GET", path: "/auth/obj", creds: &sigv4.Credentials{}})
		wantError(t, resp, body, 403, CodeAccessDenied)

		resp, body = e.do(rawReq{method: "GET", path: "/auth/obj", creds: &sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: otherSecret}})
		wantError(t, resp, body, 403, CodeSignatureDoesNotMatch)

		resp, body = e.do(rawReq{method: "GET", path: "/auth/obj", creds: &sigv4.Credentials{AccessKeyID: "GKnope", SecretAccessKey: testSecret}})
		wantError(t, resp, body, 403, CodeInvalidAccessKeyID)

		resp, body = e.do(rawReq{method: "HEAD", path: "/auth/obj", creds: &sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: otherSecret}})
		wantError(t, resp, body, 403, CodeSignatureDoesNotMatch)

		resp, body = e.do(rawReq{method: "GET", path: "/auth/obj", region: "eu-west-1"})
		wantError(t, resp, body, 400, CodeAuthorizationHeaderMalformed)

		resp, body = e.do(rawReq{method: "GET", path: "/auth/obj", at: time.Now().Add(-time.Hour)})
		wantError(t, resp, body, 403, CodeRequestTimeTooSkewed)

		req, _ := http.NewRequest("GET", e.srv.URL+"/auth/obj", nil)
		req.Header.Set("Authorization", "AWS "+testKeyID+":c2lnbmF0dXJl") // SigV2
		resp2, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp2.Body)
		resp2.Body.Close()
		if resp2.StatusCode < 400 || resp2.StatusCode == 500 {
			t.Fatalf("SigV2 request: %d %s", resp2.StatusCode, body)
		}

		// the other key has no permission on the bucket
		other := &sigv4.Credentials{AccessKeyID: otherKeyID, SecretAccessKey: otherSecret}
		resp, body = e.do(rawReq{method: "GET", path: "/auth/obj", creds: other})
		wantError(t, resp, body, 403, CodeAccessDenied)
		resp, body = e.do(rawReq{method: "PUT", path: "/auth/new", body: []byte("x"), creds: other})
		wantError(t, resp, body, 403, CodeAccessDenied)
		resp, body = e.do(rawReq{method: "PUT", path: "/otherbucket", creds: other})
		wantError(t, resp, body, 403, CodeAccessDenied)
		if err := e.store.SetKeyCanCreateBucket(context.Background(), otherKeyID, true); err != nil {
			t.Fatal(err)
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/auth", creds: other})
		wantError(t, resp, body, 409, CodeBucketAlreadyExists)
		resp, body = e.do(rawReq{method: "PUT", path: "/Bad_Name", creds: other})
		wantError(t, resp, body, 400, CodeInvalidBucketName)
		resp, body = e.do(rawReq{method: "GET", path: "/", creds: other})
		if resp.StatusCode != 200 || strings.Contains(string(body), "<Name>auth</Name>") {
			t.Fatalf("other key's ListBuckets shows a bucket it cannot access: %s", body)
		}

		// read-only permission: GET works, PUT and DELETE bucket do not
		if err := e.store.SetPermission(context.Background(), otherKeyID, "auth", model.Perm{Read: true}); err != nil {
			t.Fatal(err)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/auth/obj", creds: other})
		if resp.StatusCode != 200 || string(body) != "data" {
			t.Fatalf("read-only GET: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(rawReq{method: "DELETE", path: "/auth/obj", creds: other})
		wantError(t, resp, body, 403, CodeAccessDenied)
		resp, body = e.do(rawReq{method: "DELETE", path: "/auth", creds: other})
		wantError(t, resp, body, 403, CodeAccessDenied)
		resp, body = e.do(rawReq{method: "GET", path: "/", creds: other})
		if !strings.Contains(string(body), "<Name>auth</Name>") {
			t.Fatalf("ListBuckets misses readable bucket: %s", body)
		}
		if !e.exists("auth", "obj") {
			t.Fatal("denied DELETE removed the object")
		}
	})
}

func TestPresign(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("pre")
		e.mustPut("pre", "k", []byte("presigned body"))
		get := func(now time.Time, expires time.Duration) (*http.Response, []byte) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/pre/k", nil)
			u, err := sigv4.PresignURL(req, e.creds, testRegion, "s3", expires, now)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, b
		}
		resp, body := get(time.Now(), time.Hour)
		if resp.StatusCode != 200 || string(body) != "presigned body" {
			t.Fatalf("presigned GET: %d %s", resp.StatusCode, body)
		}
		resp, body = get(time.Now().Add(-2*time.Hour), time.Hour)
		wantError(t, resp, body, 403, CodeAccessDenied)
		if !strings.Contains(string(body), "expired") {
			t.Fatalf("expired presign message: %s", body)
		}
		// presigned PUT
		req, _ := http.NewRequest("PUT", e.srv.URL+"/pre/up", nil)
		u, err := sigv4.PresignURL(req, e.creds, testRegion, "s3", time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		preq, _ := http.NewRequest("PUT", u, strings.NewReader("via presigned put"))
		presp, err := http.DefaultClient.Do(preq)
		if err != nil {
			t.Fatal(err)
		}
		presp.Body.Close()
		if presp.StatusCode != 200 || !e.exists("pre", "up") {
			t.Fatalf("presigned PUT: %d", presp.StatusCode)
		}
	})
}

// chunkedPut sends an aws-chunked signed PUT; chunkSecret signs the chunks.
func (e *env) chunkedPut(path string, data []byte, chunkSecret string, trailer http.Header) (*http.Response, []byte) {
	e.t.Helper()
	mode := "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	if trailer != nil {
		mode += "-TRAILER"
	}
	now := time.Now()
	req, _ := http.NewRequest("PUT", e.srv.URL+path, nil)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	if trailer != nil {
		var names []string
		for k := range trailer {
			names = append(names, strings.ToLower(k))
		}
		req.Header.Set("X-Amz-Trailer", strings.Join(names, ","))
	}
	req.ContentLength = sigv4.EncodedLength(int64(len(data)), 1024, true, trailer)
	req.Header.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	sigv4.SignRequest(req, e.creds, testRegion, "s3", mode, now)
	auth := req.Header.Get("Authorization")
	seed := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
	var buf bytes.Buffer
	cw := sigv4.NewChunkedWriter(&buf, sigv4.NewChunkSigner(sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: chunkSecret}, testRegion, "s3", now, seed), 1024)
	cw.Trailer = trailer
	cw.Write(data)
	cw.Close()
	req.Body = io.NopCloser(&buf)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestChunkedUpload(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("chunk")
		data := bytes.Repeat([]byte("0123456789"), 500)
		resp, body := e.chunkedPut("/chunk/good", data, testSecret, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("chunked put: %d %s", resp.StatusCode, body)
		}
		sum := md5.Sum(data)
		if resp.Header.Get("ETag") != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Fatalf("etag %s", resp.Header.Get("ETag"))
		}
		resp, body = e.chunkedPut("/chunk/bad", data, otherSecret, nil)
		wantError(t, resp, body, 403, CodeSignatureDoesNotMatch)
		if e.exists("chunk", "bad") {
			t.Fatal("object with a bad chunk signature was stored")
		}
		// signed trailer with a checksum
		crc := newHashes().new(algoCRC32C)
		crc.Write(data)
		good := http.Header{"X-Amz-Checksum-Crc32c": {base64.StdEncoding.EncodeToString(crc.Sum(nil))}}
		resp, body = e.chunkedPut("/chunk/trailer", data, testSecret, good)
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Checksum-Crc32c") != good.Get("X-Amz-Checksum-Crc32c") {
			t.Fatalf("trailer put: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		bad := http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}}
		resp, body = e.chunkedPut("/chunk/badtrailer", data, testSecret, bad)
		wantError(t, resp, body, 400, CodeBadDigest)
		if e.exists("chunk", "badtrailer") {
			t.Fatal("object with a bad trailing checksum was stored")
		}
	})
}

func TestIntegrityErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("integ")
		data := []byte("some bytes")
		resp, body := e.do(rawReq{method: "PUT", path: "/integ/md5", body: data, header: map[string]string{"Content-MD5": md5b64("other")}})
		wantError(t, resp, body, 400, CodeBadDigest)
		if e.exists("integ", "md5") {
			t.Fatal("object with a bad Content-MD5 was stored")
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/integ/md5", body: data, header: map[string]string{"Content-MD5": "zz"}})
		wantError(t, resp, body, 400, CodeInvalidDigest)
		resp, body = e.do(rawReq{method: "PUT", path: "/integ/md5", body: data, header: map[string]string{"Content-MD5": md5b64(string(data))}})
		if resp.StatusCode != 200 {
			t.Fatalf("good Content-MD5: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/integ/ck", body: data, header: map[string]string{"X-Amz-Checksum-Sha256": "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="}})
		wantError(t, resp, body, 400, CodeBadDigest)
		resp, body = e.do(rawReq{method: "PUT", path: "/integ/sha", body: data, header: map[string]string{"X-Amz-Content-Sha256": strings.Repeat("0", 64)}})
		wantError(t, resp, body, 400, CodeXAmzContentSHA256Mismatch)
		if e.exists("integ", "sha") || e.exists("integ", "ck") {
			t.Fatal("object with a bad checksum was stored")
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/integ/nolen", body: data, unsigned: true, contentLen: -1})
		wantError(t, resp, body, 411, CodeMissingContentLength)
		// crc64nvme is computed, returned, and stored
		h := newHashes().new(algoCRC64NVME)
		h.Write(data)
		want := base64.StdEncoding.EncodeToString(h.Sum(nil))
		resp, body = e.do(rawReq{method: "PUT", path: "/integ/crc64", body: data, header: map[string]string{"X-Amz-Checksum-Crc64nvme": want}})
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Checksum-Crc64nvme") != want {
			t.Fatalf("crc64nvme put: %d %s", resp.StatusCode, body)
		}
		resp, _ = e.do(rawReq{method: "HEAD", path: "/integ/crc64", header: map[string]string{"X-Amz-Checksum-Mode": "ENABLED"}})
		if resp.Header.Get("X-Amz-Checksum-Crc64nvme") != want {
			t.Fatalf("HEAD with checksum mode: %v", resp.Header)
		}
		resp, _ = e.do(rawReq{method: "HEAD", path: "/integ/crc64"})
		if resp.Header.Get("X-Amz-Checksum-Crc64nvme") != "" {
			t.Fatal("checksum returned without checksum mode")
		}
	})
}

func TestXMLBodyErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("xmlb")
		e.mustPut("xmlb", "a", []byte("a"))
		garbage := []byte("<Delete><Object><Key>a</Key>")
		resp, body := e.do(rawReq{method: "POST", path: "/xmlb?delete", body: garbage, header: map[string]string{"Content-MD5": md5b64(string(garbage))}})
		wantError(t, resp, body, 400, CodeMalformedXML)
		good := []byte("<Delete><Object><Key>a</Key></Object><Object><Key>missing</Key></Object></Delete>")
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb?delete", body: good, unsigned: true})
		wantError(t, resp, body, 400, CodeInvalidRequest)
		if !e.exists("xmlb", "a") {
			t.Fatal("DeleteObjects without Content-MD5 deleted")
		}
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb?delete", body: good, header: map[string]string{"Content-MD5": md5b64("not the body")}})
		wantError(t, resp, body, 400, CodeBadDigest)
		if !e.exists("xmlb", "a") {
			t.Fatal("DeleteObjects with a bad Content-MD5 deleted")
		}
		// a signed payload hash is integrity enough
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb?delete", body: good})
		if resp.StatusCode != 200 || strings.Count(string(body), "<Deleted>") != 2 || e.exists("xmlb", "a") {
			t.Fatalf("DeleteObjects: %d %s", resp.StatusCode, body)
		}
		long := []byte("<Delete><Object><Key>" + strings.Repeat("k", 1100) + "</Key></Object><Object><Key>y</Key></Object></Delete>")
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb?delete", body: long, header: map[string]string{"Content-MD5": md5b64(string(long))}})
		var dr deleteResult
		if err := xml.Unmarshal(body, &dr); err != nil || resp.StatusCode != 200 || len(dr.Errors) != 1 || dr.Errors[0].Code != string(CodeKeyTooLong) ||
			len(dr.Deleted) != 1 || dr.Deleted[0].Key != "y" {
			t.Fatalf("DeleteObjects with a too long key: %d %s", resp.StatusCode, body)
		}
		quiet := []byte("<Delete><Quiet>true</Quiet><Object><Key>x</Key></Object></Delete>")
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb?delete", body: quiet, header: map[string]string{"Content-MD5": md5b64(string(quiet))}})
		if resp.StatusCode != 200 || strings.Contains(string(body), "<Deleted>") {
			t.Fatalf("quiet DeleteObjects: %d %s", resp.StatusCode, body)
		}

		// CompleteMultipartUpload with garbage and with too many parts
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb/mp?uploads"})
		var init initiateMultipartUploadResult
		if err := xml.Unmarshal(body, &init); err != nil || resp.StatusCode != 200 {
			t.Fatalf("create upload: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb/mp?uploadId=" + init.UploadID, body: []byte("<CompleteMultipartUpload><Part>")})
		wantError(t, resp, body, 400, CodeMalformedXML)
		var b strings.Builder
		b.WriteString("<CompleteMultipartUpload>")
		for i := 0; i <= maxCompleteParts; i++ {
			fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>\"x\"</ETag></Part>", i%maxCompleteParts+1)
		}
		b.WriteString("</CompleteMultipartUpload>")
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb/mp?uploadId=" + init.UploadID, body: []byte(b.String())})
		wantError(t, resp, body, 400, CodeMalformedXML)
		// a full-object checksum header on Complete describes the object, not the XML body
		resp, body = e.do(rawReq{method: "PUT", path: "/xmlb/mp?partNumber=1&uploadId=" + init.UploadID, body: []byte("only part")})
		if resp.StatusCode != 200 {
			t.Fatalf("upload part: %d %s", resp.StatusCode, body)
		}
		complete := "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + resp.Header.Get("ETag") + "</ETag></Part></CompleteMultipartUpload>"
		resp, body = e.do(rawReq{method: "POST", path: "/xmlb/mp?uploadId=" + init.UploadID, body: []byte(complete),
			header: map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA==", "Content-MD5": md5b64(complete)}})
		if resp.StatusCode != 200 || !strings.Contains(string(body), "-1&#34;</ETag>") {
			t.Fatalf("complete: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/xmlc", body: []byte("<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>")})
		wantError(t, resp, body, 400, CodeIllegalLocationConstraint)
		resp, body = e.do(rawReq{method: "PUT", path: "/xmlc", body: []byte("<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>")})
		if resp.StatusCode != 200 {
			t.Fatalf("create bucket with matching location: %d %s", resp.StatusCode, body)
		}
	})
}

func TestObjectErrorsAndHeaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("objs")
		resp, body := e.do(rawReq{method: "GET", path: "/objs/missing"})
		wantError(t, resp, body, 404, CodeNoSuchKey)
		resp, body = e.do(rawReq{method: "HEAD", path: "/objs/missing"})
		wantError(t, resp, body, 404, CodeNoSuchKey)
		resp, body = e.do(rawReq{method: "GET", path: "/nobucket/x"})
		wantError(t, resp, body, 404, CodeNoSuchBucket)
		resp, body = e.do(rawReq{method: "GET", path: "/objs/k?acl"})
		wantError(t, resp, body, 404, CodeNoSuchKey)
		resp, body = e.do(rawReq{method: "PUT", path: "/objs"})
		if resp.StatusCode != 200 { // us-east-1 legacy answer; see TestCreateOwnedBucket
			t.Fatalf("re-create owned bucket: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/sse", body: []byte("x"), header: map[string]string{"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256"}})
		wantError(t, resp, body, 400, CodeInvalidArgument) // SSE-C without a key
		if e.exists("objs", "sse") {
			t.Fatal("SSE-C object stored in plaintext")
		}

		data := []byte("0123456789")
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/dir/my%20file+%C3%A9.txt", body: data, header: map[string]string{
			"Content-Type": "text/plain", "X-Amz-Meta-Color": "blue", "Cache-Control": "no-cache", "Content-Disposition": "inline"}})
		if resp.StatusCode != 200 {
			t.Fatalf("put: %d %s", resp.StatusCode, body)
		}
		etag := resp.Header.Get("ETag")
		resp, body = e.do(rawReq{method: "GET", path: "/objs/dir/my%20file+%C3%A9.txt?response-content-type=application/x-test"})
		if resp.StatusCode != 200 || string(body) != string(data) || resp.Header.Get("Content-Type") != "application/x-test" ||
			resp.Header.Get("X-Amz-Meta-Color") != "blue" || resp.Header.Get("Cache-Control") != "no-cache" ||
			resp.Header.Get("ETag") != etag || resp.Header.Get("Last-Modified") == "" {
			t.Fatalf("get: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		lm := resp.Header.Get("Last-Modified")

		// ranges
		for _, c := range []struct{ rng, want, cr string }{
			{"bytes=2-4", "234", "bytes 2-4/10"}, {"bytes=7-", "789", "bytes 7-9/10"}, {"bytes=-2", "89", "bytes 8-9/10"},
		} {
			resp, body = e.do(rawReq{method: "GET", path: "/objs/dir/my%20file+%C3%A9.txt", header: map[string]string{"Range": c.rng}})
			if resp.StatusCode != 206 || string(body) != c.want || resp.Header.Get("Content-Range") != c.cr {
				t.Fatalf("range %s: %d %q %s", c.rng, resp.StatusCode, body, resp.Header.Get("Content-Range"))
			}
		}
		resp, body = e.do(rawReq{method: "GET", path: "/objs/dir/my%20file+%C3%A9.txt", header: map[string]string{"Range": "bytes=0-1,3-4"}})
		if resp.StatusCode != 200 || string(body) != string(data) {
			t.Fatalf("multi-range: %d", resp.StatusCode)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/objs/dir/my%20file+%C3%A9.txt", header: map[string]string{"Range": "bytes=10-"}})
		wantError(t, resp, body, 416, CodeInvalidRange)
		if resp.Header.Get("Content-Range") != "bytes */10" {
			t.Fatalf("416 Content-Range %q", resp.Header.Get("Content-Range"))
		}

		// conditional GET
		resp, body = e.do(rawReq{method: "GET", path: "/objs/dir/my%20file+%C3%A9.txt", header: map[string]string{"If-None-Match": etag}})
		if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("ETag") != etag {
			t.Fatalf("If-None-Match: %d", resp.StatusCode)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/objs/dir/my%20file+%C3%A9.txt", header: map[string]string{"If-Match": `"nope"`}})
		wantError(t, resp, body, 412, CodePreconditionFailed)
		resp, _ = e.do(rawReq{method: "HEAD", path: "/objs/dir/my%20file+%C3%A9.txt", header: map[string]string{"If-Modified-Since": lm}})
		if resp.StatusCode != 304 {
			t.Fatalf("If-Modified-Since: %d", resp.StatusCode)
		}
		resp, _ = e.do(rawReq{method: "HEAD", path: "/objs/dir/my%20file+%C3%A9.txt", header: map[string]string{"If-Unmodified-Since": "Mon, 02 Jan 2006 15:04:05 GMT"}})
		if resp.StatusCode != 412 {
			t.Fatalf("If-Unmodified-Since: %d", resp.StatusCode)
		}

		// conditional PUT
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/dir/my%20file+%C3%A9.txt", body: []byte("x"), header: map[string]string{"If-None-Match": "*"}})
		wantError(t, resp, body, 412, CodePreconditionFailed)
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/new", body: []byte("x"), header: map[string]string{"If-None-Match": "*"}})
		if resp.StatusCode != 200 {
			t.Fatalf("If-None-Match * on new key: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/new", body: []byte("y"), header: map[string]string{"If-Match": `"bad"`}})
		wantError(t, resp, body, 412, CodePreconditionFailed)

		// copy: to self without REPLACE, conditions, REPLACE
		src := "/objs/dir/my%20file+%C3%A9.txt"
		resp, body = e.do(rawReq{method: "PUT", path: src, header: map[string]string{"X-Amz-Copy-Source": src}})
		wantError(t, resp, body, 400, CodeInvalidRequest)
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/copy", header: map[string]string{"X-Amz-Copy-Source": "objs" + src[5:] + "?versionId=null", "X-Amz-Copy-Source-If-Match": `"nope"`}})
		wantError(t, resp, body, 412, CodePreconditionFailed)
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/copy", header: map[string]string{"X-Amz-Copy-Source": src, "X-Amz-Copy-Source-If-None-Match": etag}})
		wantError(t, resp, body, 412, CodePreconditionFailed)
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/copy", header: map[string]string{"X-Amz-Copy-Source": src, "X-Amz-Copy-Source-If-Match": etag}})
		var cr copyObjectResult
		if resp.StatusCode != 200 || xml.Unmarshal(body, &cr) != nil || cr.ETag != etag {
			t.Fatalf("copy: %d %s", resp.StatusCode, body)
		}
		resp, _ = e.do(rawReq{method: "HEAD", path: "/objs/copy"})
		if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Amz-Meta-Color") != "blue" {
			t.Fatalf("COPY directive lost metadata: %v", resp.Header)
		}
		resp, body = e.do(rawReq{method: "PUT", path: src, header: map[string]string{"X-Amz-Copy-Source": src, "X-Amz-Metadata-Directive": "REPLACE", "Content-Type": "text/csv"}})
		if resp.StatusCode != 200 {
			t.Fatalf("copy onto itself with REPLACE: %d %s", resp.StatusCode, body)
		}
		resp, _ = e.do(rawReq{method: "HEAD", path: src})
		if resp.Header.Get("Content-Type") != "text/csv" || resp.Header.Get("X-Amz-Meta-Color") != "" {
			t.Fatalf("REPLACE did not replace: %v", resp.Header)
		}
		resp, body = e.do(rawReq{method: "PUT", path: "/objs/c2", header: map[string]string{"X-Amz-Copy-Source": src, "X-Amz-Metadata-Directive": "MERGE"}})
		wantError(t, resp, body, 400, CodeInvalidArgument)

		resp, body = e.do(rawReq{method: "DELETE", path: "/objs"})
		wantError(t, resp, body, 409, CodeBucketNotEmpty)
		resp, _ = e.do(rawReq{method: "DELETE", path: "/objs/never-existed"})
		if resp.StatusCode != 204 {
			t.Fatalf("delete missing: %d", resp.StatusCode)
		}
		// every object can be deleted, then the bucket
		for _, k := range []string{src[5:], "/new", "/copy"} {
			resp, _ = e.do(rawReq{method: "DELETE", path: "/objs" + k})
			if resp.StatusCode != 204 {
				t.Fatalf("delete %s: %d", k, resp.StatusCode)
			}
		}
		resp, body = e.do(rawReq{method: "DELETE", path: "/objs"})
		if resp.StatusCode != 204 {
			t.Fatalf("delete bucket: %d %s", resp.StatusCode, body)
		}
	})
}

func TestListingsRaw(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("lst")
		for _, k := range []string{"a/1", "a/2", "b/1", "c", "d e+f"} {
			e.mustPut("lst", strings.ReplaceAll(strings.ReplaceAll(k, " ", "%20"), "+", "%2B"), []byte(k))
		}
		resp, body := e.do(rawReq{method: "GET", path: "/lst?list-type=2&delimiter=/&max-keys=2"})
		var v2 listBucketResultV2
		if err := xml.Unmarshal(body, &v2); err != nil || resp.StatusCode != 200 {
			t.Fatalf("v2: %d %s", resp.StatusCode, body)
		}
		if !v2.IsTruncated || v2.KeyCount != 2 || len(v2.CommonPrefixes) != 2 || v2.NextContinuationToken == "" {
			t.Fatalf("v2 page 1: %s", body)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/lst?list-type=2&delimiter=/&max-keys=2&encoding-type=url&continuation-token=" + v2.NextContinuationToken})
		v2 = listBucketResultV2{}
		if err := xml.Unmarshal(body, &v2); err != nil || resp.StatusCode != 200 || v2.IsTruncated || len(v2.Contents) != 2 ||
			v2.Contents[0].Key != "c" || v2.Contents[1].Key != "d%20e%2Bf" || v2.EncodingType != "url" {
			t.Fatalf("v2 page 2: %s", body)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/lst?list-type=2&continuation-token=garbage!"})
		wantError(t, resp, body, 400, CodeInvalidArgument)
		resp, body = e.do(rawReq{method: "GET", path: "/lst?max-keys=abc"})
		wantError(t, resp, body, 400, CodeInvalidArgument)
		resp, body = e.do(rawReq{method: "GET", path: "/lst?prefix=a/&marker=a/1"})
		var v1 listBucketResult
		if err := xml.Unmarshal(body, &v1); err != nil || len(v1.Contents) != 1 || v1.Contents[0].Key != "a/2" || v1.Contents[0].Owner == nil {
			t.Fatalf("v1: %s", body)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/lst?list-type=2&start-after=b/1&fetch-owner=true"})
		v2 = listBucketResultV2{}
		if err := xml.Unmarshal(body, &v2); err != nil || len(v2.Contents) != 2 || v2.Contents[0].Owner == nil || v2.StartAfter != "b/1" {
			t.Fatalf("v2 start-after: %s", body)
		}
		if !strings.Contains(string(body), `xmlns="`+xmlNS+`"`) || !strings.Contains(string(body), "<ETag>&#34;") {
			t.Fatalf("namespace or quoted ETag missing: %s", body)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/lst?location"})
		if resp.StatusCode != 200 || !strings.Contains(string(body), "LocationConstraint") {
			t.Fatalf("location: %s", body)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/lst?versioning"})
		if resp.StatusCode != 200 || !strings.Contains(string(body), "VersioningConfiguration") {
			t.Fatalf("versioning: %s", body)
		}
	})
}

func TestVirtualHostRaw(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("vhb")
		e.mustPut("vhb", "x/y", []byte("vhost"))
		req, _ := http.NewRequest("GET", e.srv.URL+"/x/y", nil)
		req.Host = "vhb." + testRootDomain
		sigv4.SignRequest(req, e.creds, testRegion, "s3", "", time.Now())
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "vhost" {
			t.Fatalf("vhost GET: %d %s", resp.StatusCode, b)
		}
	})
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, backends["fake"])
	e.mustBucket("met")
	resp, body := e.do(rawReq{method: "GET", path: "/met/none"})
	wantError(t, resp, body, 404, CodeNoSuchKey)
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			v := m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			found[mf.GetName()+"{"+labels+"}"] = v
		}
	}
	for _, want := range []string{
		"entrepot_s3_requests_total{code=200,op=CreateBucket,}",
		"entrepot_s3_requests_total{code=NoSuchKey,op=GetObject,}",
		"entrepot_s3_errors_total{}",
		"entrepot_s3_request_duration_seconds{op=GetObject,}",
	} {
		if found[want] != 1 {
			t.Errorf("metric %s = %v; have %v", want, found[want], found)
		}
	}
	if _, err := NewHandler(Config{Backend: e.store, Registerer: e.reg}); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
	if _, err := NewHandler(Config{}); err == nil {
		t.Error("NewHandler without backend succeeded")
	}
	if _, err := NewHandler(Config{Backend: e.store, RootDomain: "s3.example.com:3900"}); err == nil {
		t.Error("NewHandler accepted a RootDomain with a port")
	}
}

// dialTo returns an HTTP client that connects every request to addr, whatever
// the host name: a stand-in for wildcard DNS in virtual-host tests.
func dialTo(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}, Timeout: 30 * time.Second}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRequestLog(t *testing.T) {
	var logs syncBuffer
	st := newFakeStore()
	st.ImportKey(context.Background(), testKeyID, testSecret, "k")
	st.SetKeyCanCreateBucket(context.Background(), testKeyID, true)
	h, err := NewHandler(Config{Backend: st, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, srv: httptest.NewServer(h), creds: sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}}
	defer e.srv.Close()
	e.mustBucket("logs")
	resp, _ := e.do(rawReq{method: "GET", path: "/logs/missing"})
	rid := resp.Header.Get("X-Amz-Request-Id")
	resp, _ = e.do(rawReq{method: "GET", path: "/logs", creds: &sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: otherSecret}})
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per request, got %d:\n%s", len(lines), out)
	}
	if !strings.Contains(lines[1], "request_id="+rid) || !strings.Contains(lines[1], "op=GetObject") ||
		!strings.Contains(lines[1], "status=404") || !strings.Contains(lines[1], "bucket=logs") || !strings.Contains(lines[1], "code=NoSuchKey") {
		t.Fatalf("log line lacks fields: %s", lines[1])
	}
	for _, secret := range []string{testSecret, otherSecret, "Signature=", "AWS4-HMAC-SHA256 Credential"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q:\n%s", secret, out)
		}
	}
}

// rawPut sends a signed PUT over a bare connection announcing contentLength
// but sending only body, then half-closes, and returns the answer.
func (e *env) rawPut(path string, contentLength int64, body string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("PUT", e.srv.URL+path, nil)
	req.Header.Set("Content-Length", strconv.FormatInt(contentLength, 10))
	sigv4.SignRequest(req, e.creds, testRegion, "s3", "", time.Now())
	conn, err := net.DialTimeout("tcp", e.srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\nHost: %s\r\n", path, req.Host)
	for k, v := range req.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v[0])
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		e.t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		e.t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Request = req
	return resp, data
}

// A body shorter than its Content-Length (client hung up) is IncompleteBody
// and stores nothing; more than 5 GiB in one PUT is EntityTooLarge, refused
// before any byte is read.
func TestBodyLengthErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("trunc")
		resp, body := e.rawPut("/trunc/obj", 100, "0123456789")
		wantError(t, resp, body, 400, CodeIncompleteBody)
		if e.exists("trunc", "obj") {
			t.Fatal("truncated object was stored")
		}
		resp, body = e.rawPut("/trunc/huge", 6<<30, "x")
		wantError(t, resp, body, 400, CodeEntityTooLarge)
		if e.exists("trunc", "huge") {
			t.Fatal("oversized object was stored")
		}
	})
}

// failingOpen is a store whose object reads fail.
type failingOpen struct{ *fakeStore }

func (failingOpen) OpenObject(context.Context, model.ObjectMeta, int64, int64) (io.ReadCloser, error) {
	return nil, errors.New("disk on fire")
}

func TestInternalErrorIsClean(t *testing.T) {
	e := newEnv(t, func(*testing.T) testStore { return failingOpen{newFakeStore()} })
	e.mustBucket("fail")
	e.mustPut("fail", "k", []byte("data"))
	resp, body := e.do(rawReq{method: "GET", path: "/fail/k"})
	wantError(t, resp, body, 500, CodeInternalError)
	if resp.Header.Get("ETag") != "" || resp.Header.Get("Last-Modified") != "" || resp.Header.Get("Content-Type") != "application/xml" {
		t.Fatalf("error response carries object headers: %v", resp.Header)
	}
	if strings.Contains(string(body), "disk on fire") {
		t.Fatalf("internal error detail leaked to the client: %s", body)
	}
	// HEAD does not read data and still works
	resp, _ = e.do(rawReq{method: "HEAD", path: "/fail/k"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "4" {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestUserMetadataWireNames(t *testing.T) {
	st := newFakeStore()
	ctx := context.Background()
	st.ImportKey(ctx, testKeyID, testSecret, "k")
	st.CreateBucket(ctx, testKeyID, "meta")
	h, err := NewHandler(Config{Backend: st})
	if err != nil {
		t.Fatal(err)
	}
	creds := sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	put := httptest.NewRequest("PUT", "http://127.0.0.1/meta/k", strings.NewReader("v"))
	put.Header["X-AMZ-META-Mixed-CASE"] = []string{"Value"}
	sigv4.SignRequest(put, creds, testRegion, "s3", "", time.Now())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, put)
	if rec.Code != 200 {
		t.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	get := httptest.NewRequest("HEAD", "http://127.0.0.1/meta/k", nil)
	sigv4.SignRequest(get, creds, testRegion, "s3", "", time.Now())
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, get)
	if got := rec.Result().Header["x-amz-meta-mixed-case"]; len(got) != 1 || got[0] != "Value" {
		t.Fatalf("metadata header names on the wire: %v", rec.Result().Header)
	}
}
