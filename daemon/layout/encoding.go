package layout

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// encodingVersion is the first byte of every encoded layout.
const encodingVersion = 1

// Limits that keep a hostile or corrupt encoding from allocating without bound.
const (
	maxNodes     = 1024
	maxStringLen = 1024
	maxTags      = 64
)

// Encode returns the versioned binary form of l: the canonical body then the digest.
func (l *Layout) Encode() []byte {
	return append(l.encodeBody(), l.Digest[:]...)
}

// Decode parses an encoded layout, checks its digest and its invariants.
func Decode(b []byte) (*Layout, error) {
	if len(b) < 1+sha256.Size {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalidEncoding, len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if body[0] != encodingVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrInvalidEncoding, body[0])
	}
	r := &reader{b: body[1:]}
	l := &Layout{}
	l.Version = r.uvarint()
	l.RF = int(r.bounded(8))
	n := int(r.bounded(maxNodes))
	for i := 0; i < n && r.err == nil; i++ {
		var e NodeEntry
		e.ID = r.str()
		e.Role.Zone = r.str()
		e.Role.Capacity = r.varint()
		nt := int(r.bounded(maxTags))
		for j := 0; j < nt && r.err == nil; j++ {
			e.Role.Tags = append(e.Role.Tags, r.str())
		}
		l.Nodes = append(l.Nodes, e)
	}
	for p := 0; p < NumPartitions && r.err == nil; p++ {
		k := int(r.bounded(8))
		for j := 0; j < k && r.err == nil; j++ {
			l.Replicas[p] = append(l.Replicas[p], uint16(r.bounded(uint64(max(n, 1))-1)))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalidEncoding, len(r.b))
	}
	want := sha256.Sum256(body)
	if !bytes.Equal(want[:], sum) {
		return nil, fmt.Errorf("%w: digest mismatch", ErrInvalidEncoding)
	}
	copy(l.Digest[:], sum)
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEncoding, err)
	}
	return l, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", ErrInvalidEncoding, what)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bounded reads a uvarint that must be at most limit.
func (r *reader) bounded(limit uint64) uint64 {
	v := r.uvarint()
	if v > limit {
		r.fail("count")
		return 0
	}
	return v
}

func (r *reader) str() string {
	n := r.bounded(maxStringLen)
	if r.err != nil {
		return ""
	}
	if uint64(len(r.b)) < n {
		r.fail("string")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
