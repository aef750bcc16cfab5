package model

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/table"
)

const testBlock = 64 << 10

type testEnv struct {
	s    *Store
	cfg  Config
	ctx  context.Context
	t    testing.TB
	base time.Time
}

func newEnv(t testing.TB, mod ...func(*Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		MetadataDir: filepath.Join(dir, "meta"), DataDir: filepath.Join(dir, "data"),
		BlockSize: testBlock, NoFsync: true, GCDelay: time.Minute, InlineThreshold: 4096,
	}
	for _, m := range mod {
		m(&cfg)
	}
	e := &testEnv{cfg: cfg, ctx: context.Background(), t: t, base: time.Now()}
	e.open()
	t.Cleanup(func() {
		if e.s != nil {
			if n := e.s.blocks.Pinned(); n != 0 {
				t.Errorf("%d block hashes still pinned at the end of the test", n)
			}
			e.s.Close()
		}
	})
	return e
}

func (e *testEnv) open() {
	e.t.Helper()
	s, err := Open(e.ctx, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
}

func (e *testEnv) reopen() {
	e.t.Helper()
	if err := e.s.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.s = nil
	e.open()
}

func (e *testEnv) bucket(name string) Bucket {
	e.t.Helper()
	b, err := e.s.CreateBucket(e.ctx, "", name)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func sumsOf(data []byte) func() Sums {
	return func() Sums {
		m := md5.Sum(data)
		return Sums{MD5: m[:]}
	}
}

func (e *testEnv) put(bucket, key string, data []byte) ObjectMeta {
	e.t.Helper()
	m, err := e.s.PutObject(e.ctx, PutInput{Bucket: bucket, Key: key, Body: bytes.NewReader(data), Sums: sumsOf(data)})
	if err != nil {
		e.t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return m
}

func (e *testEnv) read(m ObjectMeta, off, n int64) ([]byte, error) {
	r, err := e.s.OpenObject(e.ctx, m, off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// readTo reads like net/http does: io.Copy into a writer that implements
// io.ReaderFrom (bytes.Buffer), which takes the sendfile-style path.
func (e *testEnv) readTo(m ObjectMeta, off, n int64) ([]byte, error) {
	r, err := e.s.OpenObject(e.ctx, m, off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, r)
	return buf.Bytes(), err
}

func (e *testEnv) get(bucket, key string) []byte {
	e.t.Helper()
	m, err := e.s.HeadObject(e.ctx, bucket, key)
	if err != nil {
		e.t.Fatalf("head %s/%s: %v", bucket, key, err)
	}
	b, err := e.read(m, 0, -1)
	if err != nil {
		e.t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b
}

// blockFiles counts block files on disk.
func (e *testEnv) blockFiles() int {
	e.t.Helper()
	n := 0
	filepath.WalkDir(e.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(d.Name(), ".tmp") {
			n++
		}
		return nil
	})
	return n
}

// gcAll runs the block GC as if GCDelay had passed.
func (e *testEnv) gcAll() int {
	e.t.Helper()
	n, err := e.s.RunGC(e.ctx, time.Now().Add(e.cfg.GCDelay+time.Second))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func md5hex(b []byte) string {
	m := md5.Sum(b)
	return hex.EncodeToString(m[:])
}

type contextT = context.Context
type tableEntryObj = table.Entry[objectRec]
