package block

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Service is the rpc service name of block replication (protocol
// /entrepot/block/1). Methods: put, get, need.
const Service = "block"

// wireVersion is the first byte of every block message. A node refuses
// messages of another version (ErrWire).
const wireVersion = 1

// MaxNeedBatch bounds the hashes of one need request.
const MaxNeedBatch = 1024

// ErrWire reports a malformed block message.
var ErrWire = errors.New("block: malformed message")

// Need flags, one byte per hash in a need answer.
const (
	// NeedHas: the node stores the block.
	NeedHas byte = 1 << 0
	// NeedWanted: the node references the block (refcount > 0) and lacks it.
	NeedWanted byte = 1 << 1
)

// encodePut encodes a put request: version | hash | data. The result is
// freshly allocated, so the caller may reuse data at once.
func encodePut(h Hash, data []byte) []byte {
	b := make([]byte, 0, 1+HashSize+len(data))
	b = append(b, wireVersion)
	b = append(b, h[:]...)
	return append(b, data...)
}

// decodePut splits a put request; data aliases b and is at most maxData bytes.
func decodePut(b []byte, maxData int) (Hash, []byte, error) {
	var h Hash
	if len(b) < 1+HashSize || b[0] != wireVersion {
		return h, nil, fmt.Errorf("decode put: %w", ErrWire)
	}
	if len(b)-1-HashSize > maxData {
		return h, nil, fmt.Errorf("decode put: %d data bytes over %d: %w", len(b)-1-HashSize, maxData, ErrWire)
	}
	copy(h[:], b[1:1+HashSize])
	return h, b[1+HashSize:], nil
}

// encodeGet encodes a get request: version | hash.
func encodeGet(h Hash) []byte { return append([]byte{wireVersion}, h[:]...) }

func decodeGet(b []byte) (Hash, error) {
	var h Hash
	if len(b) != 1+HashSize || b[0] != wireVersion {
		return h, fmt.Errorf("decode get: %w", ErrWire)
	}
	copy(h[:], b[1:])
	return h, nil
}

// decodeData checks a get answer (version | data) and returns data (aliasing b).
func decodeData(b []byte, maxData int) ([]byte, error) {
	if len(b) < 1 || b[0] != wireVersion || len(b)-1 > maxData {
		return nil, fmt.Errorf("decode block data: %w", ErrWire)
	}
	return b[1:], nil
}

// encodeNeed encodes a need request: version | uvarint count | hashes.
func encodeNeed(hs []Hash) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(hs)*HashSize)
	b = append(b, wireVersion)
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func decodeNeed(b []byte) ([]Hash, error) {
	if len(b) < 2 || b[0] != wireVersion {
		return nil, fmt.Errorf("decode need: %w", ErrWire)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > MaxNeedBatch || k != len(binary.AppendUvarint(nil, n)) {
		return nil, fmt.Errorf("decode need: count: %w", ErrWire)
	}
	rest := b[1+k:]
	if uint64(len(rest)) != n*HashSize {
		return nil, fmt.Errorf("decode need: %d bytes for %d hashes: %w", len(rest), n, ErrWire)
	}
	hs := make([]Hash, n)
	for i := range hs {
		copy(hs[i][:], rest[i*HashSize:])
	}
	return hs, nil
}

// Put reply flags (the byte after the version; a bare version byte, as
// older nodes answer, means none).
const (
	// PutClientsActive: the node's clients are active; background
	// transfers to it should leave them room (see "Rebalance pacing").
	PutClientsActive byte = 1 << 0
)

// encodePutReply: version | flags | uvarint client traffic (bytes/s).
func encodePutReply(active bool, clientBps uint64) []byte {
	var f byte
	if active {
		f |= PutClientsActive
	}
	return binary.AppendUvarint([]byte{wireVersion, f}, clientBps)
}

// decodePutReply reads a put reply; a bare version byte is an older node's
// reply and reports nothing.
func decodePutReply(b []byte) (active bool, clientBps uint64, err error) {
	if len(b) == 0 || b[0] != wireVersion {
		return false, 0, fmt.Errorf("decode put reply: %w", ErrWire)
	}
	if len(b) == 1 {
		return false, 0, nil
	}
	if b[1]&^PutClientsActive != 0 {
		return false, 0, fmt.Errorf("decode put reply: flags %#x: %w", b[1], ErrWire)
	}
	v, n := binary.Uvarint(b[2:])
	if n <= 0 || 2+n != len(b) {
		return false, 0, fmt.Errorf("decode put reply: %w", ErrWire)
	}
	return b[1]&PutClientsActive != 0, v, nil
}

// encodeNeedReply: version | one flag byte per hash.
func encodeNeedReply(flags []byte) []byte { return append([]byte{wireVersion}, flags...) }

func decodeNeedReply(b []byte, n int) ([]byte, error) {
	if n < 0 || len(b) != 1+n || b[0] != wireVersion {
		return nil, fmt.Errorf("decode need reply: %w", ErrWire)
	}
	for _, f := range b[1:] {
		if f&^(NeedHas|NeedWanted) != 0 {
			return nil, fmt.Errorf("decode need reply: flags %#x: %w", f, ErrWire)
		}
	}
	return b[1:], nil
}

// codedError carries an rpc error code to the caller.
type codedError struct {
	code string
	err  error
}

func (e codedError) Error() string   { return e.err.Error() }
func (e codedError) Unwrap() error   { return e.err }
func (e codedError) RPCCode() string { return e.code }

// Error codes of the block service.
const (
	codeNotFound = "block-not-found"
	codeCorrupt  = "block-corrupt"
	codeNotOwner = "block-not-owner"
	codeBadMsg   = "block-bad-message"
)

func coded(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return codedError{codeNotFound, err}
	case errors.Is(err, ErrCorrupt):
		return codedError{codeCorrupt, err}
	case errors.Is(err, ErrNotOwner):
		return codedError{codeNotOwner, err}
	case errors.Is(err, ErrWire):
		return codedError{codeBadMsg, err}
	}
	return err
}
