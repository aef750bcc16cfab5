package s3

import (
	"errors"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

func codeOf(err error) ErrorCode {
	return toAPIError(err, false).Code
}

func TestWebsiteFromXML(t *testing.T) {
	cases := []struct {
		name, doc string
		code      ErrorCode
		check     func(*model.WebsiteConfig) bool
	}{
		{"index and error", `<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument><ErrorDocument><Key>e.html</Key></ErrorDocument></WebsiteConfiguration>`, "",
			func(w *model.WebsiteConfig) bool { return w.IndexSuffix == "index.html" && w.ErrorDocument == "e.html" }},
		{"redirect all", `<WebsiteConfiguration><RedirectAllRequestsTo><HostName>x.org</HostName><Protocol>https</Protocol></RedirectAllRequestsTo></WebsiteConfiguration>`, "",
			func(w *model.WebsiteConfig) bool { return w.RedirectAll != nil && w.RedirectAll.HostName == "x.org" }},
		{"rules", `<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules><RoutingRule><Condition><KeyPrefixEquals>a/</KeyPrefixEquals></Condition><Redirect><ReplaceKeyPrefixWith>b/</ReplaceKeyPrefixWith><HttpRedirectCode>302</HttpRedirectCode></Redirect></RoutingRule></RoutingRules></WebsiteConfiguration>`, "",
			func(w *model.WebsiteConfig) bool {
				return len(w.RoutingRules) == 1 && w.RoutingRules[0].Redirect.ReplaceKeyPrefixWith == "b/" && w.RoutingRules[0].Redirect.HTTPRedirectCode == "302"
			}},
		{"no index", `<WebsiteConfiguration/>`, CodeInvalidArgument, nil},
		{"empty suffix", `<WebsiteConfiguration><IndexDocument><Suffix></Suffix></IndexDocument></WebsiteConfiguration>`, CodeInvalidArgument, nil},
		{"redirect all plus index", `<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RedirectAllRequestsTo><HostName>x</HostName></RedirectAllRequestsTo></WebsiteConfiguration>`, CodeInvalidArgument, nil},
		{"bad protocol", `<WebsiteConfiguration><RedirectAllRequestsTo><HostName>x</HostName><Protocol>ftp</Protocol></RedirectAllRequestsTo></WebsiteConfiguration>`, CodeInvalidArgument, nil},
		{"bad redirect code", `<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules><RoutingRule><Redirect><HttpRedirectCode>200</HttpRedirectCode></Redirect></RoutingRule></RoutingRules></WebsiteConfiguration>`, CodeInvalidArgument, nil},
		{"bad error code", `<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules><RoutingRule><Condition><HttpErrorCodeReturnedEquals>302</HttpErrorCodeReturnedEquals></Condition><Redirect/></RoutingRule></RoutingRules></WebsiteConfiguration>`, CodeInvalidArgument, nil},
		{"malformed", `<WebsiteConfiguration>`, CodeMalformedXML, nil},
		{"wrong root", `<Foo/>`, CodeMalformedXML, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := websiteFromXML([]byte(tc.doc))
			if tc.code != "" {
				if err == nil || codeOf(err) != tc.code {
					t.Fatalf("got %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || !tc.check(w) {
				t.Fatalf("got %+v, %v", w, err)
			}
			// Round trip through the answer document.
			back, err := websiteFromXML(mustXML(t, websiteToXML(w)))
			if err != nil || !tc.check(back) {
				t.Fatalf("round trip: %+v, %v", back, err)
			}
		})
	}
}

func TestCORSFromXML(t *testing.T) {
	cases := []struct {
		name, doc string
		code      ErrorCode
	}{
		{"valid", `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>5</MaxAgeSeconds></CORSRule></CORSConfiguration>`, ""},
		{"no rule", `<CORSConfiguration/>`, CodeMalformedXML},
		{"no origin", `<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`, CodeMalformedXML},
		{"bad method", `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>`, CodeInvalidRequest},
		{"two wildcards", `<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`, CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := corsFromXML([]byte(tc.doc))
			if tc.code != "" {
				if err == nil || codeOf(err) != tc.code {
					t.Fatalf("got %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || len(rules) != 1 || rules[0].MaxAgeSeconds != 5 {
				t.Fatalf("got %+v, %v", rules, err)
			}
			back, err := corsFromXML(mustXML(t, corsToXML(rules)))
			if err != nil || len(back) != 1 || back[0].AllowedOrigins[0] != "*" {
				t.Fatalf("round trip %+v %v", back, err)
			}
		})
	}
}

func TestLifecycleFromXML(t *testing.T) {
	rule := func(body string) string {
		return `<LifecycleConfiguration><Rule>` + body + `</Rule></LifecycleConfiguration>`
	}
	cases := []struct {
		name, doc string
		code      ErrorCode
		check     func(model.LifecycleRule) bool
	}{
		{"days with prefix filter", rule(`<ID>a</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration>`), "",
			func(r model.LifecycleRule) bool { return r.Enabled && r.Prefix == "logs/" && r.ExpirationDays == 3 }},
		{"legacy prefix", rule(`<Prefix>x/</Prefix><Status>Disabled</Status><Expiration><Days>1</Days></Expiration>`), "",
			func(r model.LifecycleRule) bool { return !r.Enabled && r.Prefix == "x/" }},
		{"and sizes", rule(`<Filter><And><Prefix>p</Prefix><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>20</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "",
			func(r model.LifecycleRule) bool {
				return r.SizeGreaterThan == 10 && r.SizeLessThan == 20 && r.Prefix == "p"
			}},
		{"date", rule(`<Filter/><Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>`), "",
			func(r model.LifecycleRule) bool {
				return r.ExpirationDate.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			}},
		{"abort", rule(`<Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload>`), "",
			func(r model.LifecycleRule) bool { return r.AbortIncompleteDays == 2 }},
		{"bad status", rule(`<Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration>`), CodeMalformedXML, nil},
		{"zero days", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>`), CodeInvalidArgument, nil},
		{"days and date", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>`), CodeMalformedXML, nil},
		{"date not midnight", rule(`<Filter/><Status>Enabled</Status><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>`), CodeInvalidArgument, nil},
		{"no action", rule(`<Filter/><Status>Enabled</Status>`), CodeInvalidRequest, nil},
		{"two filter kinds", rule(`<Filter><Prefix>a</Prefix><ObjectSizeLessThan>3</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), CodeMalformedXML, nil},
		{"filter and prefix", rule(`<Filter/><Prefix>a</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), CodeMalformedXML, nil},
		{"tag filter", rule(`<Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), CodeNotImplemented, nil},
		{"transition", rule(`<Filter/><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>`), CodeNotImplemented, nil},
		{"abort with size", rule(`<Filter><ObjectSizeLessThan>3</ObjectSizeLessThan></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload>`), CodeInvalidRequest, nil},
		{"bad size range", rule(`<Filter><And><ObjectSizeGreaterThan>20</ObjectSizeGreaterThan><ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), CodeInvalidArgument, nil},
		{"duplicate ids", `<LifecycleConfiguration><Rule><ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`, CodeInvalidArgument, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := lifecycleFromXML([]byte(tc.doc))
			if tc.code != "" {
				if err == nil || codeOf(err) != tc.code {
					t.Fatalf("got %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || len(rules) != 1 || !tc.check(rules[0]) {
				t.Fatalf("got %+v, %v", rules, err)
			}
			back, err := lifecycleFromXML(mustXML(t, lifecycleToXML(rules)))
			if err != nil || len(back) != 1 || !tc.check(back[0]) {
				t.Fatalf("round trip %+v, %v", back, err)
			}
		})
	}
}

func TestTags(t *testing.T) {
	if tags, err := tagsFromHeader("a=1&b=x%20y"); err != nil || tags["b"] != "x y" {
		t.Fatalf("header: %v %v", tags, err)
	}
	for _, h := range []string{"a=1&a=2", "aws:x=1", "=v", "%zz"} {
		if _, err := tagsFromHeader(h); codeOf(err) != CodeInvalidTag {
			t.Fatalf("header %q: %v", h, err)
		}
	}
	if _, err := tagsFromXML([]byte(`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := tagsFromXML([]byte(`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag><Tag><Key>l</Key><Value>v</Value></Tag></TagSet></Tagging>`), 1); !errors.Is(err, errTooManyTags) {
		t.Fatalf("too many: %v", err)
	}
}

func TestParsePostPolicy(t *testing.T) {
	enc := func(s string) string { return b64(s) }
	good := enc(`{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key","u/"],["content-length-range",1,10],["eq","$Content-Type","text/plain"]]}`)
	p, err := parsePostPolicy(good)
	if err != nil || len(p.Conditions) != 3 || p.MaxSize != 10 || p.MinSize != 1 {
		t.Fatalf("parse: %+v %v", p, err)
	}
	fields := map[string]string{"bucket": "b", "key": "u/x", "content-type": "text/plain", "policy": "..", "x-amz-signature": ".."}
	if err := p.checkFields(fields); err != nil {
		t.Fatal(err)
	}
	fields["key"] = "v/x"
	if err := p.checkFields(fields); codeOf(err) != CodeAccessDenied {
		t.Fatalf("prefix: %v", err)
	}
	fields["key"] = "u/x"
	fields["x-amz-meta-extra"] = "1"
	if err := p.checkFields(fields); codeOf(err) != CodeAccessDenied {
		t.Fatalf("extra field: %v", err)
	}
	for _, bad := range []string{"!!", enc("{"), enc(`{"expiration":"soon","conditions":[]}`),
		enc(`{"expiration":"2030-01-01T00:00:00Z","conditions":[["gt","$a","b"]]}`),
		enc(`{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",5,1]]}`)} {
		if _, err := parsePostPolicy(bad); !errors.Is(err, errPolicy) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func FuzzConfigDocuments(f *testing.F) {
	for _, s := range []string{
		`<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>`,
		`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`,
		`<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`,
		`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if w, err := websiteFromXML(data); err == nil && w.RedirectAll == nil && w.IndexSuffix == "" {
			t.Fatal("website without index or redirect accepted")
		}
		if rules, err := corsFromXML(data); err == nil && len(rules) == 0 {
			t.Fatal("empty CORS accepted")
		}
		if rules, err := lifecycleFromXML(data); err == nil {
			for _, r := range rules {
				if r.ExpirationDays <= 0 && r.ExpirationDate.IsZero() && r.AbortIncompleteDays <= 0 {
					continue // ExpiredObjectDeleteMarker / Noncurrent only: accepted no-ops
				}
				if r.ExpirationDays < 0 || r.AbortIncompleteDays < 0 {
					t.Fatal("negative days accepted")
				}
			}
		}
		_, _ = tagsFromXML(data, 10)
	})
}

func FuzzPostPolicy(f *testing.F) {
	f.Add(b64(`{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key",""],["content-length-range",0,5]]}`))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePostPolicy(s)
		if err == nil && p.MaxSize >= 0 && p.MaxSize < p.MinSize {
			t.Fatal("inverted size range accepted")
		}
		_, _ = tagsFromHeader(s)
	})
}
