package model

import (
	"encoding/json"
	"fmt"
	"testing"
)

// genObject builds an object entry from fuzz bytes: each byte pair is a
// version (id from the first byte, state and timestamp from the second), and
// a version's content depends only on its id, as with real random ids.
func genObject(b []byte) objectRec {
	var o objectRec
	for i := 0; i+1 < len(b) && len(o.Versions) < 6; i += 2 {
		id := fmt.Sprintf("v%02x", b[i]%16)
		// A version only ever moves from uploading to its one final state
		// (complete, delete marker or aborted), which its id determines.
		st := stateUploading
		if b[i+1]%2 == 1 {
			st = []uint8{stateComplete, stateDeleted, stateAborted}[b[i]%16%3]
		}
		ts := uint64(b[i]%16) * 10 // one timestamp per id
		v := objVersion{ID: id, TS: ts, State: st}
		if st == stateComplete {
			v.Meta = &ObjectMeta{VersionID: id, Size: int64(b[i] % 16)}
		}
		o.Versions = append(o.Versions, v)
	}
	return objectSchema{}.Merge(o, objectRec{}) // normalized, as stored
}

func enc(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzObjectMerge(f *testing.F) {
	f.Add([]byte{1, 1}, []byte{2, 1}, []byte{3, 2})
	f.Add([]byte{1, 0, 2, 1}, []byte{2, 3, 1, 1}, []byte{})
	f.Add([]byte{5, 2}, []byte{4, 1, 6, 0}, []byte{7, 3, 5, 1})
	f.Fuzz(func(t *testing.T, ab, bb, cb []byte) {
		s := objectSchema{}
		a, b, c := genObject(ab), genObject(bb), genObject(cb)
		if enc(t, s.Merge(a, b)) != enc(t, s.Merge(b, a)) {
			t.Fatalf("not commutative: %+v %+v", a, b)
		}
		if enc(t, s.Merge(a, a)) != enc(t, a) {
			t.Fatalf("not idempotent: %+v", a)
		}
		if enc(t, s.Merge(s.Merge(a, b), c)) != enc(t, s.Merge(a, s.Merge(b, c))) {
			t.Fatalf("not associative: %+v %+v %+v", a, b, c)
		}
		// The visible version is the newest complete or deleted one, and
		// nothing older than it is kept.
		m := s.Merge(a, b)
		if v, ok := m.visible(); ok {
			for _, o := range m.Versions {
				if (o.State == stateComplete || o.State == stateDeleted) && (o.TS > v.TS || o.TS == v.TS && o.ID > v.ID) {
					t.Fatalf("visible %s but %s is newer", v.ID, o.ID)
				}
				if o.TS < v.TS {
					t.Fatalf("%s older than the visible %s kept", o.ID, v.ID)
				}
			}
		}
	})
}

func TestMergeTables(t *testing.T) {
	t.Run("upload: deletion wins, newest part wins", func(t *testing.T) {
		s := uploadSchema{}
		a := uploadRec{TS: 1, Upload: Upload{UploadID: "u"}, Parts: map[int]partRec{1: {TS: 5, VersionID: "old"}}}
		b := uploadRec{TS: 1, Parts: map[int]partRec{1: {TS: 6, VersionID: "new"}, 2: {TS: 1, VersionID: "p2"}}}
		del := uploadRec{TS: 2, Del: true}
		for _, order := range [][3]uploadRec{{a, b, del}, {del, b, a}, {b, del, a}} {
			m := s.Merge(s.Merge(order[0], order[1]), order[2])
			if !m.Del || m.Parts[1].VersionID != "new" || m.Parts[2].VersionID != "p2" || m.Upload.UploadID != "u" {
				t.Fatalf("merge = %+v", m)
			}
		}
	})
	t.Run("version: deletion wins and drops blocks", func(t *testing.T) {
		s := versionSchema{}
		a := versionRec{TS: 1, BucketID: "b", Blocks: []blockEntry{{Off: 0, Size: 1}}}
		d := s.Tombstone(a, 5)
		for _, m := range []versionRec{s.Merge(a, d), s.Merge(d, a)} {
			if !m.Del || len(m.Blocks) != 0 || m.TS != 5 || m.BucketID != "b" {
				t.Fatalf("merge = %+v", m)
			}
		}
	})
	t.Run("lww: newest wins, tie to deletion", func(t *testing.T) {
		s := lwwSchema[string]{}
		cases := []struct {
			name    string
			a, b, w lww[string]
		}{
			{"newer", lww[string]{TS: 1, V: "a"}, lww[string]{TS: 2, V: "b"}, lww[string]{TS: 2, V: "b"}},
			{"tie delete", lww[string]{TS: 2, V: "a"}, lww[string]{TS: 2, Del: true}, lww[string]{TS: 2, Del: true}},
			{"tie value", lww[string]{TS: 2, V: "a"}, lww[string]{TS: 2, V: "b"}, lww[string]{TS: 2, V: "b"}},
		}
		for _, tc := range cases {
			if s.Merge(tc.a, tc.b) != tc.w || s.Merge(tc.b, tc.a) != tc.w {
				t.Fatalf("%s: merge = %+v / %+v", tc.name, s.Merge(tc.a, tc.b), s.Merge(tc.b, tc.a))
			}
		}
	})
	t.Run("block ref: deleted stays deleted", func(t *testing.T) {
		s := blockRefSchema{}
		m := s.Merge(lww[struct{}]{TS: 9}, lww[struct{}]{TS: 1, Del: true})
		if !m.Del || m.TS != 9 {
			t.Fatalf("merge = %+v", m)
		}
	})
}

func FuzzObjectRecordCodec(f *testing.F) {
	s := objectSchema{}
	seed := objectRec{Versions: []objVersion{
		{ID: "a", TS: 1, State: stateComplete, Meta: &ObjectMeta{Size: 3}, Inl: true, Inline: []byte("abc")},
		{ID: "b", TS: 2, State: stateDeleted},
	}}
	enc, _ := s.Encode(seed)
	f.Add(enc)
	f.Add([]byte{})
	f.Add([]byte{2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Decode(b) // never panics
		if err != nil {
			return
		}
		again, err := s.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := s.Decode(again)
		if err != nil || enc2(t, v2) != enc2(t, v) {
			t.Fatalf("re-encoding changed the entry: %v", err)
		}
	})
}

// enc2 encodes an object entry, inline data included, for comparisons.
func enc2(t *testing.T, v objectRec) string {
	t.Helper()
	b, err := objectSchema{}.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
