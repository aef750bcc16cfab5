package model

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
)

// countingObjectGets counts reads of the object table: in a cluster each one is
// a quorum round trip to the replicas.
type countingObjectGets struct {
	kvTable[objectRec]
	reads atomic.Int64
}

func (c *countingObjectGets) Get(ctx context.Context, pk, sk string) (objectRec, bool, error) {
	c.reads.Add(1)
	return c.kvTable.Get(ctx, pk, sk)
}

// A GET (HeadObject then OpenObject of what it returned) reads the object
// entry once, and serves the version it headed even if the key is
// overwritten in between (a consistent snapshot, not a spurious NoSuchKey).
func TestGetReadsObjectEntryOnce(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	small, big := randBytes(1, 1000), randBytes(2, 3*testBlock+5)
	e.put("bkt", "small", small)
	e.put("bkt", "big", big)
	c := &countingObjectGets{kvTable: e.s.objects}
	e.s.objects = c
	for _, tc := range []struct {
		key  string
		want []byte
	}{{"small", small}, {"big", big}} {
		c.reads.Store(0)
		m, err := e.s.HeadObject(e.ctx, "bkt", tc.key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.read(m, 0, -1)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Fatalf("%s: read %d bytes, %v", tc.key, len(got), err)
		}
		if n := c.reads.Load(); n != 1 {
			t.Fatalf("%s: HeadObject+OpenObject read the object entry %d times, want 1", tc.key, n)
		}
	}
	m, err := e.s.HeadObject(e.ctx, "bkt", "small")
	if err != nil {
		t.Fatal(err)
	}
	e.put("bkt", "small", []byte("newer"))
	got, err := e.read(m, 0, -1)
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("read of the headed version after an overwrite: %q, %v", got, err)
	}
}
