package db

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
)

func TestSchemaVersion(t *testing.T) {
	cases := []struct {
		name    string
		stored  uint32 // 0 = fresh database
		wantErr error
	}{
		{"fresh", 0, nil},
		{"same", SchemaVersion, nil},
		{"newer refused", SchemaVersion + 1, ErrSchemaTooNew},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.stored != 0 {
				l, err := leveldb.OpenFile(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Put(SchemaKey(), binary.BigEndian.AppendUint32(nil, tc.stored), nil); err != nil {
					t.Fatal(err)
				}
				l.Close()
			}
			d, err := Open(dir, Options{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open err = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				v, err := d.Get(SchemaKey())
				if err != nil || binary.BigEndian.Uint32(v) != SchemaVersion {
					t.Fatalf("schema stored = %x, %v", v, err)
				}
				d.Close()
			}
		})
	}
}

func TestBatchOverlayAndIterate(t *testing.T) {
	d, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := d.NewBatch()
	k1 := TableKey(TableObject, []byte("b"), []byte("1"))
	k2 := TableKey(TableObject, []byte("b"), []byte("2"))
	b.Put(k1, []byte("one"))
	b.Put(k2, []byte("two"))
	b.Delete(k2)
	if v, err := b.Get(k1); err != nil || string(v) != "one" {
		t.Fatalf("overlay get = %q %v", v, err)
	}
	if _, err := b.Get(k2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted in batch: %v", err)
	}
	if _, err := d.Get(k1); !errors.Is(err, ErrNotFound) {
		t.Fatal("batch visible before Write")
	}
	if err := d.Write(b, true); err != nil {
		t.Fatal(err)
	}
	it := d.IteratePrefix(TablePartitionPrefix(TableObject, []byte("b")))
	var n int
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil || n != 1 {
		t.Fatalf("iterated %d keys, err %v", n, err)
	}
}
