package db

import (
	"bytes"
	"errors"
	"testing"
)

var tableKeyCases = []struct {
	name   string
	t      TableID
	pk, sk []byte
}{
	{"empty pk and sk", TableBucket, nil, nil},
	{"empty pk", TableAccessKey, nil, []byte("GK0123")},
	{"object", TableObject, []byte("0123abcd"), []byte("photos/2024/a.jpg")},
	{"binary pk", TableBlockRef, bytes.Repeat([]byte{0xff}, 32), []byte("v1")},
	{"sk with nul", TableUpload, []byte("b"), []byte("k\x00id")},
	{"long pk", TableVersion, bytes.Repeat([]byte{'a'}, 300), nil},
}

func TestTableKeyRoundTrip(t *testing.T) {
	for _, tc := range tableKeyCases {
		t.Run(tc.name, func(t *testing.T) {
			k := TableKey(tc.t, tc.pk, tc.sk)
			gt, pk, sk, err := DecodeTableKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if gt != tc.t || !bytes.Equal(pk, tc.pk) || !bytes.Equal(sk, tc.sk) {
				t.Fatalf("got (%d,%q,%q) want (%d,%q,%q)", gt, pk, sk, tc.t, tc.pk, tc.sk)
			}
			if !bytes.HasPrefix(k, TablePartitionPrefix(tc.t, tc.pk)) || !bytes.HasPrefix(k, TablePrefix(tc.t)) {
				t.Fatal("key lacks its prefixes")
			}
		})
	}
}

func TestTableKeySortsBySortKey(t *testing.T) {
	a := TableKey(TableObject, []byte("b"), []byte("a"))
	b := TableKey(TableObject, []byte("b"), []byte("a/"))
	c := TableKey(TableObject, []byte("b"), []byte("b"))
	if !(bytes.Compare(a, b) < 0 && bytes.Compare(b, c) < 0) {
		t.Fatal("keys of one partition key do not sort by sort key")
	}
	// A longer partition key that shares a prefix must not interleave.
	d := TableKey(TableObject, []byte("bb"), nil)
	if bytes.HasPrefix(d, TablePartitionPrefix(TableObject, []byte("b"))) {
		t.Fatal("partition prefix of b covers partition bb")
	}
}

func TestDecodeBadKeys(t *testing.T) {
	cases := []struct {
		name string
		k    []byte
	}{
		{"empty", nil},
		{"wrong prefix", []byte{prefixBlockRC, 1, 0, 0}},
		{"short", []byte{prefixTable, 1, 0}},
		{"pk truncated", []byte{prefixTable, 1, 0, 5, 'a'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := DecodeTableKey(tc.k); !errors.Is(err, ErrBadKey) {
				t.Fatalf("err = %v, want ErrBadKey", err)
			}
		})
	}
}

func TestBlockKeys(t *testing.T) {
	h := bytes.Repeat([]byte{7}, 32)
	got, err := DecodeBlockRCKey(BlockRCKey(h))
	if err != nil || !bytes.Equal(got, h) {
		t.Fatalf("rc round trip: %x %v", got, err)
	}
	dl, gh, err := DecodeBlockGCKey(BlockGCKey(12345, h))
	if err != nil || dl != 12345 || !bytes.Equal(gh, h) {
		t.Fatalf("gc round trip: %d %x %v", dl, gh, err)
	}
	if bytes.Compare(BlockGCKey(1, h), BlockGCKey(2, bytes.Repeat([]byte{0}, 32))) >= 0 {
		t.Fatal("gc keys do not sort by deadline")
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := []struct {
		name    string
		in, out []byte
	}{
		{"simple", []byte("ab"), []byte("ac")},
		{"carry", []byte{'a', 0xff}, []byte{'b'}},
		{"all ff", []byte{0xff, 0xff}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := PrefixEnd(tc.in); !bytes.Equal(got, tc.out) {
				t.Fatalf("PrefixEnd(%x) = %x, want %x", tc.in, got, tc.out)
			}
		})
	}
}

func TestValueVersion(t *testing.T) {
	p, err := UnwrapValue(WrapValue([]byte("x")))
	if err != nil || string(p) != "x" {
		t.Fatalf("round trip: %q %v", p, err)
	}
	for _, bad := range [][]byte{nil, {ValueVersion + 1, 'x'}} {
		if _, err := UnwrapValue(bad); !errors.Is(err, ErrBadValue) {
			t.Fatalf("UnwrapValue(%x) err = %v", bad, err)
		}
	}
}

func FuzzTableKey(f *testing.F) {
	for _, tc := range tableKeyCases {
		f.Add(byte(tc.t), tc.pk, tc.sk)
		f.Add(byte(0), TableKey(tc.t, tc.pk, tc.sk), []byte(nil))
	}
	f.Fuzz(func(t *testing.T, tb byte, pk, sk []byte) {
		// Decoding arbitrary bytes never panics.
		_, _, _, _ = DecodeTableKey(pk)
		_, _ = DecodeBlockRCKey(pk)
		_, _, _ = DecodeBlockGCKey(pk)
		_, _, _, _, _, _ = DecodeMerkleItemKey(pk)
		_, _ = DecodeMerkleTodoKey(pk)
		_, _ = UnwrapValue(pk)
		if !ValidPK(pk) {
			return
		}
		k := TableKey(TableID(tb), pk, sk)
		gt, gpk, gsk, err := DecodeTableKey(k)
		if err != nil || gt != TableID(tb) || !bytes.Equal(gpk, pk) || !bytes.Equal(gsk, sk) {
			t.Fatalf("round trip (%d,%x,%x) -> (%d,%x,%x,%v)", tb, pk, sk, gt, gpk, gsk, err)
		}
	})
}

func TestMerkleKeys(t *testing.T) {
	tk := TableKey(TableObject, []byte("bucket"), []byte("key"))
	gt, p, b0, b1, gk, err := DecodeMerkleItemKey(MerkleItemKey(TableObject, 7, 1, 2, tk))
	if err != nil || gt != TableObject || p != 7 || b0 != 1 || b1 != 2 || !bytes.Equal(gk, tk) {
		t.Fatalf("merkle item round trip: %d %d %d %d %x %v", gt, p, b0, b1, gk, err)
	}
	if !bytes.HasPrefix(MerkleItemKey(TableObject, 7, 1, 2, tk), MerkleItemPrefix(TableObject, 7, []byte{1})) {
		t.Fatal("item key outside its level-1 prefix")
	}
	if k, err := DecodeMerkleTodoKey(MerkleTodoKey(tk)); err != nil || !bytes.Equal(k, tk) {
		t.Fatalf("todo round trip: %x %v", k, err)
	}
	if !bytes.HasPrefix(MerkleTodoKey(tk), MerkleTodoPrefix(TableObject)) || bytes.HasPrefix(MerkleTodoKey(tk), MerkleTodoPrefix(TableBucket)) {
		t.Fatal("todo prefix does not select its table")
	}
	// A node key of one depth is never a prefix of another depth's keys.
	if bytes.HasPrefix(MerkleNodeKey(TableObject, 1, []byte{2}), MerkleNodeKey(TableObject, 1, nil)) {
		t.Fatal("level-1 node key extends the root key")
	}
	for _, bad := range [][]byte{nil, {prefixMerkleItem, 1, 2, 3}, {prefixTable, 1, 2, 3, 4}} {
		if _, _, _, _, _, err := DecodeMerkleItemKey(bad); !errors.Is(err, ErrBadKey) {
			t.Fatalf("DecodeMerkleItemKey(%x) err = %v", bad, err)
		}
	}
}
