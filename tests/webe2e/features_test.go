package webe2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/s3/sigv4"
	"github.com/entrepot/entrepot/tests/harness"
)

func rawDo(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestCORS(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "cors")
	n.put(t, "cors", "index.html", "text/html", []byte("<p>hi</p>"))
	if _, err := n.s3.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors")}); apiCode(err) != "NoSuchCORSConfiguration" {
		t.Fatalf("get before put: %v", err)
	}
	for _, tc := range []struct {
		name string
		rule types.CORSRule
		code string
	}{
		{"bad method", types.CORSRule{AllowedMethods: []string{"PATCH"}, AllowedOrigins: []string{"*"}}, "InvalidRequest"},
		{"two wildcards", types.CORSRule{AllowedMethods: []string{"GET"}, AllowedOrigins: []string{"https://*.*.x"}}, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.s3.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors"), CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{tc.rule}}})
			if apiCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	rules := []types.CORSRule{{ID: aws.String("app"), AllowedMethods: []string{"GET", "PUT"}, AllowedOrigins: []string{"https://app.example"},
		AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: aws.Int32(600)}}
	if _, err := n.s3.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors"), CORSConfiguration: &types.CORSConfiguration{CORSRules: rules}}); err != nil {
		t.Fatal(err)
	}
	got, err := n.s3.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors")})
	if err != nil || len(got.CORSRules) != 1 || aws.ToInt32(got.CORSRules[0].MaxAgeSeconds) != 600 || got.CORSRules[0].ExposeHeaders[0] != "ETag" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := n.admin.SetBucketWebsite(ctx, admin.WebsiteRequest{Bucket: "cors", Allow: true}); err != nil {
		t.Fatal(err)
	}
	preflight := func(base, host, origin, method, headers string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", base, nil)
		if host != "" {
			req.Host = host
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		resp, _ := rawDo(t, req)
		return resp
	}
	for _, ep := range []struct{ name, base, host string }{
		{"s3", n.endpoint + "/cors/index.html", ""},
		{"web", "http://" + n.web + "/index.html", "cors"},
	} {
		t.Run("preflight "+ep.name, func(t *testing.T) {
			resp := preflight(ep.base, ep.host, "https://app.example", "PUT", "content-type, x-amz-date")
			if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PUT") || resp.Header.Get("Access-Control-Max-Age") != "600" {
				t.Fatalf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
			}
			if resp := preflight(ep.base, ep.host, "https://evil.example", "GET", ""); resp.StatusCode != 403 {
				t.Fatalf("other origin: %d", resp.StatusCode)
			}
			if resp := preflight(ep.base, ep.host, "https://app.example", "DELETE", ""); resp.StatusCode != 403 {
				t.Fatalf("other method: %d", resp.StatusCode)
			}
		})
	}
	// Actual requests get the headers too.
	req, _ := http.NewRequest("GET", "http://"+n.web+"/index.html", nil)
	req.Host = "cors"
	req.Header.Set("Origin", "https://app.example")
	resp, _ := rawDo(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Fatalf("web GET with Origin: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest("GET", n.endpoint+"/cors/index.html", nil)
	req.Header.Set("Origin", "https://app.example")
	sigv4.SignRequest(req, sigv4.Credentials{AccessKeyID: n.creds.AccessKeyID, SecretAccessKey: n.creds.SecretAccessKey}, n.creds.Region, "s3", "UNSIGNED-PAYLOAD", time.Now())
	resp, body := rawDo(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("S3 GET with Origin: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if _, err := n.s3.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("cors")}); err != nil {
		t.Fatal(err)
	}
	if resp := preflight(n.endpoint+"/cors/x", "", "https://app.example", "GET", ""); resp.StatusCode != 403 {
		t.Fatalf("preflight after delete: %d", resp.StatusCode)
	}
}

// postForm builds a browser upload form signed with SigV4.
func postForm(t *testing.T, n *node, bucket string, policy map[string]any, fields map[string]string, file []byte, sign bool) *http.Request {
	t.Helper()
	now := time.Now().UTC()
	date := now.Format("20060102")
	cred := fmt.Sprintf("%s/%s/%s/s3/aws4_request", n.creds.AccessKeyID, date, n.creds.Region)
	all := map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": cred, "x-amz-date": now.Format("20060102T150405Z")}
	for k, v := range fields {
		all[k] = v
	}
	conds := policy["conditions"].([]any)
	for _, k := range []string{"x-amz-algorithm", "x-amz-credential", "x-amz-date"} {
		conds = append(conds, map[string]string{k: all[k]})
	}
	policy["conditions"] = conds
	pj, err := jsonMarshal(policy)
	if err != nil {
		t.Fatal(err)
	}
	p64 := base64.StdEncoding.EncodeToString(pj)
	all["policy"] = p64
	m := hmac.New(sha256.New, sigv4.SigningKey(n.creds.SecretAccessKey, date, n.creds.Region, "s3"))
	m.Write([]byte(p64))
	all["x-amz-signature"] = hex.EncodeToString(m.Sum(nil))
	if !sign {
		all["x-amz-signature"] = strings.Repeat("0", 64)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range all {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "photo.jpg")
	_, _ = fw.Write(file)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", n.endpoint+"/"+bucket, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

func TestPostObject(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "uploads")
	exp := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	policy := func(extra ...any) map[string]any {
		return map[string]any{"expiration": exp, "conditions": append([]any{
			map[string]string{"bucket": "uploads"}, []any{"starts-with", "$key", "user/"},
			[]any{"starts-with", "$Content-Type", "image/"}, []any{"content-length-range", 1, 1000},
		}, extra...)}
	}
	fields := map[string]string{"key": "user/${filename}", "Content-Type": "image/jpeg"}
	resp, body := rawDo(t, postForm(t, n, "uploads", policy(), fields, []byte("jpeg bytes"), true))
	if resp.StatusCode != 204 {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}
	out, err := n.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("uploads"), Key: aws.String("user/photo.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(data) != "jpeg bytes" || aws.ToString(out.ContentType) != "image/jpeg" {
		t.Fatalf("stored %q %q", data, aws.ToString(out.ContentType))
	}
	// success_action_status 201 and redirect.
	f201 := map[string]string{"key": "user/a", "Content-Type": "image/png", "success_action_status": "201"}
	resp, body = rawDo(t, postForm(t, n, "uploads", policy(map[string]string{"success_action_status": "201"}), f201, []byte("x"), true))
	if resp.StatusCode != 201 || !strings.Contains(string(body), "<Key>user/a</Key>") {
		t.Fatalf("201: %d %s", resp.StatusCode, body)
	}
	fr := map[string]string{"key": "user/b", "Content-Type": "image/png", "success_action_redirect": "https://app.example/done"}
	resp, body = rawDo(t, postForm(t, n, "uploads", policy(map[string]string{"success_action_redirect": "https://app.example/done"}), fr, []byte("x"), true))
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "https://app.example/done?") || !strings.Contains(resp.Header.Get("Location"), "key=user%2Fb") {
		t.Fatalf("redirect: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	bad := []struct {
		name   string
		fields map[string]string
		policy map[string]any
		file   []byte
		sign   bool
		status int
		code   string
	}{
		{"bad signature", fields, policy(), []byte("x"), false, 403, "SignatureDoesNotMatch"},
		{"key outside prefix", map[string]string{"key": "other/x", "Content-Type": "image/jpeg"}, policy(), []byte("x"), true, 403, "AccessDenied"},
		{"too large", fields, policy(), bytes.Repeat([]byte("x"), 1001), true, 400, "EntityTooLarge"},
		{"too small", fields, policy(), nil, true, 400, "EntityTooSmall"},
		{"extra field", map[string]string{"key": "user/x", "Content-Type": "image/jpeg", "x-amz-meta-a": "b"}, policy(), []byte("x"), true, 403, "AccessDenied"},
		{"expired", fields, map[string]any{"expiration": "2020-01-01T00:00:00.000Z", "conditions": policy()["conditions"]}, []byte("x"), true, 403, "AccessDenied"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawDo(t, postForm(t, n, "uploads", tc.policy, tc.fields, tc.file, tc.sign))
			if resp.StatusCode != tc.status || !strings.Contains(string(body), "<Code>"+tc.code+"</Code>") {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
	if _, err := n.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("uploads"), Key: aws.String("user/x")}); err == nil {
		t.Fatal("a refused upload was stored")
	}
}

func TestLifecycleConfig(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "lifecycle")
	if _, err := n.s3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("lifecycle")}); apiCode(err) != "NoSuchLifecycleConfiguration" {
		t.Fatalf("get before put: %v", err)
	}
	put := func(rules ...types.LifecycleRule) error {
		_, err := n.s3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("lifecycle"),
			LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: rules}})
		return err
	}
	for _, tc := range []struct {
		name string
		rule types.LifecycleRule
		code string
	}{
		{"zero days", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(0)}}, "InvalidArgument"},
		{"date not midnight", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			Expiration: &types.LifecycleExpiration{Date: aws.Time(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))}}, "InvalidArgument"},
		{"no action", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}}, "InvalidRequest"},
		{"transition", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			Transitions: []types.Transition{{Days: aws.Int32(30), StorageClass: types.TransitionStorageClassGlacier}}}, "NotImplemented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := put(tc.rule); apiCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	err := put(
		types.LifecycleRule{ID: aws.String("logs"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{And: &types.LifecycleRuleAndOperator{
			Prefix: aws.String("logs/"), ObjectSizeGreaterThan: aws.Int64(10), ObjectSizeLessThan: aws.Int64(1000)}}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(7)}},
		types.LifecycleRule{ID: aws.String("mpu"), Status: types.ExpirationStatusDisabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(3)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(types.LifecycleRule{ID: aws.String("a"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
		types.LifecycleRule{ID: aws.String("a"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}}); apiCode(err) != "InvalidArgument" {
		t.Fatalf("duplicate ids: %v", err)
	}
	got, err := n.s3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("lifecycle")})
	if err != nil || len(got.Rules) != 2 {
		t.Fatalf("get: %+v %v", got, err)
	}
	r0, r1 := got.Rules[0], got.Rules[1]
	if aws.ToString(r0.ID) != "logs" || aws.ToInt32(r0.Expiration.Days) != 7 || r0.Filter == nil || r0.Filter.And == nil ||
		aws.ToString(r0.Filter.And.Prefix) != "logs/" || aws.ToInt64(r0.Filter.And.ObjectSizeLessThan) != 1000 ||
		r1.Status != types.ExpirationStatusDisabled || aws.ToInt32(r1.AbortIncompleteMultipartUpload.DaysAfterInitiation) != 3 {
		t.Fatalf("round trip: %+v / %+v", r0, r1)
	}
	if _, err := n.s3.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: aws.String("lifecycle")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.s3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("lifecycle")}); apiCode(err) != "NoSuchLifecycleConfiguration" {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestQuotas(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "quota")
	n.bucket(t, "src")
	size, objs := int64(10_000), int64(3)
	if _, err := n.admin.SetBucketQuota(ctx, admin.QuotaRequest{Bucket: "quota", MaxSize: &size, MaxObjects: &objs}); err != nil {
		t.Fatal(err)
	}
	n.put(t, "quota", "a", "", pattern(6000, 1))
	_, err := n.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("quota"), Key: aws.String("b"), Body: bytes.NewReader(pattern(5000, 2))})
	if apiCode(err) != "QuotaExceeded" {
		t.Fatalf("size quota on put: %v", err)
	}
	n.put(t, "quota", "a", "", pattern(9000, 3)) // replacing: only the difference counts
	n.put(t, "quota", "b", "", []byte("1"))
	n.put(t, "src", "big", "", pattern(5000, 4))
	_, err = n.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("quota"), Key: aws.String("c"), CopySource: aws.String("src/big")})
	if apiCode(err) != "QuotaExceeded" {
		t.Fatalf("size quota on copy: %v", err)
	}
	n.put(t, "quota", "c", "", []byte("1"))
	_, err = n.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("quota"), Key: aws.String("d"), Body: strings.NewReader("1")})
	if apiCode(err) != "QuotaExceeded" {
		t.Fatalf("object quota: %v", err)
	}
	// Complete is checked too.
	big := int64(0)
	objs = 10
	if _, err := n.admin.SetBucketQuota(ctx, admin.QuotaRequest{Bucket: "quota", MaxSize: &size, MaxObjects: &objs}); err != nil {
		t.Fatal(err)
	}
	up, err := n.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := n.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("quota"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(pattern(2000, 5))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
	if apiCode(err) != "QuotaExceeded" {
		t.Fatalf("quota on complete: %v", err)
	}
	// Removing the limits lets writes through.
	if _, err := n.admin.SetBucketQuota(ctx, admin.QuotaRequest{Bucket: "quota", MaxSize: &big, MaxObjects: &big}); err != nil {
		t.Fatal(err)
	}
	n.put(t, "quota", "d", "", pattern(50_000, 6))
}

func TestTaggingACLStorageClass(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "tags")
	_, err := n.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tags"), Key: aws.String("k"), Body: strings.NewReader("data"),
		Tagging: aws.String("a=1&b=two"), StorageClass: types.StorageClassStandardIa})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := n.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if err != nil || len(tg.TagSet) != 2 || aws.ToString(tg.TagSet[0].Key) != "a" || aws.ToString(tg.TagSet[1].Value) != "two" {
		t.Fatalf("get tags: %+v %v", tg, err)
	}
	out, err := n.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if err != nil || aws.ToInt32(out.TagCount) != 2 {
		t.Fatalf("tag count: %v %v", err, out)
	}
	out.Body.Close()
	if _, err := n.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("x"), Value: aws.String("y")}}}}); err != nil {
		t.Fatal(err)
	}
	tg, _ = n.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if len(tg.TagSet) != 1 || aws.ToString(tg.TagSet[0].Key) != "x" {
		t.Fatalf("replaced tags: %+v", tg.TagSet)
	}
	// CopyObject: tags follow the tagging directive.
	if _, err := n.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("tags"), Key: aws.String("copy-keep"), CopySource: aws.String("tags/k"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/plain")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("tags"), Key: aws.String("copy-new"), CopySource: aws.String("tags/k"),
		TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("n=1")}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"copy-keep": "x", "copy-new": "n"} {
		tg, err := n.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String(key)})
		if err != nil || len(tg.TagSet) != 1 || aws.ToString(tg.TagSet[0].Key) != want {
			t.Fatalf("%s tags: %+v %v", key, tg, err)
		}
	}
	// PutObjectTagging in a bucket where nothing was tagged yet: GET counts them.
	n.bucket(t, "tags2")
	n.put(t, "tags2", "k", "", []byte("v"))
	if _, err := n.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags2"), Key: aws.String("k"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("x"), Value: aws.String("y")}}}}); err != nil {
		t.Fatal(err)
	}
	if o, err := n.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tags2"), Key: aws.String("k")}); err != nil || aws.ToInt32(o.TagCount) != 1 {
		t.Fatalf("tag count after PutObjectTagging: %v", err)
	} else {
		o.Body.Close()
	}
	var eleven []types.Tag
	for i := range 11 {
		eleven = append(eleven, types.Tag{Key: aws.String(fmt.Sprint(i)), Value: aws.String("v")})
	}
	for _, tc := range []struct {
		name string
		tags []types.Tag
	}{
		{"too many", eleven},
		{"duplicate key", []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("a"), Value: aws.String("2")}}},
		{"aws prefix", []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k"), Tagging: &types.Tagging{TagSet: tc.tags}})
			if apiCode(err) != "InvalidTag" {
				t.Fatalf("got %v, want InvalidTag", err)
			}
		})
	}
	if _, err := n.s3.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	tg, _ = n.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if len(tg.TagSet) != 0 {
		t.Fatalf("tags after delete: %+v", tg.TagSet)
	}
	if _, err := n.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("missing")}); apiCode(err) != "NoSuchKey" {
		t.Fatalf("tags of missing object: %v", err)
	}
	// Tags given at CreateMultipartUpload end up on the object.
	up, err := n.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("tags"), Key: aws.String("mp"), Tagging: aws.String("src=mpu")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := n.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("tags"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("tags"), Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	tg, err = n.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("mp")})
	if err != nil || len(tg.TagSet) != 1 || aws.ToString(tg.TagSet[0].Value) != "mpu" {
		t.Fatalf("multipart tags: %+v %v", tg, err)
	}
	// Bucket tagging.
	if _, err := n.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tags")}); apiCode(err) != "NoSuchTagSet" {
		t.Fatalf("bucket tags before put: %v", err)
	}
	if _, err := n.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("tags"), Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}}}}); err != nil {
		t.Fatal(err)
	}
	bt, err := n.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tags")})
	if err != nil || len(bt.TagSet) != 1 || aws.ToString(bt.TagSet[0].Value) != "web" {
		t.Fatalf("bucket tags: %+v %v", bt, err)
	}
	if _, err := n.s3.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: aws.String("tags")}); err != nil {
		t.Fatal(err)
	}
	// ACLs: private, owner FULL_CONTROL.
	acl, err := n.s3.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("tags")})
	if err != nil || len(acl.Grants) != 1 || acl.Grants[0].Permission != types.PermissionFullControl || aws.ToString(acl.Owner.ID) == "" ||
		aws.ToString(acl.Grants[0].Grantee.ID) != aws.ToString(acl.Owner.ID) || acl.Grants[0].Grantee.Type != types.TypeCanonicalUser {
		t.Fatalf("bucket acl: %+v %v", acl, err)
	}
	oacl, err := n.s3.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if err != nil || len(oacl.Grants) != 1 {
		t.Fatalf("object acl: %+v %v", oacl, err)
	}
	if _, err := n.s3.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String("tags"), Key: aws.String("k"), ACL: types.ObjectCannedACLPrivate}); err != nil {
		t.Fatalf("put private acl: %v", err)
	}
	if _, err := n.s3.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String("tags"), Key: aws.String("k"), ACL: types.ObjectCannedACLPublicRead}); err != nil {
		t.Fatalf("public-read canned acl (accepted, ignored): %v", err)
	}
	if _, err := n.s3.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String("tags"), Key: aws.String("k"), GrantRead: aws.String("uri=http://acs.amazonaws.com/groups/global/AllUsers")}); apiCode(err) != "NotImplemented" {
		t.Fatalf("explicit grant: %v", err)
	}
	// Storage classes.
	_, err = n.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tags"), Key: aws.String("sc"), Body: strings.NewReader("x"), StorageClass: "FANCY"})
	if apiCode(err) != "InvalidStorageClass" {
		t.Fatalf("bad storage class: %v", err)
	}
}

// TestAWSCLIWebsite runs `aws s3 website` and reads the site back.
func TestAWSCLIWebsite(t *testing.T) {
	requireTool(t, awsBin)
	n := startNode(t)
	n.bucket(t, "awsweb")
	uploadSite(t, n, "awsweb")
	env, err := harness.NewClientEnv(t.TempDir(), n.creds, n.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	run(t, env.Env, time.Minute, awsBin, "--endpoint-url", n.endpoint, "s3", "website", "s3://awsweb", "--index-document", "index.html", "--error-document", "404.html")
	out := run(t, env.Env, time.Minute, awsBin, "--endpoint-url", n.endpoint, "s3api", "get-bucket-website", "--bucket", "awsweb")
	if !strings.Contains(out, `"Suffix": "index.html"`) || !strings.Contains(out, `"Key": "404.html"`) {
		t.Fatalf("get-bucket-website: %s", out)
	}
	resp, body := n.webDo(t, "GET", "awsweb", "/missing", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "custom not found") {
		t.Fatalf("error document: %d %s", resp.StatusCode, body)
	}
	run(t, env.Env, time.Minute, awsBin, "--endpoint-url", n.endpoint, "s3api", "delete-bucket-website", "--bucket", "awsweb")
	if out, err := runErr(env.Env, time.Minute, awsBin, "--endpoint-url", n.endpoint, "s3api", "get-bucket-website", "--bucket", "awsweb"); err == nil || !strings.Contains(out, "NoSuchWebsiteConfiguration") {
		t.Fatalf("after delete: %v %s", err, out)
	}
}

// TestLifecycleRun sets rules with the SDK and runs a pass "in the future"
// through the admin hook (the daemon runs the same pass daily at 00:00 UTC).
func TestLifecycleRun(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "expiring")
	n.put(t, "expiring", "tmp/a", "", []byte("a"))
	n.put(t, "expiring", "tmp/big", "", pattern(5000, 1))
	n.put(t, "expiring", "keep/a", "", []byte("a"))
	up, err := n.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("expiring"), Key: aws.String("keep/mp")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.s3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("expiring"),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{
			{ID: aws.String("tmp"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{And: &types.LifecycleRuleAndOperator{
				Prefix: aws.String("tmp/"), ObjectSizeLessThan: aws.Int64(1000)}}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(2)}},
			{ID: aws.String("mpu"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
				AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(1)}},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := n.admin.RunLifecycle(ctx, admin.LifecycleRunRequest{})
	if err != nil || st.Expired != 0 || st.Aborted != 0 {
		t.Fatalf("pass today: %+v %v", st, err)
	}
	st, err = n.admin.RunLifecycle(ctx, admin.LifecycleRunRequest{Now: time.Now().Add(4 * 24 * time.Hour).UTC().Format(time.RFC3339)})
	if err != nil || st.Expired != 1 || st.Aborted != 1 {
		t.Fatalf("pass in 4 days: %+v %v", st, err)
	}
	if _, err := n.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("expiring"), Key: aws.String("tmp/a")}); err == nil {
		t.Fatal("tmp/a survived")
	}
	for _, k := range []string{"tmp/big", "keep/a"} {
		if _, err := n.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("expiring"), Key: aws.String(k)}); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if _, err := n.s3.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("expiring"), Key: aws.String("keep/mp"), UploadId: up.UploadId}); apiCode(err) != "NoSuchUpload" {
		t.Fatalf("upload after abort rule: %v", err)
	}
}

// TestPostObjectBoto3Curl: a policy made by boto3's generate_presigned_post
// (what web apps' back ends use), uploaded by curl as a browser would.
func TestPostObjectBoto3Curl(t *testing.T) {
	requireTool(t, "/usr/bin/python3")
	requireTool(t, "/usr/bin/curl")
	n := startNode(t)
	n.bucket(t, "forms")
	home := t.TempDir()
	env, err := harness.NewClientEnv(home, n.creds, n.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
post = s3.generate_presigned_post("forms", "avatars/${filename}",
    Fields={"success_action_status": "201"},
    Conditions=[["starts-with", "$key", "avatars/"], {"success_action_status": "201"}, ["content-length-range", 1, 100000]],
    ExpiresIn=600)
print(json.dumps(post))
`
	out := run(t, env.Env, time.Minute, "/usr/bin/python3", "-c", script, n.endpoint)
	var post struct {
		URL    string            `json:"url"`
		Fields map[string]string `json:"fields"`
	}
	if err := jsonUnmarshal([]byte(out), &post); err != nil {
		t.Fatalf("boto3 output %q: %v", out, err)
	}
	file := home + "/me.png"
	if err := os.WriteFile(file, logoPNG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-sS", "-w", "\n%{http_code}"}
	for k, v := range post.Fields {
		args = append(args, "-F", k+"="+v)
	}
	args = append(args, "-F", "file=@"+file+";type=image/png", post.URL)
	res := run(t, env.Env, time.Minute, "/usr/bin/curl", args...)
	if !strings.HasSuffix(res, "\n201") || !strings.Contains(res, "<Key>avatars/me.png</Key>") {
		t.Fatalf("curl POST: %s", res)
	}
	head, err := n.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("forms"), Key: aws.String("avatars/me.png")})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(logoPNG(t))) {
		t.Fatalf("uploaded object: %v %+v", err, head)
	}
}
