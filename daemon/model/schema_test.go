package model

import (
	"encoding/binary"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/entrepot/entrepot/daemon/db"
)

func writeSchema(t *testing.T, dir string, v uint32) {
	t.Helper()
	l, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Put(db.SchemaKey(), binary.BigEndian.AppendUint32(nil, v), nil); err != nil {
		t.Fatal(err)
	}
}
