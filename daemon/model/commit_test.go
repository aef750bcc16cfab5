package model

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/table"
)

// countingTable counts the reads and writes the model makes on a table.
type countingTable[V any] struct {
	kvTable[V]
	gets, inserts, ranges atomic.Int32
}

func (c *countingTable[V]) Get(ctx context.Context, pk, sk string) (V, bool, error) {
	c.gets.Add(1)
	return c.kvTable.Get(ctx, pk, sk)
}

func (c *countingTable[V]) Insert(ctx context.Context, es ...table.Entry[V]) ([]table.Change[V], error) {
	c.inserts.Add(1)
	return c.kvTable.Insert(ctx, es...)
}

// TestBlindWrites checks that an unconditional PUT or DELETE writes the
// object entry without reading it first (one quorum round trip in a
// cluster), and still lands above a newer version already there, as a node
// whose clock is ahead would have written it.
func TestBlindWrites(t *testing.T) {
	ahead := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name      string
		size      int   // body of the write under test
		aheadSize int   // body of the version already there (0: none)
		del       bool  // DELETE instead of PUT
		inserts   int32 // object-table writes expected
	}{
		{name: "put inline over nothing", size: 100, inserts: 1},
		{name: "put blocks over nothing", size: 3 * testBlock, inserts: 1},
		{name: "put inline over a newer version", size: 100, aheadSize: 50, inserts: 2},
		{name: "put blocks over a newer version", size: 3 * testBlock, aheadSize: 2 * testBlock, inserts: 2},
		{name: "delete of an absent key", del: true, inserts: 1},
		{name: "delete over a newer version", del: true, aheadSize: 2 * testBlock, inserts: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.bucket("bkt")
			if tc.aheadSize > 0 {
				// Written through the store, then re-stamped an hour ahead, as
				// a peer with a fast clock would have.
				m := e.put("bkt", "k", randBytes(7, tc.aheadSize))
				rec, _, err := e.s.objects.Get(e.ctx, b.ID, "k")
				if err != nil {
					t.Fatal(err)
				}
				v, _ := rec.visible()
				if v.ID != m.VersionID {
					t.Fatalf("visible version %s, want %s", v.ID, m.VersionID)
				}
				v.TS = uint64(ahead.UnixMilli())
				fresh := objectRec{Versions: []objVersion{v}}
				fresh.Versions[0].ID = "ahead-" + v.ID
				if _, err := e.s.objects.Insert(e.ctx, table.Entry[objectRec]{PK: b.ID, SK: "k", Value: fresh}); err != nil {
					t.Fatal(err)
				}
			}
			ct := &countingTable[objectRec]{kvTable: e.s.objects}
			e.s.objects = ct
			body := randBytes(11, tc.size)
			if tc.del {
				if err := e.s.DeleteObject(e.ctx, "bkt", "k"); err != nil {
					t.Fatal(err)
				}
			} else {
				m := e.put("bkt", "k", body)
				if tc.aheadSize > 0 && !m.LastModified.After(ahead) {
					t.Errorf("LastModified %v is not above the newer version's %v", m.LastModified, ahead)
				}
			}
			if g := ct.gets.Load(); g != 0 {
				t.Errorf("%d object reads before the write, want none", g)
			}
			if n := ct.inserts.Load(); n != tc.inserts {
				t.Errorf("%d object writes, want %d", n, tc.inserts)
			}
			e.gcAll() // a version freed by mistake would lose its blocks here
			if tc.del {
				if _, err := e.s.HeadObject(e.ctx, "bkt", "k"); !errors.Is(err, ErrNoSuchKey) {
					t.Fatalf("head after delete: %v, want ErrNoSuchKey", err)
				}
				return
			}
			if got := e.get("bkt", "k"); !bytes.Equal(got, body) {
				t.Fatalf("read %d bytes, not the body written (%d bytes)", len(got), len(body))
			}
		})
	}
}

// TestStampOrdersOneNodesWrites: writes through one node get increasing
// timestamps even within a millisecond or when the clock steps back, so the
// second of two quick PUTs always wins without a rewrite.
func TestStampOrdersOneNodesWrites(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	fixed := time.Now()
	e.s.now = func() time.Time { return fixed }
	ct := &countingTable[objectRec]{kvTable: e.s.objects}
	e.s.objects = ct
	var last []byte
	for i := range 20 {
		if i == 10 {
			fixed = fixed.Add(-time.Minute) // clock steps back
		}
		last = randBytes(uint64(i), 64)
		e.put("bkt", "k", last)
	}
	if n := ct.inserts.Load(); n != 20 {
		t.Errorf("%d object writes for 20 PUTs, want 20 (no rewrite)", n)
	}
	if got := e.get("bkt", "k"); !bytes.Equal(got, last) {
		t.Fatal("the last PUT is not the visible version")
	}
}

func (c *countingTable[V]) RangeSummary(ctx context.Context, pk, from string, limit int) ([]table.Entry[V], error) {
	c.ranges.Add(1)
	return c.kvTable.RangeSummary(ctx, pk, from, limit)
}

// TestListRoundTrips counts the table reads a listing makes (each is a
// quorum round trip in a cluster): common prefixes found inside a batch cost
// nothing more, and a prefix whose keys fill a batch is skipped by one seek.
func TestListRoundTrips(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	for d := range 100 {
		for f := range 2 {
			e.put("bkt", fmt.Sprintf("dir%03d/f%d", d, f), []byte("x"))
		}
	}
	for i := range 2*listBatch + 10 {
		e.put("bkt", fmt.Sprintf("zbig/%04d", i), []byte("y"))
	}
	e.put("bkt", "zz", []byte("z"))
	ct := &countingTable[objectRec]{kvTable: e.s.objects}
	e.s.objects = ct
	for _, tc := range []struct {
		name     string
		in       ListInput
		prefixes int
		objects  int
		reads    int32
	}{
		{"100 dirs in one batch", ListInput{Bucket: "bkt", Prefix: "dir", Delimiter: "/", MaxKeys: 1000}, 100, 0, 1},
		{"everything rolled up", ListInput{Bucket: "bkt", Delimiter: "/", MaxKeys: 1000}, 101, 1, 2},
		{"a prefix filling a batch is sought past", ListInput{Bucket: "bkt", Prefix: "z", Delimiter: "/", MaxKeys: 1000}, 1, 1, 2},
		{"flat listing of a dir", ListInput{Bucket: "bkt", Prefix: "dir007/", MaxKeys: 1000}, 0, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct.ranges.Store(0)
			res, err := e.s.ListObjects(e.ctx, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.CommonPrefixes) != tc.prefixes || len(res.Objects) != tc.objects {
				t.Fatalf("%d prefixes and %d objects, want %d and %d", len(res.CommonPrefixes), len(res.Objects), tc.prefixes, tc.objects)
			}
			if n := ct.ranges.Load(); n != tc.reads {
				t.Errorf("%d table reads, want %d", n, tc.reads)
			}
		})
	}
}

// gatedTable holds every Get until gate is closed.
type gatedTable[V any] struct {
	kvTable[V]
	gate chan struct{}
}

func (g *gatedTable[V]) Get(ctx context.Context, pk, sk string) (V, bool, error) {
	<-g.gate
	return g.kvTable.Get(ctx, pk, sk)
}

// TestFreeAfterAnswer: freeing the version a DELETE or an overwriting PUT
// supersedes (a read and two writes, three round trips in a cluster) does
// not hold up the answer, and still happens.
func TestFreeAfterAnswer(t *testing.T) {
	for _, del := range []bool{true, false} {
		name := map[bool]string{true: "delete", false: "overwrite"}[del]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.bucket("bkt")
			e.put("bkt", "k", randBytes(1, 2*testBlock))
			gt := &gatedTable[versionRec]{kvTable: e.s.versions, gate: make(chan struct{})}
			e.s.versions = gt
			done := make(chan error, 1)
			go func() {
				if del {
					done <- e.s.DeleteObject(e.ctx, "bkt", "k")
					return
				}
				_, err := e.s.PutObject(e.ctx, PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader([]byte("small now"))})
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				close(gt.gate)
				t.Fatal("the request waited for the free of the version it superseded")
			}
			close(gt.gate)
			if n := e.gcAll(); n != 2 {
				t.Fatalf("GC deleted %d blocks of the superseded version, want 2", n)
			}
		})
	}
}

// TestGetUsesEmbeddedBlocks: the object entry of a version with at most
// embedBlocks blocks carries its block list, so reading it (and copying it)
// needs no version-table read; a longer one is read from the version table.
func TestGetUsesEmbeddedBlocks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks int
		reads  int32 // version-table reads for a GET
	}{
		{"one block", 1, 0},
		{"embedBlocks blocks", embedBlocks, 0},
		{"one more", embedBlocks + 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.bucket("bkt")
			body := randBytes(3, tc.blocks*testBlock)
			e.put("bkt", "k", body)
			ct := &countingTable[versionRec]{kvTable: e.s.versions}
			e.s.versions = ct
			if got := e.get("bkt", "k"); !bytes.Equal(got, body) {
				t.Fatal("read back differs")
			}
			if n := ct.gets.Load(); n != tc.reads {
				t.Errorf("%d version-table reads for a GET, want %d", n, tc.reads)
			}
			m, err := e.s.HeadObject(e.ctx, "bkt", "k")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.s.CopyObject(e.ctx, CopyInput{Src: m, DstBucket: "bkt", DstKey: "copy"}); err != nil {
				t.Fatal(err)
			}
			if got := e.get("bkt", "copy"); !bytes.Equal(got, body) {
				t.Fatal("copy reads back differently")
			}
		})
	}
}
