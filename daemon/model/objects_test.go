package model

import (
	"bytes"
	"errors"
	"fmt"

	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/daemon/block"
)

func TestPutGetSizes(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	cases := []struct {
		name   string
		size   int
		blocks int
	}{
		{"empty", 0, 0},
		{"one byte", 1, 0},
		{"inline limit", 4096, 0},
		{"just above inline", 4097, 1},
		{"one block", testBlock, 1},
		{"block plus one", testBlock + 1, 2},
		{"several blocks", 3*testBlock + 17, 4},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := randBytes(uint64(100+i), tc.size)
			key := "k/" + tc.name
			before := e.blockFiles()
			m := e.put("b01", key, data)
			if m.Size != int64(tc.size) || m.ETag != md5hex(data) || m.Bucket != "b01" || m.Key != key {
				t.Fatalf("meta = %+v", m)
			}
			if got := e.blockFiles() - before; got != tc.blocks {
				t.Fatalf("%d new block files, want %d", got, tc.blocks)
			}
			if got := e.get("b01", key); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, differ", len(got))
			}
			// Ranges: every boundary-crossing combination.
			for _, r := range [][2]int64{{0, 0}, {0, 1}, {1, -1}, {int64(tc.size) / 2, int64(tc.size) / 3}, {int64(tc.size), 0}} {
				if r[0] > int64(tc.size) {
					continue
				}
				want := data[r[0]:]
				if r[1] >= 0 {
					if r[0]+r[1] > int64(tc.size) {
						continue
					}
					want = data[r[0] : r[0]+r[1]]
				}
				got, err := e.read(m, r[0], r[1])
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("range %v: %d bytes, %v", r, len(got), err)
				}
			}
			if _, err := e.read(m, int64(tc.size), 1); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("range past end: %v", err)
			}
		})
	}
}

func TestReadPaths(t *testing.T) {
	for _, level := range []int{0, 1} {
		t.Run(fmt.Sprintf("zstd%d", level), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.CompressionLevel = level })
			e.bucket("b01")
			data := randBytes(42, 3*testBlock+100)
			copy(data[testBlock:], bytes.Repeat([]byte("z"), testBlock)) // one compressible block
			m := e.put("b01", "k", data)
			for _, r := range [][2]int64{{0, -1}, {1, testBlock}, {testBlock - 3, 7}, {2*testBlock + 5, testBlock + 95}, {int64(len(data)), 0}} {
				end := int64(len(data))
				if r[1] >= 0 {
					end = r[0] + r[1]
				}
				a, err := e.read(m, r[0], r[1])
				if err != nil || !bytes.Equal(a, data[r[0]:end]) {
					t.Fatalf("Read path, range %v: %v", r, err)
				}
				b, err := e.readTo(m, r[0], r[1])
				if err != nil || !bytes.Equal(b, data[r[0]:end]) {
					t.Fatalf("WriteTo path, range %v: %d bytes, %v", r, len(b), err)
				}
			}
		})
	}
}

func TestObjectValidation(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	cases := []struct {
		name, bucket, key string
		want              error
	}{
		{"no bucket", "nope-b", "k", ErrNoSuchBucket},
		{"invalid bucket", "X", "k", ErrNoSuchBucket},
		{"empty key", "b01", "", ErrInvalidArgument},
		{"key too long", "b01", strings.Repeat("k", 1025), ErrKeyTooLong},
		{"max key", "b01", strings.Repeat("k", 1024), nil},
		{"nul in key", "b01", "a\x00b", ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.PutObject(e.ctx, PutInput{Bucket: tc.bucket, Key: tc.key, Body: strings.NewReader("x")})
			if !errors.Is(err, tc.want) {
				t.Fatalf("PutObject err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.s.HeadObject(e.ctx, "b01", "absent"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("head absent: %v", err)
	}
	if err := e.s.DeleteObject(e.ctx, "b01", "absent"); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
	if err := e.s.DeleteObject(e.ctx, "nope-b", "absent"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("delete in absent bucket: %v", err)
	}
}

func TestOverwriteFreesOldBlocksAfterGC(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	old := e.put("b01", "k", randBytes(1, 2*testBlock))
	newData := randBytes(2, 2*testBlock)
	e.put("b01", "k", newData)
	if n := e.blockFiles(); n != 4 {
		t.Fatalf("%d block files before GC, want 4", n)
	}
	if _, err := e.read(old, 0, -1); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("old version still readable: %v", err)
	}
	if n, _ := e.s.RunGC(e.ctx, e.base); n != 0 {
		t.Fatalf("GC deleted %d blocks before GCDelay", n)
	}
	st, _ := e.s.Status(e.ctx)
	if st.PendingGC != 2 || st.Blocks != 4 || st.Objects != 1 || st.Bytes != 2*testBlock {
		t.Fatalf("status before GC: %+v", st)
	}
	if n := e.gcAll(); n != 2 {
		t.Fatalf("GC deleted %d, want 2", n)
	}
	if n := e.blockFiles(); n != 2 {
		t.Fatalf("%d block files after GC, want 2", n)
	}
	if got := e.get("b01", "k"); !bytes.Equal(got, newData) {
		t.Fatal("new data damaged by GC")
	}
}

func TestCopySharesBlocks(t *testing.T) {
	e := newEnv(t)
	e.bucket("src")
	e.bucket("dst")
	data := randBytes(3, 3*testBlock)
	src := e.put("src", "a", data)
	files := e.blockFiles()
	ct := "text/plain"
	cases := []struct {
		name    string
		headers *Headers
		wantCT  string
	}{
		{"copy headers", nil, ""},
		{"replace headers", &Headers{ContentType: ct}, ct},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("copy%d", i)
			m, err := e.s.CopyObject(e.ctx, CopyInput{Src: src, DstBucket: "dst", DstKey: key, Headers: tc.headers})
			if err != nil {
				t.Fatal(err)
			}
			if m.ETag != src.ETag || m.Size != src.Size || m.VersionID == src.VersionID || m.Headers.ContentType != tc.wantCT {
				t.Fatalf("copy meta %+v", m)
			}
			if e.blockFiles() != files {
				t.Fatal("copy wrote block files")
			}
		})
	}
	h := block.Sum(data[:testBlock])
	if rc, _ := e.s.blocks.RefCount(h); rc != 3 {
		t.Fatalf("refcount after 2 copies = %d, want 3", rc)
	}
	if err := e.s.DeleteObject(e.ctx, "src", "a"); err != nil {
		t.Fatal(err)
	}
	if n := e.gcAll(); n != 0 {
		t.Fatalf("GC deleted %d shared blocks", n)
	}
	if got := e.get("dst", "copy1"); !bytes.Equal(got, data) {
		t.Fatal("copy unreadable after source deleted")
	}
	if _, err := e.s.CopyObject(e.ctx, CopyInput{Src: src, DstBucket: "dst", DstKey: "x"}); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("copy of a deleted source: %v", err)
	}
	// Inline objects copy too.
	small := e.put("src", "small", []byte("tiny"))
	if _, err := e.s.CopyObject(e.ctx, CopyInput{Src: small, DstBucket: "dst", DstKey: "tiny"}); err != nil {
		t.Fatal(err)
	}
	if got := e.get("dst", "tiny"); string(got) != "tiny" {
		t.Fatalf("inline copy = %q", got)
	}
}

func TestDedup(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	data := randBytes(4, 2*testBlock)
	e.put("b01", "one", data)
	e.put("b01", "two", data)
	// Same block twice inside one object.
	twice := append(append([]byte{}, data[:testBlock]...), data[:testBlock]...)
	e.put("b01", "three", twice)
	if n := e.blockFiles(); n != 2 {
		t.Fatalf("%d block files for deduplicated data, want 2", n)
	}
	if err := e.s.DeleteObject(e.ctx, "b01", "one"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteObject(e.ctx, "b01", "two"); err != nil {
		t.Fatal(err)
	}
	if n := e.gcAll(); n != 1 {
		t.Fatalf("GC deleted %d, want 1 (the block only one/two used)", n)
	}
	if got := e.get("b01", "three"); !bytes.Equal(got, twice) {
		t.Fatal("three damaged")
	}
}

func TestCorruptBlockDetected(t *testing.T) {
	for _, verify := range []bool{false, true} {
		t.Run(fmt.Sprintf("verifyHash=%v", verify), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.VerifyHash = verify })
			e.bucket("b01")
			m := e.put("b01", "k", randBytes(5, testBlock))
			var path string
			filepath.WalkDir(e.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					path = p
				}
				return nil
			})
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)/2] ^= 0x40
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := e.read(m, 0, -1); !errors.Is(err, block.ErrCorrupt) {
				t.Fatalf("read of corrupt block: %v", err)
			}
			if _, err := e.readTo(m, 10, 100); !errors.Is(err, block.ErrCorrupt) {
				t.Fatalf("file-serving read of corrupt block: %v", err)
			}
		})
	}
}

func TestConditionalWrites(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	first := e.put("b01", "k", randBytes(6, testBlock))
	cases := []struct {
		name string
		key  string
		cond WriteConditions
		want error
	}{
		{"if-none-match on existing", "k", WriteConditions{IfNoneMatchStar: true}, ErrPreconditionFailed},
		{"if-none-match on absent", "new", WriteConditions{IfNoneMatchStar: true}, nil},
		{"if-match wrong", "k", WriteConditions{IfMatch: "0123"}, ErrPreconditionFailed},
		{"if-match on absent", "absent", WriteConditions{IfMatch: first.ETag}, ErrNoSuchKey},
		{"if-match star on absent", "absent", WriteConditions{IfMatch: "*"}, ErrNoSuchKey},
		{"if-match right, quoted", "k", WriteConditions{IfMatch: `"` + first.ETag + `"`}, nil},
		{"if-match star on existing", "k", WriteConditions{IfMatch: "*"}, nil},
		{"if-none-match etag differs", "k", WriteConditions{IfNoneMatch: "ABCORZ"}, nil},
		{"if-none-match etag on absent", "absent2", WriteConditions{IfNoneMatch: "ABCORZ"}, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := randBytes(uint64(60+i), testBlock+5)
			_, err := e.s.PutObject(e.ctx, PutInput{Bucket: "b01", Key: tc.key, Body: bytes.NewReader(data), Sums: sumsOf(data), Cond: tc.cond})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// Refused writes leave nothing behind: after GC only the live objects' blocks remain.
	e.gcAll()
	if n, _ := e.s.ScanOrphans(e.ctx); n != 0 {
		t.Fatalf("orphan scan found %d files", n)
	}
	if n := e.blockFiles(); n != 6 { // "new", "absent2" and "k": 2 blocks each
		t.Fatalf("%d block files, want 6", n)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestBodyErrorLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	for _, size := range []int{10, 3 * testBlock} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			_, err := e.s.PutObject(e.ctx, PutInput{Bucket: "b01", Key: "k",
				Body: &failingReader{randBytes(7, size), fmt.Errorf("verify: %w", ErrBadDigest)}})
			if !errors.Is(err, ErrBadDigest) {
				t.Fatalf("err = %v, want ErrBadDigest", err)
			}
			if _, err := e.s.HeadObject(e.ctx, "b01", "k"); !errors.Is(err, ErrNoSuchKey) {
				t.Fatalf("failed put visible: %v", err)
			}
			if n := e.blockFiles(); n != 0 {
				t.Fatalf("%d block files left by a failed put", n)
			}
		})
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CompressionLevel = 1 })
	e.bucket("b01")
	k, _ := e.s.CreateKey(e.ctx, "k")
	compressible := bytes.Repeat([]byte("entrepot "), 3*testBlock/9)
	e.put("b01", "text", compressible)
	e.put("b01", "overwritten", randBytes(8, testBlock))
	e.put("b01", "overwritten", randBytes(9, testBlock))
	u, _ := e.s.CreateMultipartUpload(e.ctx, "b01", "mp", Headers{}, "")
	e.reopen()
	if got := e.get("b01", "text"); !bytes.Equal(got, compressible) {
		t.Fatal("compressed object changed across reopen")
	}
	if _, err := e.s.GetKey(e.ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.GetUpload(e.ctx, "b01", "mp", u.UploadID); err != nil {
		t.Fatal(err)
	}
	// The pending deletion of the overwritten block survived the restart.
	if n := e.gcAll(); n != 1 {
		t.Fatalf("GC after reopen deleted %d, want 1", n)
	}
	zst := 0
	filepath.WalkDir(e.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".zst") {
			zst++
		}
		return nil
	})
	if zst == 0 {
		t.Fatal("compressible data stored uncompressed")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	e := newEnv(t)
	e.s.Close()
	e.s = nil
	// Simulate a newer binary having written the schema version.
	writeSchema(t, filepath.Join(e.cfg.MetadataDir, "db"), 99)
	if _, err := Open(e.ctx, e.cfg); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

func TestOrphanBlocksRemoved(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	e.put("b01", "live", randBytes(10, testBlock))
	// A block written but never referenced (as after a crash before commit).
	h, written, err := e.s.blocks.Write(e.ctx, randBytes(11, 1000))
	if err != nil || !written {
		t.Fatal(written, err)
	}
	if n, _ := e.s.ScanOrphans(e.ctx); n != 0 {
		t.Fatalf("pinned block removed (%d)", n)
	}
	e.s.blocks.Unpin(h)
	os.WriteFile(filepath.Join(e.cfg.DataDir, "stray.tmp"), nil, 0o644) // not a block name: left alone
	if n, _ := e.s.ScanOrphans(e.ctx); n != 1 {
		t.Fatalf("orphan scan removed %d files, want 1", n)
	}
	if got := e.get("b01", "live"); len(got) != testBlock {
		t.Fatal("live object damaged by orphan scan")
	}
}
