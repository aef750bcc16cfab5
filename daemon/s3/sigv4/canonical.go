package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm and payload constants of SigV4 for S3.
const (
	Algorithm       = "AWS4-HMAC-SHA256"
	algorithmV4a    = "AWS4-ECDSA-P256-SHA256"
	scopeTerminator = "aws4_request"

	// TimeFormat is the ISO 8601 basic format of X-Amz-Date.
	TimeFormat = "20060102T150405Z"
	// DateFormat is the date part of a credential scope.
	DateFormat = "20060102"

	UnsignedPayload                 = "UNSIGNED-PAYLOAD"
	StreamingPayload                = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSAPayload           = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	streamingECDSAPayloadTrailer    = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"

	// EmptySHA256 is the hex sha256 of the empty string.
	EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	maxExpires = 7 * 24 * time.Hour
)

// Scope returns the credential scope "date/region/service/aws4_request".
func Scope(t time.Time, region, service string) string {
	return t.UTC().Format(DateFormat) + "/" + region + "/" + service + "/" + scopeTerminator
}

// SigningKey derives the SigV4 signing key of secret for a scope.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, scopeTerminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// StringToSign builds the string to sign of a canonical request.
func StringToSign(t time.Time, scope, canonicalRequest string) string {
	return Algorithm + "\n" + t.UTC().Format(TimeFormat) + "\n" + scope + "\n" + sha256Hex(canonicalRequest)
}

// signatureHex signs a string to sign with a derived key.
func signatureHex(key []byte, stringToSign string) string {
	return hex.EncodeToString(hmacSHA256(key, stringToSign))
}

// CanonicalRequest builds the SigV4 canonical request of r for the given
// signed header names (lowercase, in the order they are listed) and payload
// hash line. With presign, X-Amz-Signature is left out of the canonical
// query. The canonical URI is r's escaped path normalised S3 style (see
// [CanonicalURI]).
func CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string, presign bool) string {
	return canonicalRequestWithURI(r, CanonicalURI(escapedPath(r)), signedHeaders, payloadHash, presign)
}

func canonicalRequestWithURI(r *http.Request, uri string, signedHeaders []string, payloadHash string, presign bool) string {
	var b strings.Builder
	b.Grow(256)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(r.URL.RawQuery, presign))
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func escapedPath(r *http.Request) string {
	if r.URL == nil {
		return "/"
	}
	if r.URL.Opaque != "" {
		// "//host/path" style opaque URLs: keep the path part.
		p := r.URL.Opaque
		if strings.HasPrefix(p, "//") {
			if i := strings.IndexByte(p[2:], '/'); i >= 0 {
				return p[2+i:]
			}
			return "/"
		}
		return p
	}
	return r.URL.EscapedPath()
}

// CanonicalURI normalises an escaped request path the way S3 signs it: bytes
// outside RFC 3986 unreserved (and '/') are percent-encoded with upper-case
// hex, escapes of unreserved bytes are decoded, other escapes are kept (so
// "%2F" stays an escaped slash). Nothing is encoded twice and dot segments are
// left alone. An empty path is "/".
func CanonicalURI(escaped string) string {
	if escaped == "" {
		return "/"
	}
	var b strings.Builder
	b.Grow(len(escaped) + 8)
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' && i+2 < len(escaped) && isHex(escaped[i+1]) && isHex(escaped[i+2]) {
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if isUnreserved(d) {
				b.WriteByte(d)
			} else {
				writeEscaped(&b, d)
			}
			i += 2
			continue
		}
		if isUnreserved(c) || c == '/' {
			b.WriteByte(c)
		} else {
			writeEscaped(&b, c)
		}
	}
	return b.String()
}

// CanonicalQuery builds the canonical query string of a raw query: pairs are
// form-decoded, RFC 3986 encoded, and sorted by key then value. With presign,
// X-Amz-Signature is excluded.
func CanonicalQuery(rawQuery string, presign bool) string {
	if rawQuery == "" {
		return ""
	}
	type pair struct{ k, v string }
	pairs := make([]pair, 0, 8)
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if presign && k == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, pair{URIEncode(k), URIEncode(v)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// URIEncode percent-encodes every byte of s outside RFC 3986 unreserved.
func URIEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isUnreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		if isUnreserved(s[i]) {
			b.WriteByte(s[i])
		} else {
			writeEscaped(&b, s[i])
		}
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"

func writeEscaped(b *strings.Builder, c byte) {
	b.WriteByte('%')
	b.WriteByte(upperHex[c>>4])
	b.WriteByte(upperHex[c&15])
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// headerValue returns the canonical value of a signed header: values joined
// with ',', each trimmed with inner space runs collapsed.
func headerValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		h := r.Host
		if h == "" && r.URL != nil {
			h = r.URL.Host
		}
		return trimAll(h)
	case "content-length":
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength > 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	case "transfer-encoding":
		vals = r.Header.Values("Transfer-Encoding")
		if len(vals) == 0 {
			vals = r.TransferEncoding
		}
	default:
		vals = r.Header.Values(name)
		if len(vals) == 0 {
			// Keys set directly in the map may not be canonical.
			for k, v := range r.Header {
				if strings.EqualFold(k, name) {
					vals = append(vals, v...)
				}
			}
		}
	}
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return trimAll(vals[0])
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = trimAll(v)
	}
	return strings.Join(out, ",")
}

// trimAll trims leading/trailing blanks and collapses inner runs of spaces.
func trimAll(s string) string {
	s = strings.Trim(s, " \t")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}
