package s3

import (
	"testing"
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
