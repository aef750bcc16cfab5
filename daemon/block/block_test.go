package block

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/entrepot/entrepot/daemon/db"
)

func newStore(t testing.TB, level int) (*Store, *db.DB) {
	t.Helper()
	d, err := db.Open(t.TempDir(), db.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{Dir: t.TempDir(), DB: d, BlockSize: 1 << 16, CompressionLevel: level, GCDelay: time.Minute, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); d.Close() })
	return s, d
}

func random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func files(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestWriteReadDedup(t *testing.T) {
	cases := []struct {
		name    string
		level   int
		data    []byte
		wantZst bool
	}{
		{"plain random", 0, random(1000, 1), false},
		{"random with zstd on", 1, random(1<<16, 2), false},
		{"compressible", 1, bytes.Repeat([]byte("abc"), 20000), true},
		{"compressible, zstd off", 0, bytes.Repeat([]byte("abc"), 20000), false},
		{"empty", 1, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, tc.level)
			ctx := context.Background()
			h, written, err := s.Write(ctx, tc.data)
			if err != nil || !written {
				t.Fatal(written, err)
			}
			s.Unpin(h)
			if h != Sum(tc.data) {
				t.Fatal("hash is not SHA-256 of the data")
			}
			h2, written, err := s.Write(ctx, tc.data)
			if err != nil || written || h2 != h {
				t.Fatalf("second write: written=%v err=%v", written, err)
			}
			s.Unpin(h2)
			fs := files(t, s.cfg.Dir)
			if len(fs) != 1 {
				t.Fatalf("%d files, want 1", len(fs))
			}
			if got := strings.HasSuffix(fs[0], ".zst"); got != tc.wantZst {
				t.Fatalf("file %s: zst=%v want %v", fs[0], got, tc.wantZst)
			}
			want := filepath.Join(s.cfg.Dir, h.String()[:2], h.String()[2:4], h.String())
			if strings.TrimSuffix(fs[0], ".zst") != want {
				t.Fatalf("file at %s, want %s[.zst]", fs[0], want)
			}
			got, err := s.Read(ctx, h)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("read back: %d bytes, %v", len(got), err)
			}
			s.PutBuffer(got)
			if err := s.Verify(ctx, h); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCorruption(t *testing.T) {
	cases := []struct {
		name   string
		level  int
		data   []byte
		damage func([]byte) []byte
	}{
		{"bit flip plain", 0, random(5000, 3), func(b []byte) []byte { b[100] ^= 1; return b }},
		{"bit flip zstd", 1, bytes.Repeat([]byte("xyz"), 5000), func(b []byte) []byte { b[len(b)-3] ^= 1; return b }},
		{"truncated", 0, random(5000, 4), func(b []byte) []byte { return b[:len(b)-1] }},
		{"header only", 0, random(5000, 5), func(b []byte) []byte { return b[:4] }},
		{"bad magic", 0, random(5000, 6), func(b []byte) []byte { b[0] = 'X'; return b }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, tc.level)
			h, _, err := s.Write(context.Background(), tc.data)
			if err != nil {
				t.Fatal(err)
			}
			p := files(t, s.cfg.Dir)[0]
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, tc.damage(raw), 0o644)
			if _, err := s.Read(context.Background(), h); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read = %v, want ErrCorrupt", err)
			}
		})
	}
	s, _ := newStore(t, 0)
	if _, err := s.Read(context.Background(), Sum([]byte("absent"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent block: %v", err)
	}
}

func adjust(t *testing.T, s *Store, d *db.DB, h Hash, delta int, now time.Time) {
	t.Helper()
	b := d.NewBatch()
	if err := s.AdjustRef(b, h, delta, now); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(b, true); err != nil {
		t.Fatal(err)
	}
}

func TestRefcountGC(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_000_000, 0)
	cases := []struct {
		name        string
		steps       func(t *testing.T, s *Store, d *db.DB, h Hash)
		gcAt        time.Duration // after t0
		wantDeleted int
	}{
		{"referenced block stays", func(t *testing.T, s *Store, d *db.DB, h Hash) {
			adjust(t, s, d, h, 1, t0)
		}, time.Hour, 0},
		{"unreferenced before delay stays", func(t *testing.T, s *Store, d *db.DB, h Hash) {
			adjust(t, s, d, h, 1, t0)
			adjust(t, s, d, h, -1, t0)
		}, 59 * time.Second, 0},
		{"unreferenced after delay goes", func(t *testing.T, s *Store, d *db.DB, h Hash) {
			adjust(t, s, d, h, 1, t0)
			adjust(t, s, d, h, -1, t0)
		}, time.Minute, 1},
		{"re-referenced before delay stays", func(t *testing.T, s *Store, d *db.DB, h Hash) {
			adjust(t, s, d, h, 1, t0)
			adjust(t, s, d, h, -1, t0)
			adjust(t, s, d, h, 1, t0.Add(time.Second))
		}, time.Hour, 0},
		{"second zero restarts the delay", func(t *testing.T, s *Store, d *db.DB, h Hash) {
			adjust(t, s, d, h, 1, t0)
			adjust(t, s, d, h, -1, t0)
			adjust(t, s, d, h, 1, t0.Add(30*time.Second))
			adjust(t, s, d, h, -1, t0.Add(30*time.Second))
		}, 61 * time.Second, 0},
		{"pinned block stays", func(t *testing.T, s *Store, d *db.DB, h Hash) {
			adjust(t, s, d, h, 1, t0)
			adjust(t, s, d, h, -1, t0)
			s.Pin(h)
		}, time.Hour, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newStore(t, 0)
			h, _, err := s.Write(ctx, random(3000, 7))
			if err != nil {
				t.Fatal(err)
			}
			tc.steps(t, s, d, h)
			s.Unpin(h)
			n, err := s.RunGC(ctx, t0.Add(tc.gcAt))
			if err != nil || n != tc.wantDeleted {
				t.Fatalf("RunGC deleted %d (%v), want %d", n, err, tc.wantDeleted)
			}
			has, _ := s.Has(h)
			if has != (tc.wantDeleted == 0) {
				t.Fatalf("block present = %v after GC", has)
			}
		})
	}
}

func TestAbandonAndOrphans(t *testing.T) {
	s, d := newStore(t, 0)
	ctx := context.Background()
	h1, _, _ := s.Write(ctx, random(100, 8))
	s.Abandon(h1)
	if has, _ := s.Has(h1); has {
		t.Fatal("abandoned unreferenced block kept")
	}
	// Abandoning a block someone else references keeps it.
	h2, _, _ := s.Write(ctx, random(100, 9))
	adjust(t, s, d, h2, 1, time.Now())
	s.Write(ctx, random(100, 9))
	s.Abandon(h2)
	s.Abandon(h2)
	if has, _ := s.Has(h2); !has {
		t.Fatal("abandon deleted a referenced block")
	}
	h3, _, _ := s.Write(ctx, random(100, 10))
	s.Unpin(h3)
	os.WriteFile(filepath.Join(s.shardDir(h3), h3.String()+".tmp123"), []byte("partial"), 0o644)
	n, err := s.ScanOrphans(ctx)
	if err != nil || n != 2 {
		t.Fatalf("ScanOrphans removed %d (%v), want 2 (orphan + tmp)", n, err)
	}
	blocks, bytes, pending, err := s.Stats(ctx)
	if err != nil || blocks != 1 || bytes != 108 || pending != 0 {
		t.Fatalf("Stats = %d %d %d %v", blocks, bytes, pending, err)
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add(Sum(nil).String())
	f.Add("zz")
	f.Add(strings.Repeat("0", 64) + ".zst")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err == nil && h.String() != strings.ToLower(s) {
			t.Fatalf("round trip %q -> %q", s, h)
		}
		blockFileHash(s)
	})
}

func FuzzDecodeRefCount(f *testing.F) {
	f.Add(refCount{count: 3, size: 100, deadline: 0}.encode())
	f.Add(refCount{count: 0, size: 1 << 20, deadline: 1 << 60}.encode())
	f.Add([]byte{db.ValueVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRefCount(b)
		if err != nil {
			return
		}
		r2, err := decodeRefCount(r.encode())
		if err != nil || r2 != r {
			t.Fatalf("round trip %+v -> %+v %v", r, r2, err)
		}
	})
}

// BenchmarkHash is why blocks are named by SHA-256 (SHA-NI) rather than
// BLAKE2b-256, and why reads check CRC32C rather than re-hash.
func BenchmarkHash(b *testing.B) {
	data := random(1<<20, 1)
	b.Run("SHA-256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Sum(data)
		}
	})
	b.Run("BLAKE2b-256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			blake2b.Sum256(data)
		}
	})
	b.Run("CRC32C", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			crc32Checksum(data)
		}
	})
}
