package sigv4

import (
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// ChunkedWriter encodes an aws-chunked body: fixed-size chunks (the last one
// shorter), a final empty chunk and, when Trailer is set, a trailer section.
// With a ChunkSigner the chunks (and trailer) are signed
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]); without one they are not
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
type ChunkedWriter struct {
	// Trailer, when non-nil, is written after the final chunk on Close
	// (lowercase names, sorted; values joined with ',').
	Trailer http.Header

	w      io.Writer
	signer *ChunkSigner
	buf    []byte
	size   int
	err    error
	closed bool
}

// NewChunkedWriter returns a writer of aws-chunked data to w with chunks of
// chunkSize bytes (at least 1). signer nil writes unsigned chunks.
func NewChunkedWriter(w io.Writer, signer *ChunkSigner, chunkSize int) *ChunkedWriter {
	if chunkSize < 1 {
		chunkSize = 64 << 10
	}
	return &ChunkedWriter{w: w, signer: signer, size: chunkSize, buf: make([]byte, 0, chunkSize)}
}

// Write buffers p and writes every full chunk.
func (cw *ChunkedWriter) Write(p []byte) (int, error) {
	if cw.closed {
		return 0, errors.New("sigv4: write to closed ChunkedWriter")
	}
	written := 0
	for len(p) > 0 && cw.err == nil {
		n := min(cw.size-len(cw.buf), len(p))
		cw.buf = append(cw.buf, p[:n]...)
		p = p[n:]
		written += n
		if len(cw.buf) == cw.size {
			cw.writeChunk(cw.buf)
			cw.buf = cw.buf[:0]
		}
	}
	return written, cw.err
}

func (cw *ChunkedWriter) writeChunk(data []byte) {
	if cw.err != nil {
		return
	}
	hdr := strconv.FormatInt(int64(len(data)), 16)
	if cw.signer != nil {
		hdr += chunkSigPrefix + cw.signer.Sign(data)
	}
	hdr += "\r\n"
	if _, cw.err = io.WriteString(cw.w, hdr); cw.err != nil {
		return
	}
	if len(data) == 0 {
		return
	}
	if _, cw.err = cw.w.Write(data); cw.err != nil {
		return
	}
	_, cw.err = io.WriteString(cw.w, "\r\n")
}

// Close writes the pending chunk, the final chunk and the trailer. It does
// not close the underlying writer.
func (cw *ChunkedWriter) Close() error {
	if cw.closed {
		return cw.err
	}
	cw.closed = true
	if len(cw.buf) > 0 {
		cw.writeChunk(cw.buf)
	}
	cw.writeChunk(nil)
	if cw.err != nil {
		return cw.err
	}
	var b strings.Builder
	if cw.Trailer != nil {
		canon := CanonicalTrailer(cw.Trailer)
		b.WriteString(strings.ReplaceAll(string(canon), "\n", "\r\n"))
		if cw.signer != nil {
			b.WriteString(trailerSigName + ":" + cw.signer.SignTrailer(canon) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	_, cw.err = io.WriteString(cw.w, b.String())
	return cw.err
}

// CanonicalTrailer renders trailing headers as signed: "name:value\n" per
// header, lowercase names sorted, values trimmed and joined with ','.
func CanonicalTrailer(h http.Header) []byte {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	var b []byte
	for _, k := range names {
		vals := make([]string, len(h[k]))
		for i, v := range h[k] {
			vals[i] = strings.TrimSpace(v)
		}
		b = append(b, strings.ToLower(k)...)
		b = append(b, ':')
		b = append(b, strings.Join(vals, ",")...)
		b = append(b, '\n')
	}
	return b
}

// EncodedLength is the length of an aws-chunked body of decodedLength bytes
// written by a ChunkedWriter with chunkSize, signed or not, and trailer.
func EncodedLength(decodedLength int64, chunkSize int, signed bool, trailer http.Header) int64 {
	if chunkSize < 1 {
		chunkSize = 64 << 10
	}
	sigLen := int64(0)
	if signed {
		sigLen = int64(len(chunkSigPrefix) + 64)
	}
	chunk := func(n int64) int64 {
		l := int64(len(strconv.FormatInt(n, 16))) + sigLen + 2
		if n > 0 {
			l += n + 2
		}
		return l
	}
	cs := int64(chunkSize)
	total := (decodedLength / cs) * chunk(cs)
	if rem := decodedLength % cs; rem > 0 {
		total += chunk(rem)
	}
	total += chunk(0)
	if trailer != nil {
		canon := CanonicalTrailer(trailer)
		total += int64(len(canon) + strings.Count(string(canon), "\n"))
		if signed {
			total += int64(len(trailerSigName) + 1 + 64 + 2)
		}
	}
	return total + 2
}
