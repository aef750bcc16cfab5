package s3

import (
	"net/http"
	"strings"
	"time"
)

// condResult is the outcome of evaluating conditional request headers.
type condResult int

const (
	condOK condResult = iota
	condNotModified
	condPreconditionFailed
)

// conditionHeaders are the four conditional headers of one request: the
// plain ones for GET/HEAD, or the x-amz-copy-source-if-* ones for a copy.
type conditionHeaders struct {
	IfMatch, IfNoneMatch, IfModifiedSince, IfUnmodifiedSince string
}

func readConditions(h http.Header) conditionHeaders {
	return conditionHeaders{
		IfMatch:           h.Get("If-Match"),
		IfNoneMatch:       h.Get("If-None-Match"),
		IfModifiedSince:   h.Get("If-Modified-Since"),
		IfUnmodifiedSince: h.Get("If-Unmodified-Since"),
	}
}

func copySourceConditions(h http.Header) conditionHeaders {
	return conditionHeaders{
		IfMatch:           h.Get("X-Amz-Copy-Source-If-Match"),
		IfNoneMatch:       h.Get("X-Amz-Copy-Source-If-None-Match"),
		IfModifiedSince:   h.Get("X-Amz-Copy-Source-If-Modified-Since"),
		IfUnmodifiedSince: h.Get("X-Amz-Copy-Source-If-Unmodified-Since"),
	}
}

// evaluate applies RFC 7232 section 6 precedence: If-Match, else
// If-Unmodified-Since; then If-None-Match, else If-Modified-Since (the
// latter only for GET/HEAD in HTTP, and for copies in S3). A failed
// If-None-Match or If-Modified-Since is NotModified; callers of copy
// conditions turn it into PreconditionFailed as S3 does. Unparsable dates
// are ignored, as RFC 7232 requires.
func (c conditionHeaders) evaluate(etag string, lastModified time.Time) condResult {
	lm := lastModified.Truncate(time.Second)
	if c.IfMatch != "" {
		if !etagListMatches(c.IfMatch, etag) {
			return condPreconditionFailed
		}
	} else if t, ok := parseHTTPTime(c.IfUnmodifiedSince); ok && lm.After(t) {
		return condPreconditionFailed
	}
	if c.IfNoneMatch != "" {
		if etagListMatches(c.IfNoneMatch, etag) {
			return condNotModified
		}
	} else if t, ok := parseHTTPTime(c.IfModifiedSince); ok && !lm.After(t) {
		return condNotModified
	}
	return condOK
}

// etagListMatches reports whether a comma-separated If-Match/If-None-Match
// list contains "*" or etag (weak comparison; quotes optional, as S3 accepts).
func etagListMatches(list, etag string) bool {
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "*" || (item != "" && unquoteETag(item) == etag) {
			return true
		}
	}
	return false
}

func parseHTTPTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
