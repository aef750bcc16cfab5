package table

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/entrepot/entrepot/daemon/db"
)

var wireEntries = []struct {
	name string
	es   []rawEntry
}{
	{"none", nil},
	{"one", []rawEntry{{PK: "bucket", SK: "key", Value: []byte(`{"t":1}`)}}},
	{"empty pk and value", []rawEntry{{SK: "k", Value: []byte{}}}},
	{"binary", []rawEntry{{PK: "\x00\xff", SK: "a\x00b", Value: bytes.Repeat([]byte{0xfe}, 300)}, {PK: "p", SK: "s", Value: []byte("v")}}},
}

func TestWireRoundTrip(t *testing.T) {
	for _, tc := range wireEntries {
		t.Run(tc.name, func(t *testing.T) {
			id, want, es, err := decodeInsert(encodeInsert(db.TableObject, true, tc.es))
			if err != nil || id != db.TableObject || !want || len(es) != len(tc.es) {
				t.Fatalf("insert: %d %v %v %v", id, want, es, err)
			}
			for i := range es {
				if es[i].PK != tc.es[i].PK || es[i].SK != tc.es[i].SK || !bytes.Equal(es[i].Value, tc.es[i].Value) {
					t.Fatalf("entry %d: %+v want %+v", i, es[i], tc.es[i])
				}
			}
			got, more, err := decodeEntries(encodeEntries(tc.es, true))
			if err != nil || !more || len(got) != len(tc.es) {
				t.Fatalf("entries: %v %v %v", got, more, err)
			}
			var keys []rawKey
			var vals []rawValue
			var chs []rawChange
			var gcs []gcItem
			var items []itemRef
			for i, e := range tc.es {
				keys = append(keys, rawKey{e.PK, e.SK})
				vals = append(vals, rawValue{Found: i%2 == 0, Value: e.Value})
				chs = append(chs, rawChange{HadOld: i%2 == 1, Changed: true, Old: []byte("o"), New: e.Value})
				gcs = append(gcs, gcItem{PK: e.PK, SK: e.SK, Hash: valueHash(e.Value)})
				items = append(items, itemRef{PK: e.PK, SK: e.SK, Hash: valueHash(e.Value), Cursor: []byte(e.SK)})
			}
			if _, k, err := decodeGet(encodeGet(db.TableBucket, keys)); err != nil || !equalish(k, keys) {
				t.Fatalf("get: %v %v", k, err)
			}
			if v, err := decodeValues(encodeValues(vals)); err != nil || len(v) != len(vals) {
				t.Fatalf("values: %v %v", v, err)
			} else {
				for i := range v {
					if v[i].Found != vals[i].Found || (v[i].Found && !bytes.Equal(v[i].Value, vals[i].Value)) {
						t.Fatalf("value %d: %+v", i, v[i])
					}
				}
			}
			if c, err := decodeChanges(encodeChanges(chs)); err != nil || len(c) != len(chs) {
				t.Fatalf("changes: %v %v", c, err)
			}
			if _, g, err := decodeGC(encodeGC(db.TableVersion, gcs)); err != nil || !equalish(g, gcs) {
				t.Fatalf("gc: %v %v", g, err)
			}
			if it, more, err := decodeItems(encodeItems(items, false)); err != nil || more || !equalish(it, items) {
				t.Fatalf("items: %v %v %v", it, more, err)
			}
		})
	}
	var roots [256]mnode
	roots[7] = mnode{Hash: [32]byte{1, 2}, Count: 300}
	if got, err := decodeRoots(encodeRoots(roots)); err != nil || got != roots {
		t.Fatalf("roots: %v", err)
	}
	if _, p, path, err := decodeChildrenReq(encodeChildrenReq(db.TableObject, 9, []byte{4})); err != nil || p != 9 || !bytes.Equal(path, []byte{4}) {
		t.Fatalf("children req: %d %x %v", p, path, err)
	}
	cs := []child{{B: 3, Node: mnode{Count: 2}}}
	if got, err := decodeChildren(encodeChildren(cs)); err != nil || !reflect.DeepEqual(got, cs) {
		t.Fatalf("children: %v %v", got, err)
	}
	for _, after := range [][]byte{nil, {}, {1, 2}} {
		_, p, path, a, limit, err := decodeItemsReq(encodeItemsReq(db.TableObject, 1, []byte{1, 2}, after, 10))
		if err != nil || p != 1 || len(path) != 2 || limit != 10 || (a == nil) != (after == nil) || !bytes.Equal(a, after) {
			t.Fatalf("items req after %v: %v %v %v", after, a, limit, err)
		}
	}
	if _, pk, from, limit, err := decodeRange(encodeRange(db.TableObject, "b", "k", 5)); err != nil || pk != "b" || from != "k" || limit != 5 {
		t.Fatalf("range: %q %q %d %v", pk, from, limit, err)
	}
}

func equalish[T any](a, b []T) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestWireRejects(t *testing.T) {
	good := encodeInsert(db.TableObject, false, wireEntries[1].es)
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"wrong version", append([]byte{wireVersion + 1}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte(nil), good...), 0)},
		{"huge count", []byte{wireVersion, byte(db.TableObject), 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"length beyond", []byte{wireVersion, byte(db.TableObject), 0, 1, 0x7f}},
		{"bad bool", []byte{wireVersion, byte(db.TableObject), 2, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := decodeInsert(tc.b); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("decodeInsert err = %v, want ErrBadMessage", err)
			}
		})
	}
	if _, _, _, err := decodeChildrenReq(encodeChildrenReq(db.TableObject, 1, []byte{1, 2})); !errors.Is(err, ErrBadMessage) {
		t.Fatal("children of a leaf accepted")
	}
	if _, _, _, _, _, err := decodeItemsReq(encodeItemsReq(db.TableObject, 1, nil, nil, 0)); !errors.Is(err, ErrBadMessage) {
		t.Fatal("items limit 0 accepted")
	}
}

// FuzzWire: no decoder panics or over-allocates on arbitrary input, and
// whatever decodes as an insert re-encodes to the same bytes.
func FuzzWire(f *testing.F) {
	for _, tc := range wireEntries {
		f.Add(encodeInsert(db.TableObject, true, tc.es))
		f.Add(encodeEntries(tc.es, false))
	}
	f.Add(encodeGet(db.TableBucket, []rawKey{{"a", "b"}}))
	f.Add(encodeItemsReq(db.TableObject, 1, []byte{2}, []byte("x"), 5))
	f.Add(encodeItems([]itemRef{{PK: "a", SK: "b", Cursor: []byte("c")}}, true))
	f.Add(encodeGC(db.TableObject, []gcItem{{PK: "a"}}))
	f.Add(encodeChildren([]child{{B: 1}}))
	f.Add(encodeChanges([]rawChange{{HadOld: true, Old: []byte("x"), New: []byte("y")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, want, es, err := decodeInsert(b); err == nil {
			if re := encodeInsert(id, want, es); !bytes.Equal(re, b) {
				t.Fatalf("insert re-encodes to %x, was %x", re, b)
			}
		}
		decodeChanges(b)
		decodeGet(b)
		decodeValues(b)
		decodeRange(b)
		decodeEntries(b)
		decodeRoots(b)
		decodeRootsReq(b)
		decodeChildrenReq(b)
		decodeChildren(b)
		decodeItemsReq(b)
		decodeItems(b)
		decodeGC(b)
		decodeCount(b)
		decodeNode(b)
	})
}
