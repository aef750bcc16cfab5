package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
)

// hashReader passes a body through and checks its sha256 at EOF.
type hashReader struct {
	src  io.ReadCloser
	h    hash.Hash
	want [sha256.Size]byte
	err  error
}

func newHashReader(src io.ReadCloser, want []byte) *hashReader {
	hr := &hashReader{src: src, h: sha256.New()}
	copy(hr.want[:], want)
	return hr
}

func (hr *hashReader) Read(p []byte) (int, error) {
	if hr.err != nil {
		return 0, hr.err
	}
	n, err := hr.src.Read(p)
	if n > 0 {
		hr.h.Write(p[:n])
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		var sum [sha256.Size]byte
		hr.h.Sum(sum[:0])
		if subtle.ConstantTimeCompare(sum[:], hr.want[:]) != 1 {
			hr.err = ErrContentSHA256Mismatch
		} else {
			hr.err = io.EOF
		}
		return n, hr.err
	case errors.Is(err, io.ErrUnexpectedEOF):
		hr.err = fmt.Errorf("read body: %w: %w", ErrIncompleteBody, err)
		return n, hr.err
	default:
		hr.err = fmt.Errorf("read body: %w", err)
		return n, hr.err
	}
	return n, nil
}

func (hr *hashReader) Close() error { return hr.src.Close() }
