package s3

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

// Checksum algorithm names as S3 spells them (x-amz-checksum-algorithm,
// x-amz-sdk-checksum-algorithm, ChecksumAlgorithm XML elements) and as
// model.Sums.Checksums keys them.
const (
	algoCRC32     = "CRC32"
	algoCRC32C    = "CRC32C"
	algoCRC64NVME = "CRC64NVME"
	algoSHA1      = "SHA1"
	algoSHA256    = "SHA256"
)

// crc64NVMEPoly is the CRC-64/NVME polynomial, bit-reversed as hash/crc64 expects.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

// checksumAlgos lists the supported algorithms in a fixed order.
var checksumAlgos = [...]string{algoCRC32, algoCRC32C, algoCRC64NVME, algoSHA1, algoSHA256}

// checksumHeader is the canonical header name carrying an algorithm's value.
func checksumHeader(algo string) string {
	switch algo {
	case algoCRC32:
		return "X-Amz-Checksum-Crc32"
	case algoCRC32C:
		return "X-Amz-Checksum-Crc32c"
	case algoCRC64NVME:
		return "X-Amz-Checksum-Crc64nvme"
	case algoSHA1:
		return "X-Amz-Checksum-Sha1"
	case algoSHA256:
		return "X-Amz-Checksum-Sha256"
	}
	return ""
}

// normalizeAlgo maps a client-supplied algorithm name to its canonical form, or "".
func normalizeAlgo(s string) string {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, a := range checksumAlgos {
		if u == a {
			return a
		}
	}
	return ""
}

// hashes builds checksum hashes; it holds the CRC64/NVME table, built once.
type hashes struct {
	crc64 *crc64.Table
}

func newHashes() *hashes { return &hashes{crc64: crc64.MakeTable(crc64NVMEPoly)} }

func (hs *hashes) new(algo string) hash.Hash {
	switch algo {
	case algoCRC32:
		return crc32.NewIEEE()
	case algoCRC32C:
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case algoCRC64NVME:
		return crc64.New(hs.crc64)
	case algoSHA1:
		return sha1.New()
	case algoSHA256:
		return sha256.New()
	}
	return nil
}

func digestLen(algo string) int {
	switch algo {
	case algoCRC32, algoCRC32C:
		return 4
	case algoCRC64NVME:
		return 8
	case algoSHA1:
		return sha1.Size
	case algoSHA256:
		return sha256.Size
	}
	return 0
}

// bodyVerifier is the one streaming verifier every request body with content
// goes through. In a single pass it counts bytes, computes the MD5 (the
// ETag) and at most one requested checksum; at EOF it checks the length, the
// Content-MD5 and the checksum (from a header, or from the aws-chunked
// trailer) and, on any mismatch, returns an *Error from Read instead of
// io.EOF so the model abandons the write.
type bodyVerifier struct {
	r           io.Reader
	md5         hash.Hash
	algo        string    // "" = no checksum
	ck          hash.Hash // nil when algo == ""
	want        string    // expected base64 checksum from a header; "" = none or from trailer
	trailer     func() http.Header
	contentMD5  []byte // nil = not sent
	expected    int64  // -1 = unknown
	limit       int64  // -1 = unlimited
	n           int64
	err         error
	md5sum      []byte
	sum         string // computed checksum, base64
	tooLargeErr error
}

// errTrailerChecksum is wrapped when a trailing checksum does not match.
var errChecksumMismatch = errors.New("checksum mismatch")

// bodyOptions configures newBodyVerifier.
type bodyOptions struct {
	expected int64 // decoded length the client announced; -1 = unknown
	limit    int64 // maximum body size; -1 = none
	// tooLarge is the error returned when limit is exceeded.
	tooLarge error
	// defaultAlgo is computed when the request names no checksum.
	defaultAlgo string
	// onlyMD5 ignores the x-amz-checksum-* headers: on
	// CompleteMultipartUpload they describe the object, not the XML body.
	onlyMD5 bool
}

// newBodyVerifier validates the integrity headers of r (malformed
// Content-MD5 → InvalidDigest, several or malformed checksum headers →
// InvalidRequest) and wraps body.
func (hs *hashes) newBodyVerifier(h http.Header, body io.Reader, trailer func() http.Header, o bodyOptions) (*bodyVerifier, error) {
	bv := &bodyVerifier{r: body, md5: md5.New(), trailer: trailer, expected: o.expected, limit: o.limit}
	if bv.limit >= 0 && bv.expected > bv.limit {
		return nil, o.tooLarge
	}
	if cm, ok := h["Content-Md5"]; ok {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cm[0]))
		if err != nil || len(raw) != md5.Size {
			return nil, apiErr(CodeInvalidDigest, "")
		}
		bv.contentMD5 = raw
	}
	if !o.onlyMD5 {
		if err := bv.detectChecksum(h); err != nil {
			return nil, err
		}
	}
	if bv.algo == "" {
		bv.algo = o.defaultAlgo
	}
	if bv.algo != "" {
		bv.ck = hs.new(bv.algo)
	}
	if bv.limit >= 0 {
		bv.r = io.LimitReader(body, bv.limit+1)
	}
	bv.tooLargeErr = o.tooLarge
	return bv, nil
}

// detectChecksum picks the one checksum a request names: an
// x-amz-checksum-* header (value checked at EOF), a trailer named by
// x-amz-trailer, or x-amz-sdk-checksum-algorithm alone (computed only).
func (b *bodyVerifier) detectChecksum(h http.Header) error {
	for _, a := range checksumAlgos {
		v := h.Get(checksumHeader(a))
		if v == "" {
			continue
		}
		if b.algo != "" {
			return apiErr(CodeInvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(raw) != digestLen(a) {
			return apiErr(CodeInvalidRequest, fmt.Sprintf("Value for %s header is invalid.", strings.ToLower(checksumHeader(a))))
		}
		b.algo, b.want = a, v
	}
	if b.algo == "" {
		for name := range strings.SplitSeq(h.Get("X-Amz-Trailer"), ",") {
			name = strings.TrimSpace(name)
			if a := normalizeAlgo(strings.TrimPrefix(strings.ToLower(name), "x-amz-checksum-")); a != "" && strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
				b.algo = a
				break
			}
		}
	}
	if b.algo == "" {
		if s := h.Get("X-Amz-Sdk-Checksum-Algorithm"); s != "" {
			if b.algo = normalizeAlgo(s); b.algo == "" {
				return apiErr(CodeInvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid.")
			}
		}
	}
	return nil
}

// hasIntegrity reports whether the request carried a Content-MD5, a
// checksum, or a signed payload hash (x-amz-content-sha256, which sigv4
// verifies at EOF).
func (b *bodyVerifier) hasIntegrity(h http.Header) bool {
	return b.contentMD5 != nil || b.want != "" || (b.algo != "" && h.Get("X-Amz-Trailer") != "") ||
		h.Get("X-Amz-Sdk-Checksum-Algorithm") != "" || isHexSHA256(h.Get("X-Amz-Content-Sha256"))
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (b *bodyVerifier) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if n > 0 {
		b.md5.Write(p[:n])
		if b.ck != nil {
			b.ck.Write(p[:n])
		}
		b.n += int64(n)
		if b.limit >= 0 && b.n > b.limit {
			b.err = b.tooLargeErr
			return 0, b.err
		}
		if b.expected >= 0 && b.n > b.expected {
			b.err = &Error{Code: CodeIncompleteBody, Message: "The request body is longer than announced."}
			return 0, b.err
		}
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		if ferr := b.finish(); ferr != nil {
			b.err = ferr
			return n, ferr
		}
		b.err = io.EOF
		return n, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		b.err = &Error{Code: CodeIncompleteBody, Err: err}
		return n, b.err
	default:
		b.err = err
		return n, err
	}
}

func (b *bodyVerifier) finish() error {
	if b.expected >= 0 && b.n != b.expected {
		return &Error{Code: CodeIncompleteBody, Err: fmt.Errorf("body has %d of %d bytes", b.n, b.expected)}
	}
	b.md5sum = b.md5.Sum(nil)
	if b.contentMD5 != nil && string(b.contentMD5) != string(b.md5sum) {
		return &Error{Code: CodeBadDigest, Err: fmt.Errorf("content-md5: %w", model.ErrBadDigest)}
	}
	if b.ck == nil {
		return nil
	}
	b.sum = base64.StdEncoding.EncodeToString(b.ck.Sum(nil))
	want := b.want
	if want == "" && b.trailer != nil {
		want = b.trailer().Get(checksumHeader(b.algo))
	}
	if want != "" && want != b.sum {
		return &Error{Code: CodeBadDigest,
			Message: fmt.Sprintf("The %s you specified did not match the calculated checksum.", b.algo),
			Err:     fmt.Errorf("%s: %w: %w", b.algo, errChecksumMismatch, model.ErrBadDigest)}
	}
	return nil
}

// Sums returns the digests; valid after Read returned io.EOF.
func (b *bodyVerifier) Sums() model.Sums {
	s := model.Sums{MD5: b.md5sum}
	if b.sum != "" {
		s.Checksums = map[string]string{b.algo: b.sum}
	}
	return s
}

// setChecksumHeader sets the x-amz-checksum-* response header of the computed checksum.
func (b *bodyVerifier) setChecksumHeader(h http.Header) {
	if b.sum != "" {
		h.Set(checksumHeader(b.algo), b.sum)
	}
}
