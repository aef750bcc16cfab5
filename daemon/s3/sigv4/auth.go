package sigv4

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Authorization is a parsed SigV4 Authorization header (or the equivalent
// presigned query parameters).
type Authorization struct {
	Algorithm     string   // "AWS4-HMAC-SHA256"
	AccessKeyID   string   // from the credential
	Date          string   // scope date, YYYYMMDD
	Region        string   // scope region
	Service       string   // scope service
	SignedHeaders []string // lowercase header names, in the order given
	Signature     string   // 64 lowercase hex digits
}

// Scope returns the credential scope "date/region/service/aws4_request".
func (a Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + scopeTerminator
}

const maxAuthLen = 16 << 10

// ParseAuthorization parses an "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=..." header value. A SigV2 ("AWS ak:sig") or SigV4a header gives
// ErrUnsupported; anything else unparsable gives ErrMalformedAuth.
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	if len(header) > maxAuthLen {
		return a, fmt.Errorf("parse authorization: header too long: %w", ErrMalformedAuth)
	}
	header = strings.TrimSpace(header)
	alg, rest, ok := strings.Cut(header, " ")
	if !ok {
		return a, fmt.Errorf("parse authorization: no credentials: %w", ErrMalformedAuth)
	}
	switch alg {
	case Algorithm:
	case "AWS", algorithmV4a:
		return a, fmt.Errorf("parse authorization: algorithm %q: %w", alg, ErrUnsupported)
	default:
		return a, fmt.Errorf("parse authorization: unknown algorithm: %w", ErrMalformedAuth)
	}
	a.Algorithm = alg
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for field := range strings.SplitSeq(rest, ",") {
		field = strings.TrimSpace(field)
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return Authorization{}, fmt.Errorf("parse authorization: field without '=': %w", ErrMalformedAuth)
		}
		var dup bool
		switch k {
		case "Credential":
			dup, haveCred, cred = haveCred, true, v
		case "SignedHeaders":
			dup, haveSigned, signed = haveSigned, true, v
		case "Signature":
			dup, haveSig, sig = haveSig, true, v
		default:
			return Authorization{}, fmt.Errorf("parse authorization: unknown field: %w", ErrMalformedAuth)
		}
		if dup {
			return Authorization{}, fmt.Errorf("parse authorization: duplicate field %s: %w", k, ErrMalformedAuth)
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return Authorization{}, fmt.Errorf("parse authorization: missing Credential, SignedHeaders or Signature: %w", ErrMalformedAuth)
	}
	if err := a.setFields(cred, signed, sig); err != nil {
		return Authorization{}, fmt.Errorf("parse authorization: %w", err)
	}
	return a, nil
}

func (a *Authorization) setFields(cred, signed, sig string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return fmt.Errorf("credential must be key/date/region/service/aws4_request: %w", ErrMalformedAuth)
	}
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("empty credential component: %w", ErrMalformedAuth)
		}
	}
	if parts[4] != scopeTerminator {
		return fmt.Errorf("credential terminator is not aws4_request: %w", ErrMalformedAuth)
	}
	if _, err := time.Parse(DateFormat, parts[1]); err != nil || len(parts[1]) != 8 {
		return fmt.Errorf("credential date: %w", ErrMalformedAuth)
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]

	if signed == "" {
		return fmt.Errorf("empty SignedHeaders: %w", ErrMalformedAuth)
	}
	a.SignedHeaders = strings.Split(signed, ";")
	seen := make(map[string]struct{}, len(a.SignedHeaders))
	for _, h := range a.SignedHeaders {
		if !validHeaderName(h) {
			return fmt.Errorf("invalid signed header name: %w", ErrMalformedAuth)
		}
		if _, ok := seen[h]; ok {
			return fmt.Errorf("duplicate signed header %q: %w", h, ErrMalformedAuth)
		}
		seen[h] = struct{}{}
	}
	if _, ok := seen["host"]; !ok {
		return fmt.Errorf("host is not a signed header: %w", ErrMalformedAuth)
	}
	if !validSignature(sig) {
		return fmt.Errorf("signature is not 64 lowercase hex digits: %w", ErrMalformedAuth)
	}
	a.Signature = sig
	return nil
}

// validHeaderName accepts lowercase RFC 7230 tokens.
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func validSignature[T string | []byte](s T) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Presigned holds the parsed authentication query parameters of a presigned URL.
type Presigned struct {
	Authorization
	Time    time.Time     // X-Amz-Date
	Expires time.Duration // X-Amz-Expires, 1s..7 days
}

// Query parameter names of presigned URLs.
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"
	queryContentSHA256 = "X-Amz-Content-Sha256"
)

// IsPresigned reports whether q carries presigned-URL authentication
// (SigV4 X-Amz-Algorithm, or SigV2 AWSAccessKeyId/Signature).
func IsPresigned(q url.Values) bool {
	return q.Has(queryAlgorithm) || q.Has(querySignature) || q.Has(queryCredential) ||
		q.Has("AWSAccessKeyId") || q.Has("Signature")
}

// ParsePresignedQuery parses the authentication parameters of a presigned URL.
// SigV2 (AWSAccessKeyId/Signature) and SigV4a give ErrUnsupported; anything
// missing, repeated or invalid gives ErrMalformedAuth.
func ParsePresignedQuery(q url.Values) (Presigned, error) {
	var p Presigned
	if !q.Has(queryAlgorithm) && q.Has("AWSAccessKeyId") {
		return p, fmt.Errorf("parse presigned query: SigV2: %w", ErrUnsupported)
	}
	get := func(k string) (string, error) {
		v, ok := q[k]
		if !ok || len(v) == 0 {
			return "", fmt.Errorf("parse presigned query: missing %s: %w", k, ErrMalformedAuth)
		}
		if len(v) > 1 {
			return "", fmt.Errorf("parse presigned query: repeated %s: %w", k, ErrMalformedAuth)
		}
		if len(v[0]) > maxAuthLen {
			return "", fmt.Errorf("parse presigned query: %s too long: %w", k, ErrMalformedAuth)
		}
		return v[0], nil
	}
	alg, err := get(queryAlgorithm)
	if err != nil {
		return p, err
	}
	switch alg {
	case Algorithm:
	case algorithmV4a:
		return p, fmt.Errorf("parse presigned query: SigV4a: %w", ErrUnsupported)
	default:
		return p, fmt.Errorf("parse presigned query: unknown algorithm: %w", ErrMalformedAuth)
	}
	p.Algorithm = alg
	var vals [5]string
	for i, k := range [...]string{queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature} {
		if vals[i], err = get(k); err != nil {
			return Presigned{}, err
		}
	}
	if err := p.setFields(vals[0], vals[3], vals[4]); err != nil {
		return Presigned{}, fmt.Errorf("parse presigned query: %w", err)
	}
	t, err := time.Parse(TimeFormat, vals[1])
	if err != nil || len(vals[1]) != len(TimeFormat) {
		return Presigned{}, fmt.Errorf("parse presigned query: X-Amz-Date: %w", ErrMalformedAuth)
	}
	p.Time = t
	secs, err := strconv.ParseInt(vals[2], 10, 64)
	if err != nil || secs < 1 || secs > int64(maxExpires/time.Second) || vals[2][0] == '+' {
		return Presigned{}, fmt.Errorf("parse presigned query: X-Amz-Expires must be 1..604800: %w", ErrMalformedAuth)
	}
	p.Expires = time.Duration(secs) * time.Second
	return p, nil
}
