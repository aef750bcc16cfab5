package sigv4

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretFunc returns the secret key of an access key id, or an error wrapping
// ErrUnknownAccessKey.
type SecretFunc func(ctx context.Context, accessKeyID string) (string, error)

// Verifier authenticates SigV4-signed S3 requests.
type Verifier struct {
	Region  string           // required, e.g. "us-east-1"; another region in the scope -> ErrWrongRegion
	Service string           // "s3" when empty
	Secret  SecretFunc       // required
	Now     func() time.Time // nil = time.Now
	MaxSkew time.Duration    // 0 = 15 minutes
}

// Result is an authenticated request.
type Result struct {
	AccessKeyID string
	// Body wraps the request body and verifies the payload while it is read:
	// a verification failure is returned by Read instead of io.EOF. Callers
	// must read to io.EOF before trusting (committing) the data.
	Body io.ReadCloser
	// DecodedLength is x-amz-decoded-content-length for aws-chunked bodies,
	// else the request's ContentLength (-1 unknown).
	DecodedLength int64
	// Trailer returns the trailing headers (canonical keys) once Body returned
	// io.EOF; it returns an empty header before.
	Trailer func() http.Header
}

const defaultMaxSkew = 15 * time.Minute

// Verify authenticates r, by its Authorization header or presigned query. It
// does not read the body: Result.Body verifies it while it is read.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (*Result, error) {
	if v.Region == "" || v.Secret == nil {
		return nil, errors.New("sigv4: verifier needs Region and Secret")
	}
	service := v.Service
	if service == "" {
		service = "s3"
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	authz := r.Header.Values("Authorization")
	query := r.URL.Query()
	presigned := IsPresigned(query)
	switch {
	case len(authz) == 0 && !presigned:
		return nil, ErrMissingAuth
	case len(authz) > 0 && presigned:
		return nil, fmt.Errorf("verify: both Authorization header and presigned query: %w", ErrMalformedAuth)
	case len(authz) > 1:
		return nil, fmt.Errorf("verify: repeated Authorization header: %w", ErrMalformedAuth)
	}

	var (
		a           Authorization
		t           time.Time
		payloadHash string
	)
	if presigned {
		p, err := ParsePresignedQuery(query)
		if err != nil {
			return nil, err
		}
		a, t = p.Authorization, p.Time
		if err := checkScope(a, t, v.Region, service); err != nil {
			return nil, err
		}
		n := now()
		if t.Sub(n) > skew {
			return nil, fmt.Errorf("verify: presigned X-Amz-Date is in the future: %w", ErrRequestTimeTooSkewed)
		}
		if n.After(t.Add(p.Expires)) {
			return nil, ErrRequestExpired
		}
		payloadHash = presignedPayloadHash(r, query, a.SignedHeaders)
		if err := checkAllAmzSigned(r, a.SignedHeaders, "x-amz-content-sha256"); err != nil {
			return nil, err
		}
	} else {
		var err error
		if a, err = ParseAuthorization(authz[0]); err != nil {
			return nil, err
		}
		if t, err = requestTime(r); err != nil {
			return nil, err
		}
		if err := checkScope(a, t, v.Region, service); err != nil {
			return nil, err
		}
		if d := now().Sub(t); d > skew || d < -skew {
			return nil, ErrRequestTimeTooSkewed
		}
		hashes := r.Header.Values("X-Amz-Content-Sha256")
		if len(hashes) != 1 {
			return nil, fmt.Errorf("verify: need exactly one x-amz-content-sha256 header: %w", ErrMalformedAuth)
		}
		payloadHash = hashes[0]
		if err := checkAllAmzSigned(r, a.SignedHeaders, ""); err != nil {
			return nil, err
		}
	}
	mode, err := payloadMode(payloadHash)
	if err != nil {
		return nil, err
	}

	secret, err := v.Secret(ctx, a.AccessKeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownAccessKey) {
			return nil, err
		}
		return nil, fmt.Errorf("verify: look up secret: %w", err)
	}
	key := SigningKey(secret, a.Date, a.Region, a.Service)
	scope := a.Scope()
	if !signatureMatches(r, a, key, t, scope, payloadHash, presigned) {
		return nil, ErrSignatureMismatch
	}

	res := &Result{
		AccessKeyID:   a.AccessKeyID,
		DecodedLength: r.ContentLength,
		Trailer:       func() http.Header { return http.Header{} },
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	switch mode {
	case modeUnsigned:
		res.Body = body
	case modeHash:
		want, _ := hex.DecodeString(payloadHash)
		res.Body = newHashReader(body, want)
	default:
		cfg := chunkConfig{
			signed:  mode == modeStreaming || mode == modeStreamingTrailer,
			trailer: mode == modeStreamingTrailer || mode == modeUnsignedTrailer,
			key:     key,
			amzDate: t.UTC().Format(TimeFormat),
			scope:   scope,
			seed:    a.Signature,
		}
		dl := r.Header.Values("X-Amz-Decoded-Content-Length")
		if len(dl) != 1 {
			return nil, fmt.Errorf("verify: aws-chunked body needs one x-amz-decoded-content-length: %w", ErrMalformedAuth)
		}
		n, err := strconv.ParseInt(dl[0], 10, 64)
		if err != nil || n < 0 || dl[0][0] == '+' {
			return nil, fmt.Errorf("verify: bad x-amz-decoded-content-length: %w", ErrMalformedAuth)
		}
		cfg.decodedLength = n
		if cfg.trailer {
			cfg.trailerNames = parseTrailerNames(r.Header.Values("X-Amz-Trailer"))
		}
		cr := newChunkedReader(body, cfg)
		res.Body = cr
		res.DecodedLength = n
		res.Trailer = cr.Trailer
	}
	return res, nil
}

// signatureMatches computes the expected signature and compares it in
// constant time. The canonical URI is the normalised escaped path; if the
// path as sent differs from it, that form is tried too (clients that escape
// with lower-case hex, for instance).
func signatureMatches(r *http.Request, a Authorization, key []byte, t time.Time, scope, payloadHash string, presign bool) bool {
	raw := escapedPath(r)
	uris := [2]string{CanonicalURI(raw), raw}
	for i, uri := range uris {
		if i == 1 && (uri == uris[0] || uri == "") {
			break
		}
		cr := canonicalRequestWithURI(r, uri, a.SignedHeaders, payloadHash, presign)
		sig := signatureHex(key, StringToSign(t, scope, cr))
		if subtle.ConstantTimeCompare([]byte(sig), []byte(a.Signature)) == 1 {
			return true
		}
	}
	return false
}

func checkScope(a Authorization, t time.Time, region, service string) error {
	if a.Region != region {
		return fmt.Errorf("verify: scope region %q, want %q: %w", a.Region, region, ErrWrongRegion)
	}
	if a.Service != service {
		return fmt.Errorf("verify: scope service %q, want %q: %w", a.Service, service, ErrMalformedAuth)
	}
	if a.Date != t.UTC().Format(DateFormat) {
		return fmt.Errorf("verify: scope date %s does not match request date: %w", a.Date, ErrMalformedAuth)
	}
	return nil
}

// requestTime reads X-Amz-Date, or the Date header when it is absent.
func requestTime(r *http.Request) (time.Time, error) {
	if vals := r.Header.Values("X-Amz-Date"); len(vals) > 0 {
		if len(vals) > 1 || len(vals[0]) != len(TimeFormat) {
			return time.Time{}, fmt.Errorf("verify: bad X-Amz-Date: %w", ErrMalformedAuth)
		}
		t, err := time.Parse(TimeFormat, vals[0])
		if err != nil {
			return time.Time{}, fmt.Errorf("verify: bad X-Amz-Date: %w", ErrMalformedAuth)
		}
		return t, nil
	}
	d := r.Header.Get("Date")
	if d == "" {
		return time.Time{}, fmt.Errorf("verify: no X-Amz-Date or Date header: %w", ErrMalformedAuth)
	}
	t, ok := parseDateHeader(d)
	if !ok {
		return time.Time{}, fmt.Errorf("verify: bad Date header: %w", ErrMalformedAuth)
	}
	return t.UTC(), nil
}

// dateHeaderFormats are the Date header forms accepted when X-Amz-Date is
// absent: the HTTP ones, and RFC 2822 with a numeric zone, which botocore
// writes (email.utils.formatdate: "Fri, 27 Nov 2026 07:07:13 -0000").
var dateHeaderFormats = [...]string{time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 -0700", time.RFC1123}

func parseDateHeader(d string) (time.Time, bool) {
	if t, err := http.ParseTime(d); err == nil {
		return t, true
	}
	for _, f := range dateHeaderFormats {
		if t, err := time.Parse(f, d); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// checkAllAmzSigned rejects x-amz-* headers (but exempt) left out of the
// signature: S3 acts on them (copy source, ACLs, ...), so they must be
// authenticated, for presigned URLs too.
func checkAllAmzSigned(r *http.Request, signed []string, exempt string) error {
	for k := range r.Header {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") {
			continue
		}
		lk := strings.ToLower(k)
		found := lk == exempt
		for _, s := range signed {
			if s == lk {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("verify: header %s is not signed: %w", lk, ErrSignatureMismatch)
		}
	}
	return nil
}

// presignedPayloadHash is the payload line of a presigned request: the
// X-Amz-Content-Sha256 query parameter, else a signed x-amz-content-sha256
// header, else UNSIGNED-PAYLOAD.
func presignedPayloadHash(r *http.Request, q map[string][]string, signed []string) string {
	if v := q[queryContentSHA256]; len(v) == 1 {
		return v[0]
	}
	for _, s := range signed {
		if s == "x-amz-content-sha256" {
			return r.Header.Get("X-Amz-Content-Sha256")
		}
	}
	return UnsignedPayload
}

type bodyMode int

const (
	modeUnsigned bodyMode = iota
	modeHash
	modeStreaming
	modeStreamingTrailer
	modeUnsignedTrailer
)

func payloadMode(h string) (bodyMode, error) {
	switch h {
	case UnsignedPayload:
		return modeUnsigned, nil
	case StreamingPayload:
		return modeStreaming, nil
	case StreamingPayloadTrailer:
		return modeStreamingTrailer, nil
	case StreamingUnsignedPayloadTrailer:
		return modeUnsignedTrailer, nil
	case streamingECDSAPayload, streamingECDSAPayloadTrailer:
		return 0, fmt.Errorf("verify: SigV4a streaming payload: %w", ErrUnsupported)
	}
	if len(h) == 64 {
		if _, err := hex.DecodeString(h); err == nil {
			return modeHash, nil
		}
	}
	return 0, fmt.Errorf("verify: invalid x-amz-content-sha256: %w", ErrMalformedAuth)
}

func parseTrailerNames(vals []string) []string {
	var names []string
	for _, v := range vals {
		for n := range strings.SplitSeq(v, ",") {
			n = strings.ToLower(strings.TrimSpace(n))
			if n != "" {
				names = append(names, n)
			}
		}
	}
	return names
}
