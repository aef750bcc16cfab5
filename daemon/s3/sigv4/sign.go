package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Credentials is an access key pair.
type Credentials struct{ AccessKeyID, SecretAccessKey string }

// isUnsignedHeader reports headers SignRequest / PresignURL never sign:
// proxies and transports may change or drop them.
func isUnsignedHeader(lk string) bool {
	switch lk {
	case "authorization", "user-agent", "expect", "transfer-encoding",
		"connection", "accept-encoding", "x-amzn-trace-id":
		return true
	}
	return false
}

// signedHeaderNames returns host plus every header of r except the unsigned
// ones, lowercase and sorted.
func signedHeaderNames(r *http.Request) []string {
	names := []string{"host"}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if lk == "host" || isUnsignedHeader(lk) {
			continue
		}
		names = append(names, lk)
	}
	sort.Strings(names)
	return names
}

// SignRequest signs r with an Authorization header. It sets X-Amz-Date to
// now, X-Amz-Content-Sha256 to payloadSHA256 (UNSIGNED-PAYLOAD when empty;
// a hex sha256 or one of the STREAMING-* values) and signs host plus every
// header already set on r (except Authorization, User-Agent, Expect,
// Transfer-Encoding, Connection, Accept-Encoding). Content-Length is signed
// only when set in r.Header. For STREAMING-* payloads the seed signature is the
// Signature of the resulting header (see [NewChunkSigner]).
func SignRequest(r *http.Request, c Credentials, region, service string, payloadSHA256 string, now time.Time) {
	if payloadSHA256 == "" {
		payloadSHA256 = UnsignedPayload
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	t := now.UTC()
	r.Header.Del("Authorization")
	r.Header.Set("X-Amz-Date", t.Format(TimeFormat))
	r.Header.Set("X-Amz-Content-Sha256", payloadSHA256)
	signed := signedHeaderNames(r)
	scope := Scope(t, region, service)
	cr := CanonicalRequest(r, signed, payloadSHA256, false)
	key := SigningKey(c.SecretAccessKey, t.Format(DateFormat), region, service)
	sig := signatureHex(key, StringToSign(t, scope, cr))
	r.Header.Set("Authorization", Algorithm+" Credential="+c.AccessKeyID+"/"+scope+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
}

// PresignURL returns r's URL with presigned query authentication valid for
// expires (1s to 7 days, whole seconds) from now. It signs host plus the
// headers set on r (as SignRequest does); the payload is UNSIGNED-PAYLOAD
// unless r carries an X-Amz-Content-Sha256 header. r is not modified.
func PresignURL(r *http.Request, c Credentials, region, service string, expires time.Duration, now time.Time) (string, error) {
	if expires < time.Second || expires > maxExpires || expires%time.Second != 0 {
		return "", fmt.Errorf("presign: expires %v not whole seconds in 1s..168h: %w", expires, ErrMalformedAuth)
	}
	if r.URL == nil {
		return "", fmt.Errorf("presign: request without URL: %w", ErrMalformedAuth)
	}
	t := now.UTC()
	rr := *r
	u := *r.URL
	rr.URL = &u
	if rr.Header == nil {
		rr.Header = http.Header{}
	}
	signed := signedHeaderNames(&rr)
	scope := Scope(t, region, service)
	q := u.Query()
	q.Del(querySignature)
	q.Set(queryAlgorithm, Algorithm)
	q.Set(queryCredential, c.AccessKeyID+"/"+scope)
	q.Set(queryDate, t.Format(TimeFormat))
	q.Set(queryExpires, strconv.FormatInt(int64(expires/time.Second), 10))
	q.Set(querySignedHeaders, strings.Join(signed, ";"))
	u.RawQuery = q.Encode()
	payload := UnsignedPayload
	if h := rr.Header.Get("X-Amz-Content-Sha256"); h != "" {
		payload = h
	}
	cr := CanonicalRequest(&rr, signed, payload, true)
	key := SigningKey(c.SecretAccessKey, t.Format(DateFormat), region, service)
	sig := signatureHex(key, StringToSign(t, scope, cr))
	u.RawQuery += "&" + querySignature + "=" + sig
	return u.String(), nil
}

// ChunkSigner computes the chained signatures of an aws-chunked body.
type ChunkSigner struct {
	amzDate, scope string
	prev           []byte
	mac            hash.Hash
	sts            []byte
}

// NewChunkSigner starts a signature chain at seedSignature, the Signature of
// a request signed at t with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER)
// payload.
func NewChunkSigner(c Credentials, region, service string, t time.Time, seedSignature string) *ChunkSigner {
	t = t.UTC()
	key := SigningKey(c.SecretAccessKey, t.Format(DateFormat), region, service)
	return &ChunkSigner{
		amzDate: t.Format(TimeFormat),
		scope:   Scope(t, region, service),
		prev:    []byte(seedSignature),
		mac:     hmac.New(sha256.New, key),
	}
}

// Sign returns the signature of the next chunk (data may be empty for the
// final chunk) and advances the chain.
func (s *ChunkSigner) Sign(data []byte) string {
	sum := sha256.Sum256(data)
	return s.next(payloadAlgorithm, sum[:])
}

// SignTrailer returns the x-amz-trailer-signature of trailing headers given in
// their canonical form: "name:value\n" per header, lowercase names, in the
// order sent.
func (s *ChunkSigner) SignTrailer(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return s.next(trailerAlgorithm, sum[:])
}

func (s *ChunkSigner) next(algorithm string, sum []byte) string {
	s.sts = appendChunkStringToSign(s.sts[:0], algorithm, s.amzDate, s.scope, s.prev, sum)
	s.mac.Reset()
	s.mac.Write(s.sts)
	sig := fmt.Sprintf("%x", s.mac.Sum(nil))
	s.prev = []byte(sig)
	return sig
}
