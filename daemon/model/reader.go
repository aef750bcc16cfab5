package model

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/entrepot/entrepot/daemon/block"
)

// span is the part of one block a read needs.
type span struct {
	h          block.Hash
	start, end int // byte range inside the block's plain data
}

// OpenObject reads bytes [offset, offset+length) of exactly the version meta
// describes (length -1 = to the end). It fails with ErrNoSuchKey once that
// version has been replaced or deleted. The blocks are pinned until Close,
// so a read in progress survives a concurrent overwrite.
func (s *Store) OpenObject(ctx context.Context, meta ObjectMeta, offset, length int64) (io.ReadCloser, error) {
	b, err := s.bucketByName(ctx, meta.Bucket)
	if err != nil {
		return nil, err
	}
	var v objVersion
	if meta.found != nil && meta.found.ID == meta.VersionID && meta.found.Meta != nil {
		v = *meta.found // read by HeadObject; a version's contents never change
	} else if v, err = s.findVersion(ctx, b.ID, meta.Key, meta.VersionID); err != nil {
		return nil, err
	}
	size := v.Meta.Size
	if length < 0 {
		length = size - offset
	}
	if offset < 0 || length < 0 || offset+length > size {
		return nil, fmt.Errorf("range %d+%d of a %d-byte object: %w", offset, length, size, ErrInvalidArgument)
	}
	if v.Inl {
		return io.NopCloser(bytes.NewReader(v.Inline[offset : offset+length])), nil
	}
	bl := v.Blocks
	if len(bl) == 0 {
		if bl, err = s.liveBlocks(ctx, v.ID); err != nil {
			return nil, err
		}
	}
	var spans []span
	var pos int64
	end := offset + length
	for _, e := range bl {
		bs, be := pos, pos+e.Size
		pos = be
		if be <= offset || bs >= end || e.Size == 0 {
			continue
		}
		h, err := block.HashFromBytes(e.Hash)
		if err != nil {
			return nil, fmt.Errorf("open object: %w", err)
		}
		spans = append(spans, span{h: h, start: int(max(offset, bs) - bs), end: int(min(end, be) - bs)})
	}
	if pos != size {
		return nil, fmt.Errorf("open object: version %s holds %d bytes, meta says %d", v.ID, pos, size)
	}
	hs := make([]block.Hash, len(spans))
	for i, sp := range spans {
		hs[i] = sp.h
	}
	return &objectReader{s: s, spans: spans, unpin: s.blocks.Pin(hs...)}, nil
}

// objectReader streams spans block by block, holding at most one block
// buffer. It implements io.WriterTo so io.Copy hands each block to the
// destination in one Write.
type objectReader struct {
	s      *Store
	spans  []span
	buf    []byte // pooled buffer of the current block
	cur    []byte // unread part of it
	unpin  func()
	err    error
	closed bool
}

func (r *objectReader) next() error {
	if r.buf != nil {
		r.s.blocks.PutBuffer(r.buf)
		r.buf, r.cur = nil, nil
	}
	if len(r.spans) == 0 {
		return io.EOF
	}
	sp := r.spans[0]
	r.spans = r.spans[1:]
	// The read is bounded by the request: the caller stops calling Read when
	// its own context ends, so no context is kept here.
	data, err := r.s.blocks.Read(context.Background(), sp.h)
	if err != nil {
		return fmt.Errorf("read object data: %w", err)
	}
	if sp.end > len(data) {
		r.s.blocks.PutBuffer(data)
		return fmt.Errorf("read object data: block %s has %d bytes, want %d", sp.h, len(data), sp.end)
	}
	r.buf, r.cur = data, data[sp.start:sp.end]
	return nil
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("read closed object reader: %w", io.ErrClosedPipe)
	}
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo streams the remaining data to w. When w can pull from a file
// (io.ReaderFrom: an http.ResponseWriter over TCP), uncompressed blocks are
// handed over as *os.File ranges after their CRC check, so net/http uses
// sendfile: measured 1.6-1.9 GB/s through the buffered path vs 2.9-3.4 GB/s
// this way (1 MiB objects, 16 loopback connections).
func (r *objectReader) WriteTo(w io.Writer) (int64, error) {
	if r.closed {
		return 0, fmt.Errorf("read closed object reader: %w", io.ErrClosedPipe)
	}
	var total int64
	rf, canPull := w.(io.ReaderFrom)
	for {
		if len(r.cur) > 0 {
			n, err := w.Write(r.cur)
			total += int64(n)
			r.cur = r.cur[n:]
			if err != nil {
				return total, err
			}
		}
		if r.err != nil {
			if r.err == io.EOF {
				return total, nil
			}
			return total, r.err
		}
		if canPull && len(r.spans) > 0 {
			n, done, err := r.sendSpan(rf)
			total += n
			if err != nil {
				r.err = err
				return total, err
			}
			if done {
				continue
			}
		}
		r.err = r.next()
	}
}

// sendSpan serves the next span straight from its block file, if the block
// store allows (done = false: use the buffered path).
func (r *objectReader) sendSpan(rf io.ReaderFrom) (n int64, done bool, err error) {
	sp := r.spans[0]
	f, size, ok, err := r.s.blocks.OpenPlain(context.Background(), sp.h)
	if err != nil || !ok {
		return 0, false, err
	}
	defer f.Close()
	if int64(sp.end) > size {
		return 0, false, fmt.Errorf("read object data: block %s has %d bytes, want %d", sp.h, size, sp.end)
	}
	r.spans = r.spans[1:]
	if _, err := f.Seek(int64(sp.start), io.SeekCurrent); err != nil {
		return 0, true, fmt.Errorf("read object data: %w", err)
	}
	want := int64(sp.end - sp.start)
	n, err = rf.ReadFrom(&io.LimitedReader{R: f, N: want})
	if err == nil && n != want {
		err = fmt.Errorf("read object data: block %s: sent %d of %d bytes: %w", sp.h, n, want, io.ErrUnexpectedEOF)
	}
	return n, true, err
}

func (r *objectReader) Close() error {
	if !r.closed {
		r.closed = true
		if r.buf != nil {
			r.s.blocks.PutBuffer(r.buf)
			r.buf, r.cur = nil, nil
		}
		r.unpin()
	}
	return nil
}
