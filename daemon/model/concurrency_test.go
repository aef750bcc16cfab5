package model

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/table"
)

// TestConcurrentOpsLeakNothing races puts, overwrites, copies, conditional
// puts, deletes and reads on a few keys, then checks that after GC exactly
// the blocks of the surviving objects remain on disk, each with a reference
// count equal to the number of versions using it.
func TestConcurrentOpsLeakNothing(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	keys := []string{"a", "b", "c", "d"}
	// A small pool of contents so that dedup and shared blocks happen.
	contents := make([][]byte, 6)
	for i := range contents {
		contents[i] = randBytes(uint64(500+i), (i%3)*testBlock+testBlock/2+i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 40 {
				key := keys[r.IntN(len(keys))]
				data := contents[r.IntN(len(contents))]
				var err error
				switch op := r.IntN(10); {
				case op < 4:
					_, err = e.s.PutObject(e.ctx, PutInput{Bucket: "b01", Key: key, Body: bytes.NewReader(data), Sums: sumsOf(data)})
				case op < 5:
					_, err = e.s.PutObject(e.ctx, PutInput{Bucket: "b01", Key: key, Body: bytes.NewReader(data), Sums: sumsOf(data),
						Cond: WriteConditions{IfNoneMatchStar: true}})
				case op < 7:
					var m ObjectMeta
					if m, err = e.s.HeadObject(e.ctx, "b01", key); err == nil {
						_, err = e.s.CopyObject(e.ctx, CopyInput{Src: m, DstBucket: "b01", DstKey: keys[r.IntN(len(keys))]})
					}
				case op < 8:
					err = e.s.DeleteObject(e.ctx, "b01", key)
				default:
					var m ObjectMeta
					if m, err = e.s.HeadObject(e.ctx, "b01", key); err == nil {
						var got []byte
						if got, err = e.read(m, 0, -1); err == nil && md5hex(got) != m.ETag {
							err = fmt.Errorf("read %s: content does not match ETag", key)
						}
					}
				}
				// Losing a race is fine; anything else is not.
				if err != nil && !errors.Is(err, ErrNoSuchKey) && !errors.Is(err, ErrPreconditionFailed) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := e.s.RepairVersions(e.ctx, 0); err != nil || n != 0 {
		t.Fatalf("RepairVersions freed %d versions (%v): a version leaked", n, err)
	}
	e.gcAll()
	want := map[string]uint64{} // block hash -> versions using it
	for _, k := range keys {
		m, err := e.s.HeadObject(e.ctx, "b01", k)
		if errors.Is(err, ErrNoSuchKey) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := e.get("b01", k); md5hex(got) != m.ETag {
			t.Fatalf("%s: content does not match ETag", k)
		}
		b, _ := e.s.GetBucket(e.ctx, "b01")
		rec, _, _ := e.s.objects.Get(e.ctx, b.ID, k)
		vis, _ := rec.visible()
		if vis.Inl {
			continue
		}
		bl, err := e.s.liveBlocks(e.ctx, vis.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, h := range hashesOf(bl) {
			if !seen[h.String()] {
				seen[h.String()] = true
				want[h.String()]++
			}
		}
	}
	if got := e.blockFiles(); got != len(want) {
		t.Fatalf("%d block files on disk, live objects use %d", got, len(want))
	}
	for hs, n := range want {
		h, _ := block.ParseHash(hs)
		if rc, _ := e.s.blocks.RefCount(h); rc != n {
			t.Fatalf("block %s: refcount %d, %d versions use it", hs, rc, n)
		}
	}
}

// TestRepairDanglingRefs: references whose version is gone (what a crash
// inside freeVersion can leave) are dropped, so their blocks get collected.
func TestRepairDanglingRefs(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	m := e.put("b01", "k", randBytes(77, 2*testBlock))
	v, _, err := e.s.versions.Get(e.ctx, m.VersionID, "")
	if err != nil {
		t.Fatal(err)
	}
	e.put("b01", "k", []byte("small now")) // frees the old version properly
	hs := hashesOf(v.Blocks)
	unpin := e.s.blocks.Pin(hs...)
	for _, h := range hs {
		ref := table.Entry[lww[struct{}]]{PK: string(h[:]), SK: "ghost-version", Value: lww[struct{}]{TS: 1}}
		if _, err := e.s.blockRefs.Insert(e.ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	unpin()
	if e.gcAll() != 0 {
		t.Fatal("GC deleted referenced blocks")
	}
	if n, err := e.s.RepairVersions(e.ctx, time.Hour); err != nil || n != 2 {
		t.Fatalf("RepairVersions = %d, %v; want the 2 dangling references", n, err)
	}
	if n := e.gcAll(); n != 2 {
		t.Fatalf("GC after repair deleted %d blocks, want 2", n)
	}
}
