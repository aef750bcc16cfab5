package block

import (
	"bytes"
	"errors"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	h1, h2 := Sum([]byte("a")), Sum([]byte("b"))
	tests := []struct {
		name string
		run  func() error
	}{
		{"put", func() error {
			h, d, err := decodePut(encodePut(h1, []byte("data")), 10)
			if err != nil || h != h1 || string(d) != "data" {
				return errors.New("put mismatch")
			}
			return nil
		}},
		{"put empty", func() error {
			_, d, err := decodePut(encodePut(h1, nil), 10)
			if err != nil || len(d) != 0 {
				return errors.New("empty put mismatch")
			}
			return nil
		}},
		{"put too big", func() error {
			if _, _, err := decodePut(encodePut(h1, make([]byte, 11)), 10); !errors.Is(err, ErrWire) {
				return errors.New("oversized put accepted")
			}
			return nil
		}},
		{"get", func() error {
			h, err := decodeGet(encodeGet(h2))
			if err != nil || h != h2 {
				return errors.New("get mismatch")
			}
			return nil
		}},
		{"need", func() error {
			hs, err := decodeNeed(encodeNeed([]Hash{h1, h2}))
			if err != nil || len(hs) != 2 || hs[0] != h1 || hs[1] != h2 {
				return errors.New("need mismatch")
			}
			return nil
		}},
		{"need too many", func() error {
			if _, err := decodeNeed(encodeNeed(make([]Hash, MaxNeedBatch+1))); !errors.Is(err, ErrWire) {
				return errors.New("oversized need accepted")
			}
			return nil
		}},
		{"need reply", func() error {
			f, err := decodeNeedReply(encodeNeedReply([]byte{NeedHas, NeedWanted, 0}), 3)
			if err != nil || !bytes.Equal(f, []byte{NeedHas, NeedWanted, 0}) {
				return errors.New("need reply mismatch")
			}
			if _, err := decodeNeedReply(encodeNeedReply([]byte{4}), 1); !errors.Is(err, ErrWire) {
				return errors.New("unknown flag accepted")
			}
			return nil
		}},
		{"bad version", func() error {
			b := encodeGet(h1)
			b[0] = 2
			if _, err := decodeGet(b); !errors.Is(err, ErrWire) {
				return errors.New("version 2 accepted")
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func FuzzDecodePut(f *testing.F) {
	f.Add(encodePut(Sum(nil), []byte("hello")))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, d, err := decodePut(b, 64)
		if err != nil {
			return
		}
		if len(d) > 64 {
			t.Fatalf("data of %d bytes over the bound", len(d))
		}
		if !bytes.Equal(encodePut(h, d), b) {
			t.Fatal("put does not round-trip")
		}
	})
}

func FuzzDecodeNeed(f *testing.F) {
	f.Add(encodeNeed([]Hash{Sum(nil)}))
	f.Add(encodeNeed(nil))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := decodeNeed(b)
		if err != nil {
			return
		}
		if len(hs) > MaxNeedBatch {
			t.Fatalf("%d hashes over the bound", len(hs))
		}
		if !bytes.Equal(encodeNeed(hs), b) {
			t.Fatal("need does not round-trip")
		}
	})
}

func FuzzDecodeReplies(f *testing.F) {
	f.Add(encodeNeedReply([]byte{NeedHas}), encodeGet(Sum(nil)))
	f.Add([]byte{1, 3, 3}, []byte{1, 'x'})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if fl, err := decodeNeedReply(a, len(a)-1); err == nil && !bytes.Equal(encodeNeedReply(fl), a) {
			t.Fatal("need reply does not round-trip")
		}
		if d, err := decodeData(b, 16); err == nil && len(d) > 16 {
			t.Fatal("data over the bound")
		}
		if h, err := decodeGet(b); err == nil && !bytes.Equal(encodeGet(h), b) {
			t.Fatal("get does not round-trip")
		}
	})
}

func FuzzDecodeBlockError(f *testing.F) {
	f.Add(blockError{last: 1700000000, count: 3, due: 1 << 60}.encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeBlockError(b)
		if err != nil {
			return
		}
		if e.count < 0 || e.count > 1<<16 {
			t.Fatalf("count %d out of range", e.count)
		}
		if e2, err := decodeBlockError(e.encode()); err != nil || e2 != e {
			t.Fatalf("re-encoded record decodes to %+v, %v", e2, err)
		}
	})
}
