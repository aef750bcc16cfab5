package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/s3/sigv4"
	"github.com/prometheus/client_golang/prometheus"
)

// Regression tests for the behaviour gaps ceph/s3-tests found
// (tests/s3tests/TRIAGE.md), against the real store and the fake.

func TestConditionalPutForms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("cond")
		e.mustPut("cond", "k", []byte("old"))
		resp, _ := e.do(rawReq{method: "HEAD", path: "/cond/k"})
		etag := resp.Header.Get("ETag")

		// If-Match: * overwrites an existing key (test_put_object_ifmatch_overwrite_existed_good).
		resp, body := e.do(rawReq{method: "PUT", path: "/cond/k", body: []byte("new"), header: map[string]string{"If-Match": "*"}})
		if resp.StatusCode != 200 {
			t.Fatalf("If-Match * on existing: %d %s", resp.StatusCode, body)
		}
		// If-Match: * on a missing key: 404 NoSuchKey, nothing stored (test_put_object_ifmatch_nonexisted_failed).
		resp, body = e.do(rawReq{method: "PUT", path: "/cond/missing", body: []byte("x"), header: map[string]string{"If-Match": "*"}})
		wantError(t, resp, body, 404, CodeNoSuchKey)
		if e.exists("cond", "missing") {
			t.Fatal("If-Match * on a missing key created it")
		}
		// If-Match with an ETag on a missing key: 404 too, as AWS answers.
		resp, body = e.do(rawReq{method: "PUT", path: "/cond/missing", body: []byte("x"), header: map[string]string{"If-Match": etag}})
		wantError(t, resp, body, 404, CodeNoSuchKey)

		resp, _ = e.do(rawReq{method: "HEAD", path: "/cond/k"})
		cur := resp.Header.Get("ETag")
		// If-None-Match with another ETag writes (test_put_object_ifnonmatch_good).
		resp, body = e.do(rawReq{method: "PUT", path: "/cond/k", body: []byte("newer"), header: map[string]string{"If-None-Match": "ABCORZ"}})
		if resp.StatusCode != 200 {
			t.Fatalf("If-None-Match other etag: %d %s", resp.StatusCode, body)
		}
		cur = resp.Header.Get("ETag")
		if cur == etag {
			t.Fatal("etag unchanged after overwrite")
		}
		// If-None-Match with the current ETag: 412, unchanged (test_put_object_ifnonmatch_failed).
		resp, body = e.do(rawReq{method: "PUT", path: "/cond/k", body: []byte("refused"), header: map[string]string{"If-None-Match": cur}})
		wantError(t, resp, body, 412, CodePreconditionFailed)
		resp, body = e.do(rawReq{method: "GET", path: "/cond/k"})
		if string(body) != "newer" {
			t.Fatalf("object after refused write: %q", body)
		}
		// If-None-Match with an ETag on a missing key writes.
		resp, body = e.do(rawReq{method: "PUT", path: "/cond/fresh", body: []byte("x"), header: map[string]string{"If-None-Match": cur}})
		if resp.StatusCode != 200 {
			t.Fatalf("If-None-Match etag on missing key: %d %s", resp.StatusCode, body)
		}
	})
}

func TestListMaxKeysZeroAndEmptyToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("mk0")
		for _, k := range []string{"bar", "baz", "foo"} {
			e.mustPut("mk0", k, []byte(k))
		}
		// max-keys=0: nothing, not truncated, no next marker or token
		// (test_bucket_list_maxkeys_zero, test_bucket_listv2_maxkeys_zero).
		resp, body := e.do(rawReq{method: "GET", path: "/mk0?max-keys=0"})
		var v1 listBucketResult
		if err := xml.Unmarshal(body, &v1); err != nil || resp.StatusCode != 200 {
			t.Fatalf("v1: %d %s", resp.StatusCode, body)
		}
		if v1.IsTruncated || len(v1.Contents) != 0 || v1.NextMarker != "" || v1.MaxKeys != 0 {
			t.Fatalf("v1 max-keys=0: %s", body)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/mk0?list-type=2&max-keys=0"})
		var v2 listBucketResultV2
		if err := xml.Unmarshal(body, &v2); err != nil || resp.StatusCode != 200 {
			t.Fatalf("v2: %d %s", resp.StatusCode, body)
		}
		if v2.IsTruncated || len(v2.Contents) != 0 || v2.KeyCount != 0 || v2.NextContinuationToken != "" {
			t.Fatalf("v2 max-keys=0: %s", body)
		}
		resp, body = e.do(rawReq{method: "GET", path: "/nosuch?max-keys=0"})
		wantError(t, resp, body, 404, CodeNoSuchBucket)

		// continuation-token= (empty) is no token, echoed empty
		// (test_bucket_listv2_continuationtoken_empty).
		resp, body = e.do(rawReq{method: "GET", path: "/mk0?list-type=2&continuation-token="})
		v2 = listBucketResultV2{}
		if err := xml.Unmarshal(body, &v2); err != nil || resp.StatusCode != 200 {
			t.Fatalf("v2 empty token: %d %s", resp.StatusCode, body)
		}
		if len(v2.Contents) != 3 || v2.IsTruncated || v2.ContinuationToken == nil || *v2.ContinuationToken != "" {
			t.Fatalf("v2 empty token: %s", body)
		}
		if !strings.Contains(string(body), "<ContinuationToken></ContinuationToken>") {
			t.Fatalf("empty token not echoed: %s", body)
		}
		// Without the parameter there is no element at all.
		_, body = e.do(rawReq{method: "GET", path: "/mk0?list-type=2"})
		if strings.Contains(string(body), "ContinuationToken") {
			t.Fatalf("token echoed though absent: %s", body)
		}
	})
}

// dateOnlyRequest signs a PUT the way botocore does when the caller sets a
// Date header: Date signed, no X-Amz-Date.
func (e *env) dateOnlyRequest(path, date string, at time.Time, body string) *http.Request {
	e.t.Helper()
	r, err := http.NewRequest("PUT", e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	payload := hex.EncodeToString(sum[:])
	r.Header.Set("Date", date)
	r.Header.Set("X-Amz-Content-Sha256", payload)
	signed := []string{"date", "host", "x-amz-content-sha256"}
	scope := sigv4.Scope(at, testRegion, "s3")
	key := sigv4.SigningKey(testSecret, at.UTC().Format(sigv4.DateFormat), testRegion, "s3")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sigv4.StringToSign(at, scope, sigv4.CanonicalRequest(r, signed, payload, false))))
	r.Header.Set("Authorization", sigv4.Algorithm+" Credential="+testKeyID+"/"+scope+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+hex.EncodeToString(mac.Sum(nil)))
	return r
}

// test_object_create_date_and_amz_date, test_object_create_amz_date_and_no_date.
func TestDateHeaderOnlySigV4(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("date")
		at := time.Now().UTC().Truncate(time.Second)
		for _, date := range []string{at.Format("Mon, 02 Jan 2006 15:04:05 -0000"), at.Format(http.TimeFormat)} {
			resp, err := e.srv.Client().Do(e.dateOnlyRequest("/date/k", date, at, "body"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("Date %q: %d %s", date, resp.StatusCode, b)
			}
		}
		resp, err := e.srv.Client().Do(e.dateOnlyRequest("/date/k", "yesterday", at, "body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb errorBody
		if err := xml.Unmarshal(b, &eb); err != nil || resp.StatusCode != 400 || eb.Code != string(CodeAuthorizationHeaderMalformed) {
			t.Fatalf("bad Date: %d %s", resp.StatusCode, b)
		}
		if eb.Message != "bad Date header" {
			t.Fatalf("message %q leaks the error chain or lost the reason", eb.Message)
		}
	})
}

// test_bucket_create_exists, test_bucket_recreate_not_overriding: in
// us-east-1 the owner re-creating its bucket gets 200 and the bucket keeps
// its objects; in any other region 409 BucketAlreadyOwnedByYou. Another
// key still gets 409 BucketAlreadyExists.
func TestCreateOwnedBucket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.mustBucket("own")
		e.mustPut("own", "k", []byte("kept"))
		resp, body := e.do(rawReq{method: "PUT", path: "/own"})
		if resp.StatusCode != 200 {
			t.Fatalf("us-east-1 re-create: %d %s", resp.StatusCode, body)
		}
		if _, body = e.do(rawReq{method: "GET", path: "/own/k"}); string(body) != "kept" {
			t.Fatalf("object after re-create: %q", body)
		}
		other := sigv4.Credentials{AccessKeyID: otherKeyID, SecretAccessKey: otherSecret}
		resp, body = e.do(rawReq{method: "PUT", path: "/own", creds: &other})
		if resp.StatusCode != 409 && resp.StatusCode != 403 {
			t.Fatalf("other key re-create: %d %s", resp.StatusCode, body)
		}

		h, err := NewHandler(Config{Backend: e.store, Region: "eu-west-1", RootDomain: testRootDomain, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		saved := e.srv
		e.srv = srv
		defer func() { e.srv = saved }()
		resp, body = e.do(rawReq{method: "PUT", path: "/own", region: "eu-west-1"})
		wantError(t, resp, body, 409, CodeBucketAlreadyOwnedByYou)
	})
}

// test_multipart_checksum_sha256, test_multipart_reupload_checksum_and_etag,
// test_multipart_upload{,_small}: Complete validates a composite
// x-amz-checksum-sha256, returns the composite checksum, and a Complete
// retried after it succeeded answers 200 with the same ETag and checksum.
func TestCompleteChecksumAndRetry(t *testing.T) {
	e := newEnv(t, openModel)
	e.mustBucket("mpu")
	resp, body := e.do(rawReq{method: "POST", path: "/mpu/k?uploads", header: map[string]string{"X-Amz-Checksum-Algorithm": "SHA256"}})
	var init initiateMultipartUploadResult
	if err := xml.Unmarshal(body, &init); err != nil || resp.StatusCode != 200 || init.UploadID == "" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	uploadID := init.UploadID
	const partSum = "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=" // sha256 of 1024 'A'
	const composite = "Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1"
	resp, body = e.do(rawReq{method: "PUT", path: "/mpu/k?partNumber=1&uploadId=" + init.UploadID,
		body: []byte(strings.Repeat("A", 1024)), header: map[string]string{"X-Amz-Checksum-Sha256": partSum}})
	if resp.StatusCode != 200 {
		t.Fatalf("upload part: %d %s", resp.StatusCode, body)
	}
	doc := []byte("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + resp.Header.Get("ETag") +
		"</ETag></Part></CompleteMultipartUpload>")
	complete := func(sum string) (*http.Response, []byte) {
		h := map[string]string{}
		if sum != "" {
			h["X-Amz-Checksum-Sha256"] = sum
		}
		return e.do(rawReq{method: "POST", path: "/mpu/k?uploadId=" + uploadID, body: doc, header: h})
	}
	for _, bad := range []string{"bad", "uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-1", composite[:len(composite)-1] + "2"} {
		resp, body = complete(bad)
		wantError(t, resp, body, 400, CodeBadDigest)
	}
	if e.exists("mpu", "k") {
		t.Fatal("refused Complete created the object")
	}
	var first completeMultipartUploadResult
	resp, body = complete(composite)
	if err := xml.Unmarshal(body, &first); err != nil || resp.StatusCode != 200 || first.ChecksumSHA256 != composite {
		t.Fatalf("complete: %d %s", resp.StatusCode, body)
	}
	for _, sum := range []string{composite, ""} {
		var again completeMultipartUploadResult
		resp, body = complete(sum)
		if err := xml.Unmarshal(body, &again); err != nil || resp.StatusCode != 200 ||
			again.ETag != first.ETag || again.ChecksumSHA256 != composite {
			t.Fatalf("retried complete (checksum %q): %d %s", sum, resp.StatusCode, body)
		}
	}
	resp, body = complete("uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-1")
	wantError(t, resp, body, 400, CodeBadDigest)
	resp, _ = e.do(rawReq{method: "HEAD", path: "/mpu/k", header: map[string]string{"X-Amz-Checksum-Mode": "ENABLED"}})
	if resp.Header.Get("X-Amz-Checksum-Sha256") != composite || resp.Header.Get("ETag") != first.ETag {
		t.Fatalf("head: %v", resp.Header)
	}
	// Aborted uploads stay gone.
	resp, body = e.do(rawReq{method: "POST", path: "/mpu/k2?uploads"})
	init = initiateMultipartUploadResult{}
	if err := xml.Unmarshal(body, &init); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create 2: %d %s", resp.StatusCode, body)
	}
	if resp, body = e.do(rawReq{method: "DELETE", path: "/mpu/k2?uploadId=" + init.UploadID}); resp.StatusCode != 204 {
		t.Fatalf("abort: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(rawReq{method: "POST", path: "/mpu/k2?uploadId=" + init.UploadID, body: doc})
	wantError(t, resp, body, 404, CodeNoSuchUpload)
	// Another upload id on the completed key is no retry.
	resp, body = e.do(rawReq{method: "POST", path: "/mpu/k?uploadId=" + init.UploadID, body: doc})
	wantError(t, resp, body, 404, CodeNoSuchUpload)
}

// test_list_buckets_paginated: ListBuckets honours max-buckets,
// continuation-token and prefix.
func TestListBucketsPaginated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		for _, b := range []string{"pa", "pb", "pc", "qa"} {
			e.mustBucket(b + "-bucket")
		}
		page := func(query string) listAllMyBucketsResult {
			t.Helper()
			resp, body := e.do(rawReq{method: "GET", path: "/?" + query})
			var out listAllMyBucketsResult
			if err := xml.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 {
				t.Fatalf("list buckets %s: %d %s", query, resp.StatusCode, body)
			}
			return out
		}
		names := func(l listAllMyBucketsResult) string {
			var n []string
			for _, b := range l.Buckets {
				n = append(n, strings.TrimSuffix(b.Name, "-bucket"))
			}
			return strings.Join(n, ",")
		}
		var got []string
		query := "max-buckets=1"
		for i := 0; i < 10; i++ {
			l := page(query)
			got = append(got, names(l))
			if l.ContinuationToken == "" {
				break
			}
			query = "max-buckets=1&continuation-token=" + l.ContinuationToken
		}
		if strings.Join(got, "|") != "pa|pb|pc|qa" {
			t.Fatalf("pages %q", got)
		}
		if l := page("max-buckets=4"); names(l) != "pa,pb,pc,qa" || l.ContinuationToken != "" {
			t.Fatalf("one full page: %s token %q", names(l), l.ContinuationToken)
		}
		l := page("max-buckets=2&prefix=p")
		if names(l) != "pa,pb" || l.ContinuationToken == "" || l.Prefix != "p" {
			t.Fatalf("prefix page 1: %+v", l)
		}
		if l = page("max-buckets=2&prefix=p&continuation-token=" + l.ContinuationToken); names(l) != "pc" || l.ContinuationToken != "" {
			t.Fatalf("prefix page 2: %+v", l)
		}
		if l = page(""); names(l) != "pa,pb,pc,qa" || l.ContinuationToken != "" {
			t.Fatalf("unpaged: %+v", l)
		}
		for _, bad := range []string{"max-buckets=0", "max-buckets=10001", "max-buckets=x", "continuation-token=garbage!"} {
			resp, body := e.do(rawReq{method: "GET", path: "/?" + bad})
			wantError(t, resp, body, 400, CodeInvalidArgument)
		}
	})
}
