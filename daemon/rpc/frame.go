package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// frameVersion is the first byte of every frame.
const frameVersion = 1

// MaxFrame bounds a frame's payload (a block plus headroom).
const MaxFrame = 64 << 20

const (
	kindRequest  = 1
	kindOK       = 2
	kindError    = 3
	maxMethodLen = 128
)

// ErrFrame reports a malformed frame.
var ErrFrame = errors.New("rpc: malformed frame")

// frame is one message on a stream.
type frame struct {
	kind    byte
	method  string // requests: method name; errors: error code
	payload []byte // requests/OK: body; errors: message
}

func writeFrame(w io.Writer, f frame) error {
	if len(f.method) > maxMethodLen || len(f.payload) > MaxFrame {
		return fmt.Errorf("%w: too large", ErrFrame)
	}
	hdr := make([]byte, 0, 2+binary.MaxVarintLen64*2+len(f.method))
	hdr = append(hdr, frameVersion, f.kind)
	hdr = binary.AppendUvarint(hdr, uint64(len(f.method)))
	hdr = append(hdr, f.method...)
	hdr = binary.AppendUvarint(hdr, uint64(len(f.payload)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if len(f.payload) > 0 {
		if _, err := w.Write(f.payload); err != nil {
			return err
		}
	}
	return nil
}

func readFrame(r *bufio.Reader) (frame, error) {
	var f frame
	v, err := r.ReadByte()
	if err != nil {
		return f, err
	}
	if v != frameVersion {
		return f, fmt.Errorf("%w: version %d", ErrFrame, v)
	}
	if f.kind, err = r.ReadByte(); err != nil {
		return f, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	if f.kind < kindRequest || f.kind > kindError {
		return f, fmt.Errorf("%w: kind %d", ErrFrame, f.kind)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxMethodLen {
		return f, fmt.Errorf("%w: method length", ErrFrame)
	}
	m := make([]byte, n)
	if _, err := io.ReadFull(r, m); err != nil {
		return f, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	f.method = string(m)
	n, err = binary.ReadUvarint(r)
	if err != nil || n > MaxFrame {
		return f, fmt.Errorf("%w: payload length", ErrFrame)
	}
	// Grow with the data actually received, so a lying length allocates nothing.
	if n <= 64<<10 {
		f.payload = make([]byte, n)
		_, err = io.ReadFull(r, f.payload)
	} else {
		f.payload, err = io.ReadAll(io.LimitReader(r, int64(n)))
		if err == nil && uint64(len(f.payload)) != n {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		return f, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	return f, nil
}
