package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/textproto"
	"slices"
)

// Limits of the aws-chunked decoder.
const (
	// MaxChunkLineLen caps a chunk header line (and a trailer line), CRLF included.
	MaxChunkLineLen = 4 << 10
	// MaxChunkSize caps the size a chunk header may announce.
	MaxChunkSize = 16 << 20

	maxTrailerBytes = 16 << 10
	maxTrailerLines = 64
	chunkBufSize    = 32 << 10
)

const (
	chunkSigPrefix   = ";chunk-signature="
	trailerSigName   = "x-amz-trailer-signature"
	payloadAlgorithm = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
)

// chunkConfig describes how to decode and verify an aws-chunked body.
type chunkConfig struct {
	signed        bool     // chunk signatures present and verified
	trailer       bool     // a trailer section follows the final chunk
	key           []byte   // signing key (signed only)
	amzDate       string   // request time, TimeFormat
	scope         string   // credential scope
	seed          string   // seed signature, hex
	decodedLength int64    // x-amz-decoded-content-length
	trailerNames  []string // lowercase names declared in x-amz-trailer
}

type chunkState int

const (
	stHeader  chunkState = iota // expecting a chunk header line
	stData                      // inside chunk data
	stDataEnd                   // expecting the CRLF after chunk data
	stDone                      // everything read and verified
)

// chunkedReader decodes an aws-chunked body, streaming chunk data through to
// the caller in whatever sizes it reads while hashing it incrementally, and
// verifying each chunk signature when the chunk ends. Any error is sticky.
type chunkedReader struct {
	src   io.ReadCloser
	br    *bufio.Reader
	cfg   chunkConfig
	state chunkState

	remaining int64 // bytes left in the current chunk
	total     int64 // decoded bytes returned so far

	h       hash.Hash // sha256 of the current chunk data (signed only)
	mac     hash.Hash // hmac-sha256 keyed with the signing key, reused
	prevSig [64]byte  // previous signature, hex
	wantSig [64]byte  // signature announced for the current chunk, hex
	sts     []byte    // string-to-sign scratch buffer
	sum     []byte    // digest scratch buffer (cap sha256.Size)
	crlf    []byte    // 2-byte scratch buffer

	trailer http.Header
	err     error
}

func newChunkedReader(src io.Reader, cfg chunkConfig) *chunkedReader {
	rc, ok := src.(io.ReadCloser)
	if !ok {
		rc = io.NopCloser(src)
	}
	c := &chunkedReader{src: rc, br: bufio.NewReaderSize(rc, chunkBufSize), cfg: cfg, crlf: make([]byte, 2)}
	if cfg.signed {
		c.h = sha256.New()
		c.mac = hmac.New(sha256.New, cfg.key)
		copy(c.prevSig[:], cfg.seed)
		c.sts = make([]byte, 0, 256)
		c.sum = make([]byte, 0, sha256.Size)
	}
	return c
}

// Trailer returns the parsed trailing headers once Read returned io.EOF.
func (c *chunkedReader) Trailer() http.Header {
	if c.state != stDone || c.trailer == nil {
		return http.Header{}
	}
	return c.trailer.Clone()
}

func (c *chunkedReader) Close() error { return c.src.Close() }

func (c *chunkedReader) fail(err error) error {
	c.err = err
	return err
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		switch c.state {
		case stDone:
			c.err = io.EOF
			return 0, io.EOF
		case stHeader:
			if err := c.readHeader(); err != nil {
				return 0, c.fail(err)
			}
		case stDataEnd:
			if err := c.endChunk(); err != nil {
				return 0, c.fail(err)
			}
		case stData:
			want := len(p)
			if int64(want) > c.remaining {
				want = int(c.remaining)
			}
			n, err := c.br.Read(p[:want])
			if n > 0 {
				if c.h != nil {
					c.h.Write(p[:n])
				}
				c.remaining -= int64(n)
				c.total += int64(n)
				if c.remaining == 0 {
					c.state = stDataEnd
				}
				return n, nil
			}
			if err != nil {
				return 0, c.fail(readErr("chunk data", err))
			}
		}
	}
}

// readErr maps an error of the underlying body: a premature end is
// ErrIncompleteBody, anything else is passed on wrapped.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read aws-chunked %s: %w", what, ErrIncompleteBody)
	}
	return fmt.Errorf("read aws-chunked %s: %w", what, err)
}

// readLine reads one CRLF-terminated line of at most MaxChunkLineLen bytes and
// returns it without the CRLF. The slice is only valid until the next read.
func (c *chunkedReader) readLine(what string) ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("aws-chunked %s line too long: %w", what, ErrMalformedChunk)
		}
		return nil, readErr(what, err)
	}
	if len(line) > MaxChunkLineLen {
		return nil, fmt.Errorf("aws-chunked %s line too long: %w", what, ErrMalformedChunk)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("aws-chunked %s line not CRLF terminated: %w", what, ErrMalformedChunk)
	}
	return line[:len(line)-2], nil
}

func (c *chunkedReader) readHeader() error {
	line, err := c.readLine("chunk header")
	if err != nil {
		return err
	}
	sizePart, ext := line, []byte(nil)
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		sizePart, ext = line[:i], line[i:]
	}
	size, ok := parseHexSize(sizePart)
	if !ok {
		return fmt.Errorf("aws-chunked chunk size %q: %w", truncate(sizePart), ErrMalformedChunk)
	}
	if c.cfg.signed {
		if len(ext) != len(chunkSigPrefix)+64 || string(ext[:len(chunkSigPrefix)]) != chunkSigPrefix ||
			!validSignature(ext[len(chunkSigPrefix):]) {
			return fmt.Errorf("aws-chunked chunk header without a valid chunk-signature: %w", ErrMalformedChunk)
		}
		copy(c.wantSig[:], ext[len(chunkSigPrefix):])
	}
	if size > c.cfg.decodedLength-c.total {
		return fmt.Errorf("aws-chunked body longer than x-amz-decoded-content-length %d: %w", c.cfg.decodedLength, ErrIncompleteBody)
	}
	if size > 0 {
		c.remaining = size
		c.state = stData
		return nil
	}
	// Final, empty chunk.
	if c.cfg.signed {
		c.h.Reset()
		if err := c.verifyChunk(); err != nil {
			return err
		}
	}
	if c.total != c.cfg.decodedLength {
		return fmt.Errorf("aws-chunked body has %d bytes, x-amz-decoded-content-length %d: %w", c.total, c.cfg.decodedLength, ErrIncompleteBody)
	}
	if c.cfg.trailer {
		if err := c.readTrailers(); err != nil {
			return err
		}
	} else {
		if err := c.readFinalCRLF(); err != nil {
			return err
		}
		if n, _ := c.br.Peek(1); len(n) > 0 {
			return fmt.Errorf("aws-chunked data after the final chunk: %w", ErrMalformedChunk)
		}
	}
	c.state = stDone
	return nil
}

// readFinalCRLF reads the empty line closing a body without trailers. A body
// that simply ends there is accepted: everything before was verified.
func (c *chunkedReader) readFinalCRLF() error {
	line, err := c.br.ReadSlice('\n')
	if len(line) == 0 && errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil || string(line) != "\r\n" {
		return fmt.Errorf("aws-chunked final chunk not followed by CRLF: %w", ErrMalformedChunk)
	}
	return nil
}

func (c *chunkedReader) endChunk() error {
	if _, err := io.ReadFull(c.br, c.crlf); err != nil {
		return readErr("chunk end", err)
	}
	if c.crlf[0] != '\r' || c.crlf[1] != '\n' {
		return fmt.Errorf("aws-chunked chunk data not followed by CRLF: %w", ErrMalformedChunk)
	}
	if c.cfg.signed {
		if err := c.verifyChunk(); err != nil {
			return err
		}
		c.h.Reset()
	}
	c.state = stHeader
	return nil
}

// verifyChunk checks wantSig against the signature of the data hashed in c.h.
func (c *chunkedReader) verifyChunk() error {
	c.sum = c.h.Sum(c.sum[:0])
	c.sts = appendChunkStringToSign(c.sts[:0], payloadAlgorithm, c.cfg.amzDate, c.cfg.scope, c.prevSig[:], c.sum)
	var sig [64]byte
	c.signInto(sig[:])
	if subtle.ConstantTimeCompare(sig[:], c.wantSig[:]) != 1 {
		return fmt.Errorf("aws-chunked chunk after %d bytes: %w", c.total, ErrChunkSignatureMismatch)
	}
	c.prevSig = sig
	return nil
}

// signInto writes the hex HMAC of c.sts into sig (64 bytes).
func (c *chunkedReader) signInto(sig []byte) {
	c.mac.Reset()
	c.mac.Write(c.sts)
	c.sum = c.mac.Sum(c.sum[:0])
	hex.Encode(sig, c.sum)
}

// appendChunkStringToSign appends the string to sign of a chunk (algorithm
// payloadAlgorithm, with the empty-hash line) or of a trailer.
func appendChunkStringToSign(dst []byte, algorithm, amzDate, scope string, prev, sum []byte) []byte {
	dst = append(dst, algorithm...)
	dst = append(dst, '\n')
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, scope...)
	dst = append(dst, '\n')
	dst = append(dst, prev...)
	dst = append(dst, '\n')
	if algorithm == payloadAlgorithm {
		dst = append(dst, EmptySHA256...)
		dst = append(dst, '\n')
	}
	return hex.AppendEncode(dst, sum)
}

// readTrailers parses the trailer section up to the end of the body: lines
// of "name:value", checked against x-amz-trailer and, when signed, verified
// with x-amz-trailer-signature. Lines may end in CRLF or, as minio-go sends
// them ("name:value\n\r\n"), in a bare LF; empty lines are skipped. The
// section (and the body) must end at the end of the stream.
func (c *chunkedReader) readTrailers() error {
	trailer := http.Header{}
	var canon []byte
	var sig []byte
	read, lines := 0, 0
	for {
		line, err := c.br.ReadSlice('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return fmt.Errorf("aws-chunked trailer line too long: %w", ErrMalformedChunk)
			}
			return readErr("trailer", err)
		}
		read += len(line)
		lines++
		if len(line) > MaxChunkLineLen || read > maxTrailerBytes || lines > maxTrailerLines {
			return fmt.Errorf("aws-chunked trailer too large: %w", ErrMalformedChunk)
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return fmt.Errorf("aws-chunked trailer line without name: %w", ErrMalformedChunk)
		}
		name := string(bytes.ToLower(bytes.TrimSpace(line[:i])))
		value := string(bytes.TrimSpace(line[i+1:]))
		if !validHeaderName(name) {
			return fmt.Errorf("aws-chunked trailer name invalid: %w", ErrMalformedChunk)
		}
		if name == trailerSigName {
			if !c.cfg.signed || sig != nil || !validSignature([]byte(value)) {
				return fmt.Errorf("aws-chunked unexpected or invalid trailer signature: %w", ErrMalformedChunk)
			}
			sig = []byte(value)
			continue
		}
		if sig != nil {
			return fmt.Errorf("aws-chunked trailer after the trailer signature: %w", ErrMalformedChunk)
		}
		if !slices.Contains(c.cfg.trailerNames, name) {
			return fmt.Errorf("aws-chunked trailer %q not declared in x-amz-trailer: %w", truncate([]byte(name)), ErrMalformedChunk)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		if _, dup := trailer[key]; dup {
			return fmt.Errorf("aws-chunked trailer %q repeated: %w", name, ErrMalformedChunk)
		}
		trailer[key] = []string{value}
		canon = append(canon, name...)
		canon = append(canon, ':')
		canon = append(canon, value...)
		canon = append(canon, '\n')
	}
	for _, n := range c.cfg.trailerNames {
		if _, ok := trailer[textproto.CanonicalMIMEHeaderKey(n)]; !ok {
			return fmt.Errorf("aws-chunked declared trailer %q missing: %w", truncate([]byte(n)), ErrMalformedChunk)
		}
	}
	if c.cfg.signed {
		if sig == nil {
			if len(trailer) > 0 {
				return fmt.Errorf("aws-chunked trailer without x-amz-trailer-signature: %w", ErrMalformedChunk)
			}
		} else {
			sum := sha256.Sum256(canon)
			c.sts = appendChunkStringToSign(c.sts[:0], trailerAlgorithm, c.cfg.amzDate, c.cfg.scope, c.prevSig[:], sum[:])
			var want [64]byte
			c.signInto(want[:])
			if subtle.ConstantTimeCompare(want[:], sig) != 1 {
				return fmt.Errorf("aws-chunked trailer: %w", ErrChunkSignatureMismatch)
			}
		}
	}
	c.trailer = trailer
	return nil
}

// parseHexSize parses a chunk size: 1 to 8 hex digits, at most MaxChunkSize.
func parseHexSize(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isHex(c) {
			return 0, false
		}
		n = n<<4 | int64(unhex(c))
	}
	return n, n <= MaxChunkSize
}

func truncate(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return string(b)
}
