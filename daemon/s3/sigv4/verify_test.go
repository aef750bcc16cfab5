package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)

func sha256Hex2(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRoundTripHeaderAuth(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		url     string
		headers map[string]string
		body    string
		payload string // "" = sha256 of body
	}{
		{name: "get object", method: "GET", url: "http://b.example/key"},
		{name: "root", method: "GET", url: "http://b.example/"},
		{name: "path style", method: "GET", url: "http://127.0.0.1:3900/bucket/dir/key.txt"},
		{name: "space and unicode", method: "PUT", url: "http://b.example/" + url.PathEscape("my file é+ü.txt"), body: "x"},
		{name: "reserved chars", method: "PUT", url: "http://b.example/a%20b/c%2Bd/%21%27%28%29%2A.txt", body: "hello"},
		{name: "tilde and dots", method: "GET", url: "http://b.example/~user/./../x"},
		{name: "encoded slash", method: "GET", url: "http://b.example/a%2Fb"},
		{name: "query sort", method: "GET", url: "http://b.example/?prefix=a%2Fb&delimiter=%2F&list-type=2&max-keys=10"},
		{name: "query empty values", method: "GET", url: "http://b.example/?uploads&acl="},
		{name: "query repeated key", method: "GET", url: "http://b.example/?a=2&a=1&a=10"},
		{name: "query special", method: "GET", url: "http://b.example/?prefix=" + url.QueryEscape("a b+c&d=e/é~")},
		{name: "headers collapse", method: "PUT", url: "http://b.example/k", body: "data",
			headers: map[string]string{"X-Amz-Meta-Note": "  a   b  c ", "Content-Type": "text/plain", "X-Amz-Acl": "private"}},
		{name: "unsigned payload", method: "PUT", url: "http://b.example/k", body: "data", payload: UnsignedPayload},
		{name: "empty body put", method: "PUT", url: "http://b.example/k"},
		{name: "host with port", method: "HEAD", url: "http://localhost:3900/bucket/k"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r, err := http.NewRequest(tc.method, tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			payload := tc.payload
			if payload == "" {
				payload = sha256Hex2([]byte(tc.body))
			}
			SignRequest(r, exampleCreds, "us-east-1", "s3", payload, testNow)
			res, err := verifierAt(testNow.Add(time.Minute)).Verify(context.Background(), toServer(t, r))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || string(got) != tc.body {
				t.Fatalf("body %q, %v", got, err)
			}
			if err := res.Body.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRoundTripPresign(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		url     string
		headers map[string]string
		body    string
	}{
		{name: "get", method: "GET", url: "http://b.example/dir/my%20key.txt"},
		{name: "put with query", method: "PUT", url: "http://127.0.0.1:3900/bucket/k?partNumber=1&uploadId=abc%2Fdef", body: "part"},
		{name: "signed header", method: "PUT", url: "http://b.example/k", headers: map[string]string{"Content-Type": "image/png"}, body: "png"},
		{name: "with content sha", method: "PUT", url: "http://b.example/k", headers: map[string]string{"X-Amz-Content-Sha256": sha256Hex2([]byte("abc"))}, body: "abc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			u, err := PresignURL(r, exampleCreds, "us-east-1", "s3", time.Hour, testNow)
			if err != nil {
				t.Fatal(err)
			}
			mk := func() *http.Request {
				req, err := http.NewRequest(tc.method, u, strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.headers {
					req.Header.Set(k, v)
				}
				return toServer(t, req)
			}
			res, err := verifierAt(testNow.Add(59*time.Minute)).Verify(context.Background(), mk())
			if err != nil {
				t.Fatalf("Verify %s: %v", u, err)
			}
			if got, err := io.ReadAll(res.Body); err != nil || string(got) != tc.body {
				t.Fatalf("body %q, %v", got, err)
			}
			if _, err := verifierAt(testNow.Add(61*time.Minute)).Verify(context.Background(), mk()); !errors.Is(err, ErrRequestExpired) {
				t.Fatalf("after expiry: %v", err)
			}
		})
	}
}

// signedGet returns a server-side request signed with header auth at testNow.
func signedGet(t *testing.T, mutate func(r *http.Request)) *http.Request {
	r, _ := http.NewRequest("GET", "http://b.example/bucket/key?versionId=1", nil)
	r.Header.Set("Range", "bytes=0-9")
	if mutate != nil {
		mutate(r)
	}
	SignRequest(r, exampleCreds, "us-east-1", "s3", EmptySHA256, testNow)
	return toServer(t, r)
}

func TestVerifyErrors(t *testing.T) {
	other := Credentials{AccessKeyID: "AKOTHER", SecretAccessKey: "othersecret"}
	cases := []struct {
		name string
		req  func(t *testing.T) *http.Request
		v    func(v *Verifier)
		want error
	}{
		{name: "valid", req: func(t *testing.T) *http.Request { return signedGet(t, nil) }},
		{name: "anonymous", want: ErrMissingAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Del("Authorization")
			return r
		}},
		{name: "unknown key", want: ErrUnknownAccessKey, req: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", "http://b.example/k", nil)
			SignRequest(r, Credentials{"AKUNKNOWN", "x"}, "us-east-1", "s3", EmptySHA256, testNow)
			return toServer(t, r)
		}},
		{name: "wrong secret", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", "http://b.example/k", nil)
			SignRequest(r, Credentials{exampleCreds.AccessKeyID, "wrong"}, "us-east-1", "s3", EmptySHA256, testNow)
			return toServer(t, r)
		}},
		{name: "other key's signature", want: ErrSignatureMismatch, v: func(v *Verifier) { v.Secret = staticSecrets(exampleCreds, other) },
			req: func(t *testing.T) *http.Request {
				r := signedGet(t, nil)
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), exampleCreds.AccessKeyID, other.AccessKeyID, 1))
				return r
			}},
		{name: "tampered header", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("Range", "bytes=0-99")
			return r
		}},
		{name: "tampered path", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.URL.Path = "/bucket/other"
			return r
		}},
		{name: "tampered query", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.URL.RawQuery = "versionId=2"
			return r
		}},
		{name: "tampered method", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Method = "DELETE"
			return r
		}},
		{name: "tampered host", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Host = "evil.example"
			return r
		}},
		{name: "tampered payload hash", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
			return r
		}},
		{name: "unsigned amz header", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("X-Amz-Copy-Source", "/other/secret")
			return r
		}},
		{name: "signature uppercase", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			a := r.Header.Get("Authorization")
			i := strings.Index(a, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", a[:i]+strings.ToUpper(a[i:]))
			return r
		}},
		{name: "garbage header", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 nonsense")
			return r
		}},
		{name: "host not signed", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=", 1))
			return r
		}},
		{name: "bad x-amz-date", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("X-Amz-Date", "2026-11-27T06:30:00Z")
			return r
		}},
		{name: "scope date differs", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("X-Amz-Date", "20261128T000000Z")
			return r
		}},
		{name: "missing content sha", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Del("X-Amz-Content-Sha256")
			return r
		}},
		{name: "invalid content sha", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", "http://b.example/k", nil)
			SignRequest(r, exampleCreds, "us-east-1", "s3", "not-a-hash", testNow)
			return toServer(t, r)
		}},
		{name: "wrong service", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", "http://b.example/k", nil)
			SignRequest(r, exampleCreds, "us-east-1", "iam", EmptySHA256, testNow)
			return toServer(t, r)
		}},
		{name: "wrong region", want: ErrWrongRegion, req: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", "http://b.example/k", nil)
			SignRequest(r, exampleCreds, "eu-west-1", "s3", EmptySHA256, testNow)
			return toServer(t, r)
		}},
		{name: "custom region accepted", v: func(v *Verifier) { v.Region = "garage" }, req: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", "http://b.example/k", nil)
			SignRequest(r, exampleCreds, "garage", "s3", EmptySHA256, testNow)
			return toServer(t, r)
		}},
		{name: "too old", want: ErrRequestTimeTooSkewed, v: func(v *Verifier) { v.Now = func() time.Time { return testNow.Add(16 * time.Minute) } },
			req: func(t *testing.T) *http.Request { return signedGet(t, nil) }},
		{name: "too new", want: ErrRequestTimeTooSkewed, v: func(v *Verifier) { v.Now = func() time.Time { return testNow.Add(-16 * time.Minute) } },
			req: func(t *testing.T) *http.Request { return signedGet(t, nil) }},
		{name: "within custom skew", v: func(v *Verifier) {
			v.Now = func() time.Time { return testNow.Add(50 * time.Minute) }
			v.MaxSkew = time.Hour
		}, req: func(t *testing.T) *http.Request { return signedGet(t, nil) }},
		{name: "sigv2 header", want: ErrUnsupported, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=")
			return r
		}},
		{name: "sigv4a header", want: ErrUnsupported, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), Algorithm, "AWS4-ECDSA-P256-SHA256", 1))
			return r
		}},
		{name: "sigv4a streaming payload", want: ErrUnsupported, req: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("PUT", "http://b.example/k", nil)
			SignRequest(r, exampleCreds, "us-east-1", "s3", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", testNow)
			return toServer(t, r)
		}},
		{name: "sigv2 query", want: ErrUnsupported, req: func(t *testing.T) *http.Request {
			return rawRequest(t, "GET /k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D HTTP/1.1\nHost: b.example", "")
		}},
		{name: "header and query", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			r := signedGet(t, nil)
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
			return r
		}},
		{name: "presign too long expiry", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			return rawRequest(t, "GET "+strings.Replace(strings.TrimPrefix(examplePresignedURL, "https://examplebucket.s3.amazonaws.com"),
				"X-Amz-Expires=86400", "X-Amz-Expires=604801", 1)+" HTTP/1.1\nHost: examplebucket.s3.amazonaws.com", "")
		}, v: func(v *Verifier) { v.Now = func() time.Time { return exampleTime } }},
		{name: "presign tampered", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			return rawRequest(t, "GET "+strings.Replace(strings.TrimPrefix(examplePresignedURL, "https://examplebucket.s3.amazonaws.com"),
				"test.txt", "test2.txt", 1)+" HTTP/1.1\nHost: examplebucket.s3.amazonaws.com", "")
		}, v: func(v *Verifier) { v.Now = func() time.Time { return exampleTime } }},
		{name: "presign unsigned amz header", want: ErrSignatureMismatch, req: func(t *testing.T) *http.Request {
			r := rawRequest(t, "GET "+strings.TrimPrefix(examplePresignedURL, "https://examplebucket.s3.amazonaws.com")+
				" HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\nX-Amz-Copy-Source: /other/secret", "")
			return r
		}, v: func(v *Verifier) { v.Now = func() time.Time { return exampleTime } }},
		{name: "presign unsigned content sha ignored", req: func(t *testing.T) *http.Request {
			r := rawRequest(t, "GET "+strings.TrimPrefix(examplePresignedURL, "https://examplebucket.s3.amazonaws.com")+
				" HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\nX-Amz-Content-Sha256: "+EmptySHA256, "")
			return r
		}, v: func(v *Verifier) { v.Now = func() time.Time { return exampleTime } }},
		{name: "presign missing signature", want: ErrMalformedAuth, req: func(t *testing.T) *http.Request {
			u := strings.TrimPrefix(examplePresignedURL, "https://examplebucket.s3.amazonaws.com")
			return rawRequest(t, "GET "+u[:strings.Index(u, "&X-Amz-Signature")]+" HTTP/1.1\nHost: examplebucket.s3.amazonaws.com", "")
		}, v: func(v *Verifier) { v.Now = func() time.Time { return exampleTime } }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := verifierAt(testNow)
			if tc.v != nil {
				tc.v(v)
			}
			res, err := v.Verify(context.Background(), tc.req(t))
			if !errorIs(err, tc.want) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
			if err == nil && res.AccessKeyID == "" {
				t.Fatal("no access key in result")
			}
		})
	}
}

func TestVerifierConfig(t *testing.T) {
	r := signedGet(t, nil)
	if _, err := (&Verifier{Secret: staticSecrets(exampleCreds)}).Verify(context.Background(), r); err == nil {
		t.Fatal("verifier without region accepted a request")
	}
	lookupErr := errors.New("db down")
	v := verifierAt(testNow)
	v.Secret = func(context.Context, string) (string, error) { return "", lookupErr }
	if _, err := v.Verify(context.Background(), r); !errors.Is(err, lookupErr) || errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("secret lookup error not propagated: %v", err)
	}
}

func TestPayloadHashBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10000)
	cases := []struct {
		name string
		send []byte
		want error
	}{
		{"match", body, nil},
		{"tampered", append(append([]byte{}, body[:5000]...), append([]byte{'X'}, body[5001:]...)...), ErrContentSHA256Mismatch},
		{"short", body[:len(body)-1], ErrContentSHA256Mismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("PUT", "http://b.example/k", bytes.NewReader(tc.send))
			SignRequest(r, exampleCreds, "us-east-1", "s3", sha256Hex2(body), testNow)
			res, err := verifierAt(testNow).Verify(context.Background(), toServer(t, r))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := readAllSmall(res.Body, 999)
			if !errorIs(err, tc.want) {
				t.Fatalf("read err %v, want %v", err, tc.want)
			}
			if len(got) != len(tc.send) {
				t.Fatalf("read %d bytes of %d", len(got), len(tc.send))
			}
			wantAgain := tc.want
			if wantAgain == nil {
				wantAgain = io.EOF
			}
			if _, err2 := res.Body.Read(make([]byte, 10)); !errors.Is(err2, wantAgain) {
				t.Fatalf("error not sticky: %v then %v", err, err2)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	cases := []struct {
		name   string
		header string
		want   error
		region string
	}{
		{"docs", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=" + sig, nil, "us-east-1"},
		{"no spaces", "AWS4-HMAC-SHA256 Credential=AK/20130524/garage/s3/aws4_request,SignedHeaders=host,Signature=" + sig, nil, "garage"},
		{"field order", "AWS4-HMAC-SHA256 Signature=" + sig + ",SignedHeaders=host,Credential=AK/20130524/r/s3/aws4_request", nil, "r"},
		{"empty", "", ErrMalformedAuth, ""},
		{"algorithm only", "AWS4-HMAC-SHA256", ErrMalformedAuth, ""},
		{"unknown algorithm", "AWS5 Credential=x", ErrMalformedAuth, ""},
		{"sigv2", "AWS AKID:c2lnbmF0dXJl", ErrUnsupported, ""},
		{"missing signature", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,SignedHeaders=host", ErrMalformedAuth, ""},
		{"duplicate field", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,Credential=AK/20130524/r/s3/aws4_request,SignedHeaders=host,Signature=" + sig, ErrMalformedAuth, ""},
		{"unknown field", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,SignedHeaders=host,Signature=" + sig + ",Foo=bar", ErrMalformedAuth, ""},
		{"short credential", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3,SignedHeaders=host,Signature=" + sig, ErrMalformedAuth, ""},
		{"bad terminator", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws5_request,SignedHeaders=host,Signature=" + sig, ErrMalformedAuth, ""},
		{"bad date", "AWS4-HMAC-SHA256 Credential=AK/20131324/r/s3/aws4_request,SignedHeaders=host,Signature=" + sig, ErrMalformedAuth, ""},
		{"short signature", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,SignedHeaders=host,Signature=abc", ErrMalformedAuth, ""},
		{"uppercase header", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,SignedHeaders=Host,Signature=" + sig, ErrMalformedAuth, ""},
		{"duplicate header", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,SignedHeaders=host;host,Signature=" + sig, ErrMalformedAuth, ""},
		{"empty header name", "AWS4-HMAC-SHA256 Credential=AK/20130524/r/s3/aws4_request,SignedHeaders=host;;x,Signature=" + sig, ErrMalformedAuth, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAuthorization(tc.header)
			if !errorIs(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && (a.Region != tc.region || a.Signature != sig || a.Date != "20130524" || a.SignedHeaders[0] == "") {
				t.Fatalf("parsed %+v", a)
			}
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/test$file.text", "/test%24file.text"},
		{"/test%24file.text", "/test%24file.text"},
		{"/a%2fb", "/a%2Fb"},
		{"/a%7Eb%41", "/a~bA"},
		{"/a b", "/a%20b"},
		{"/%E2%82%AC", "/%E2%82%AC"},
		{"/€", "/%E2%82%AC"},
		{"/./../x", "/./../x"},
		{"/100%", "/100%25"},
		{"/%zz", "/%25zz"},
		{"/a+b", "/a%2Bb"},
	}
	for _, tc := range cases {
		if got := CanonicalURI(tc.in); got != tc.want {
			t.Errorf("CanonicalURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	cases := []struct {
		in      string
		presign bool
		want    string
	}{
		{"", false, ""},
		{"lifecycle", false, "lifecycle="},
		{"max-keys=2&prefix=J", false, "max-keys=2&prefix=J"},
		{"prefix=J&max-keys=2", false, "max-keys=2&prefix=J"},
		{"a=2&a=10&a=1", false, "a=1&a=10&a=2"},
		{"k=a+b&j=%7e&x=%2f", false, "j=~&k=a%20b&x=%2F"},
		{"X-Amz-Signature=abc&X-Amz-Date=1", true, "X-Amz-Date=1"},
		{"X-Amz-Signature=abc&X-Amz-Date=1", false, "X-Amz-Date=1&X-Amz-Signature=abc"},
		{"&&a=1&", false, "a=1"},
	}
	for _, tc := range cases {
		if got := CanonicalQuery(tc.in, tc.presign); got != tc.want {
			t.Errorf("CanonicalQuery(%q, %v) = %q, want %q", tc.in, tc.presign, got, tc.want)
		}
	}
}

func TestPresignURLLimits(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://b.example/k", nil)
	for _, d := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 7*24*time.Hour + time.Second} {
		if _, err := PresignURL(r, exampleCreds, "us-east-1", "s3", d, testNow); !errors.Is(err, ErrMalformedAuth) {
			t.Errorf("expires %v: err %v", d, err)
		}
	}
	if _, err := PresignURL(r, exampleCreds, "us-east-1", "s3", 7*24*time.Hour, testNow); err != nil {
		t.Errorf("max expiry: %v", err)
	}
	if r.URL.RawQuery != "" {
		t.Errorf("PresignURL modified the request: %q", r.URL.RawQuery)
	}
}

func TestSignRequestNonCanonicalHeaderKey(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://b.example/k", nil)
	r.Header["x-amz-meta-raw"] = []string{"v"}
	SignRequest(r, exampleCreds, "us-east-1", "s3", EmptySHA256, testNow)
	if !strings.Contains(r.Header.Get("Authorization"), "x-amz-meta-raw") {
		t.Fatalf("header not signed: %s", r.Header.Get("Authorization"))
	}
	if _, err := verifierAt(testNow).Verify(context.Background(), toServer(t, r)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}
