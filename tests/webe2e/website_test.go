package webe2e

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/entrepot/entrepot/daemon/admin"
)

const siteIndex = `<!DOCTYPE html>
<html><head><title>entrepot site</title><link rel="stylesheet" href="style.css"></head>
<body><h1 id="title">Hello from a bucket</h1><img id="logo" src="img/logo.png" width="64" height="64">
<script>document.getElementById('title').dataset.js = 'ran';</script></body></html>
`

const siteCSS = "body { background: #ff0000; margin: 0; } h1 { color: #ffffff; font-size: 64px; }\n"

func logoPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{0, 0, 255, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// uploadSite puts a small site in bucket; content types are left to the
// web listener's extension guess for the PNG.
func uploadSite(t *testing.T, n *node, bucket string) {
	n.put(t, bucket, "index.html", "text/html", []byte(siteIndex))
	n.put(t, bucket, "style.css", "text/css", []byte(siteCSS))
	n.put(t, bucket, "img/logo.png", "", logoPNG(t))
	n.put(t, bucket, "docs/index.html", "text/html", []byte("<html><body>docs</body></html>"))
	n.put(t, bucket, "404.html", "text/html", []byte("<html><body>custom not found</body></html>"))
}

func TestWebsiteSDKConfig(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "site")
	_, err := n.s3.GetBucketWebsite(ctx, &s3.GetBucketWebsiteInput{Bucket: aws.String("site")})
	if apiCode(err) != "NoSuchWebsiteConfiguration" {
		t.Fatalf("get website before put: %v", err)
	}
	// Not served before the configuration exists.
	resp, _ := n.webDo(t, "GET", "site", "/", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("unconfigured site: %d", resp.StatusCode)
	}
	bad := []struct {
		name string
		cfg  types.WebsiteConfiguration
		code string
	}{
		{"no index", types.WebsiteConfiguration{ErrorDocument: &types.ErrorDocument{Key: aws.String("e.html")}}, "InvalidArgument"},
		{"index with slash", types.WebsiteConfiguration{IndexDocument: &types.IndexDocument{Suffix: aws.String("a/b.html")}}, "InvalidArgument"},
		{"redirect all with index", types.WebsiteConfiguration{IndexDocument: &types.IndexDocument{Suffix: aws.String("i.html")},
			RedirectAllRequestsTo: &types.RedirectAllRequestsTo{HostName: aws.String("example.com")}}, "InvalidArgument"},
		{"both replace", types.WebsiteConfiguration{IndexDocument: &types.IndexDocument{Suffix: aws.String("i.html")},
			RoutingRules: []types.RoutingRule{{Redirect: &types.Redirect{ReplaceKeyWith: aws.String("a"), ReplaceKeyPrefixWith: aws.String("b")}}}}, "InvalidArgument"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.s3.PutBucketWebsite(ctx, &s3.PutBucketWebsiteInput{Bucket: aws.String("site"), WebsiteConfiguration: &tc.cfg})
			if apiCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	want := types.WebsiteConfiguration{
		IndexDocument: &types.IndexDocument{Suffix: aws.String("index.html")},
		ErrorDocument: &types.ErrorDocument{Key: aws.String("404.html")},
		RoutingRules: []types.RoutingRule{
			{Condition: &types.Condition{KeyPrefixEquals: aws.String("old/")}, Redirect: &types.Redirect{ReplaceKeyPrefixWith: aws.String("docs/"), HttpRedirectCode: aws.String("302")}},
			{Condition: &types.Condition{HttpErrorCodeReturnedEquals: aws.String("404"), KeyPrefixEquals: aws.String("gone/")}, Redirect: &types.Redirect{HostName: aws.String("example.com"), Protocol: types.ProtocolHttps}},
		},
	}
	if _, err := n.s3.PutBucketWebsite(ctx, &s3.PutBucketWebsiteInput{Bucket: aws.String("site"), WebsiteConfiguration: &want}); err != nil {
		t.Fatal(err)
	}
	got, err := n.s3.GetBucketWebsite(ctx, &s3.GetBucketWebsiteInput{Bucket: aws.String("site")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.IndexDocument.Suffix) != "index.html" || aws.ToString(got.ErrorDocument.Key) != "404.html" || len(got.RoutingRules) != 2 ||
		aws.ToString(got.RoutingRules[0].Redirect.ReplaceKeyPrefixWith) != "docs/" || got.RoutingRules[1].Redirect.Protocol != types.ProtocolHttps {
		t.Fatalf("round trip: %+v", got)
	}
	uploadSite(t, n, "site")
	// x-amz-website-redirect-location on an object.
	if _, err := n.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("site"), Key: aws.String("moved.html"), Body: strings.NewReader(""),
		WebsiteRedirectLocation: aws.String("/docs/")}); err != nil {
		t.Fatal(err)
	}
	head, err := n.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("site"), Key: aws.String("moved.html")})
	if err != nil || aws.ToString(head.WebsiteRedirectLocation) != "/docs/" {
		t.Fatalf("head redirect object: %v %v", err, head)
	}

	cases := []struct {
		name, host, path string
		hdr              map[string]string
		status           int
		contains, ctype  string
		location         string
	}{
		{name: "index at root", host: "site", path: "/", status: 200, contains: "Hello from a bucket", ctype: "text/html"},
		{name: "vhost under root domain", host: "site.web.test:80", path: "/", status: 200, contains: "Hello from a bucket"},
		{name: "css", host: "site", path: "/style.css", status: 200, contains: "background", ctype: "text/css"},
		{name: "png type guessed", host: "site", path: "/img/logo.png", status: 200, ctype: "image/png"},
		{name: "sub index", host: "site", path: "/docs/", status: 200, contains: "docs"},
		{name: "dir without slash redirects", host: "site", path: "/docs", status: 302, location: "/docs/"},
		{name: "error document", host: "site", path: "/nope.html", status: 404, contains: "custom not found"},
		{name: "prefix rule", host: "site", path: "/old/page.html", status: 302, location: "http://site/docs/page.html"},
		{name: "404 rule", host: "site", path: "/gone/x", status: 301, location: "https://example.com/gone/x"},
		{name: "object redirect", host: "site", path: "/moved.html", status: 301, location: "/docs/"},
		{name: "range", host: "site", path: "/style.css", hdr: map[string]string{"Range": "bytes=0-3"}, status: 206, contains: "body"},
		{name: "unknown bucket", host: "nosuch", path: "/", status: 404, contains: "NoSuchBucket"},
		{name: "POST refused", host: "site", path: "/", status: 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.name == "POST refused" {
				method = "POST"
			}
			resp, body := n.webDo(t, method, tc.host, tc.path, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.contains != "" && !strings.Contains(string(body), tc.contains) {
				t.Fatalf("body %q lacks %q", body, tc.contains)
			}
			if tc.ctype != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("content type %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if tc.location != "" && resp.Header.Get("Location") != tc.location {
				t.Fatalf("location %q, want %q", resp.Header.Get("Location"), tc.location)
			}
		})
	}
	t.Run("conditional GET", func(t *testing.T) {
		resp, _ := n.webDo(t, "GET", "site", "/style.css", nil)
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		if etag == "" || lm == "" {
			t.Fatalf("no validators: %v", resp.Header)
		}
		resp, body := n.webDo(t, "GET", "site", "/style.css", map[string]string{"If-None-Match": etag})
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Fatalf("If-None-Match: %d %q", resp.StatusCode, body)
		}
		resp, _ = n.webDo(t, "GET", "site", "/style.css", map[string]string{"If-Modified-Since": lm})
		if resp.StatusCode != 304 {
			t.Fatalf("If-Modified-Since: %d", resp.StatusCode)
		}
	})

	// RedirectAllRequestsTo, then delete.
	if _, err := n.s3.PutBucketWebsite(ctx, &s3.PutBucketWebsiteInput{Bucket: aws.String("site"), WebsiteConfiguration: &types.WebsiteConfiguration{
		RedirectAllRequestsTo: &types.RedirectAllRequestsTo{HostName: aws.String("www.example.org"), Protocol: types.ProtocolHttps}}}); err != nil {
		t.Fatal(err)
	}
	resp, _ = n.webDo(t, "GET", "site", "/a/b?c", nil)
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://www.example.org/a/b" {
		t.Fatalf("redirect all: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := n.s3.DeleteBucketWebsite(ctx, &s3.DeleteBucketWebsiteInput{Bucket: aws.String("site")}); err != nil {
		t.Fatal(err)
	}
	resp, body := n.webDo(t, "GET", "site", "/", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "NoSuchWebsiteConfiguration") {
		t.Fatalf("after delete: %d %s", resp.StatusCode, body)
	}
}

// TestWebsiteBrowser publishes a site with the admin API (what `entrepot
// bucket website --allow` calls), then loads it with curl and headless
// Chromium.
func TestWebsiteBrowser(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "blog")
	uploadSite(t, n, "blog")
	if _, err := n.admin.SetBucketWebsite(ctx, admin.WebsiteRequest{Bucket: "blog", Allow: true, ErrorDocument: "404.html"}); err != nil {
		t.Fatal(err)
	}
	t.Run("curl", func(t *testing.T) {
		requireTool(t, "/usr/bin/curl")
		env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
		out := run(t, env, 30*time.Second, "/usr/bin/curl", "-sS", "-i", "-H", "Host: blog.web.test", "http://"+n.web+"/")
		if !strings.Contains(out, "HTTP/1.1 200") || !strings.Contains(out, "Hello from a bucket") {
			t.Fatalf("curl /: %s", out)
		}
		out = run(t, env, 30*time.Second, "/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", "-H", "Host: blog", "http://"+n.web+"/img/logo.png")
		if out != "200 image/png" {
			t.Fatalf("curl png: %q", out)
		}
		out = run(t, env, 30*time.Second, "/usr/bin/curl", "-sS", "-r", "7-10", "-H", "Host: blog", "http://"+n.web+"/style.css")
		if out != "back" {
			t.Fatalf("curl range: %q", out)
		}
		out = run(t, env, 30*time.Second, "/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: blog", "http://"+n.web+"/missing")
		if out != "404" {
			t.Fatalf("curl missing: %q", out)
		}
	})
	t.Run("chromium", func(t *testing.T) {
		requireTool(t, "/usr/bin/chromium")
		if _, err := n.admin.SetBucketWebsite(ctx, admin.WebsiteRequest{Bucket: "blog", Allow: true}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		// Chromium resolves *.localhost to loopback by itself; map the
		// site's name to the web listener so the Host header selects the bucket.
		url := "http://blog.web.test/"
		flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + filepath.Join(dir, "profile"),
			"--host-resolver-rules=MAP blog.web.test:80 " + n.web,
			"--virtual-time-budget=5000"}
		env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir}
		dom := run(t, env, 90*time.Second, "/usr/bin/chromium", append(flags, "--dump-dom", url)...)
		if !strings.Contains(dom, "Hello from a bucket") || !strings.Contains(dom, `data-js="ran"`) {
			t.Fatalf("dump-dom: %s", dom)
		}
		shot := filepath.Join(dir, "shot.png")
		run(t, env, 90*time.Second, "/usr/bin/chromium", append(flags, "--window-size=400,300", "--screenshot="+shot, url)...)
		f, err := os.Open(shot)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		// The stylesheet paints the page red and the logo is blue: both
		// colours must be on the screenshot (a blank or unstyled page has neither).
		var red, blue int
		bnd := img.Bounds()
		for y := bnd.Min.Y; y < bnd.Max.Y; y += 2 {
			for x := bnd.Min.X; x < bnd.Max.X; x += 2 {
				r, g, b, _ := img.At(x, y).RGBA()
				switch {
				case r > 0xe000 && g < 0x2000 && b < 0x2000:
					red++
				case b > 0xe000 && r < 0x2000 && g < 0x2000:
					blue++
				}
			}
		}
		if red < 1000 || blue < 100 {
			t.Fatalf("screenshot does not show the styled page: %d red, %d blue samples", red, blue)
		}
	})
	if _, err := n.admin.SetBucketWebsite(ctx, admin.WebsiteRequest{Bucket: "blog", Allow: false}); err != nil {
		t.Fatal(err)
	}
	resp, _ := n.webDo(t, "GET", "blog", "/", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("after --deny: %d", resp.StatusCode)
	}
}
