package s3

import (
	"net/http"
	"testing"
	"time"
)

func TestConditions(t *testing.T) {
	lm := time.Date(2026, 3, 1, 12, 0, 0, 500e6, time.UTC)
	before := lm.Add(-time.Hour).Format(http.TimeFormat)
	same := lm.Format(http.TimeFormat)
	after := lm.Add(time.Hour).Format(http.TimeFormat)
	const etag = "d41d8cd98f00b204e9800998ecf8427e"
	cases := []struct {
		name string
		c    conditionHeaders
		want condResult
	}{
		{name: "none", want: condOK},
		{name: "if-match ok", c: conditionHeaders{IfMatch: `"` + etag + `"`}, want: condOK},
		{name: "if-match unquoted", c: conditionHeaders{IfMatch: etag}, want: condOK},
		{name: "if-match list", c: conditionHeaders{IfMatch: `"x", "` + etag + `"`}, want: condOK},
		{name: "if-match star", c: conditionHeaders{IfMatch: "*"}, want: condOK},
		{name: "if-match fails", c: conditionHeaders{IfMatch: `"other"`}, want: condPreconditionFailed},
		{name: "if-none-match hit", c: conditionHeaders{IfNoneMatch: `"` + etag + `"`}, want: condNotModified},
		{name: "if-none-match star", c: conditionHeaders{IfNoneMatch: "*"}, want: condNotModified},
		{name: "if-none-match miss", c: conditionHeaders{IfNoneMatch: `"other"`}, want: condOK},
		{name: "if-modified-since before", c: conditionHeaders{IfModifiedSince: before}, want: condOK},
		{name: "if-modified-since same second", c: conditionHeaders{IfModifiedSince: same}, want: condNotModified},
		{name: "if-modified-since after", c: conditionHeaders{IfModifiedSince: after}, want: condNotModified},
		{name: "if-modified-since garbage ignored", c: conditionHeaders{IfModifiedSince: "yesterday"}, want: condOK},
		{name: "if-unmodified-since after", c: conditionHeaders{IfUnmodifiedSince: after}, want: condOK},
		{name: "if-unmodified-since same", c: conditionHeaders{IfUnmodifiedSince: same}, want: condOK},
		{name: "if-unmodified-since before", c: conditionHeaders{IfUnmodifiedSince: before}, want: condPreconditionFailed},
		// RFC 7232 §6 / S3: If-Match true wins over a false If-Unmodified-Since.
		{name: "if-match true beats unmodified-since false", c: conditionHeaders{IfMatch: etag, IfUnmodifiedSince: before}, want: condOK},
		// If-None-Match false (no match) makes If-Modified-Since ignored.
		{name: "if-none-match miss beats modified-since", c: conditionHeaders{IfNoneMatch: `"other"`, IfModifiedSince: after}, want: condOK},
		{name: "if-none-match hit with modified-since true", c: conditionHeaders{IfNoneMatch: etag, IfModifiedSince: before}, want: condNotModified},
		{name: "if-match fails before none-match", c: conditionHeaders{IfMatch: "x", IfNoneMatch: etag}, want: condPreconditionFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.c.evaluate(etag, lm); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestWriteConditions(t *testing.T) {
	h := http.Header{}
	h.Set("If-None-Match", "*")
	h.Set("If-Match", `"abc"`)
	c, err := writeConditions(h)
	if err != nil || !c.IfNoneMatchStar || c.IfMatch != "abc" {
		t.Fatalf("got %+v %v", c, err)
	}
	h = http.Header{}
	h.Set("If-None-Match", `"abc"`)
	h.Set("If-Match", "*")
	if c, err := writeConditions(h); err != nil || c.IfNoneMatch != "abc" || c.IfNoneMatchStar || c.IfMatch != "*" {
		t.Fatalf("If-None-Match etag, If-Match * on write: %+v %v", c, err)
	}
	h = http.Header{}
	h.Set("If-Match", `"a", "b"`)
	if _, err := writeConditions(h); err == nil || toAPIError(err, false).Code != CodeNotImplemented {
		t.Fatalf("If-Match list on write: %v", err)
	}
}
