package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// Benchmarks run with durable writes (fsync on) and zstd level 1, as the
// daemon does, 16 goroutines in parallel (the target's client count).
// go test -run - -bench . -benchtime 5s ./daemon/model
func benchEnv(b *testing.B) *testEnv {
	return newEnv(b, func(c *Config) {
		c.NoFsync, c.CompressionLevel, c.BlockSize = false, 1, 1<<20
	})
}

// BenchmarkPutObject: "cold" is a fresh store (most blocks also create their
// second-level shard directory, one more fsync), "warm" a store whose 65,536
// shard directories already exist, as after its first ~100k blocks.
func BenchmarkPutObject(b *testing.B) {
	for _, tc := range []struct {
		size int
		warm bool
	}{{4 << 10, false}, {1 << 20, false}, {1 << 20, true}} {
		size := tc.size
		name := fmt.Sprintf("%dKiB", size>>10)
		if size > 4<<10 {
			name += map[bool]string{false: "/cold", true: "/warm"}[tc.warm]
		}
		b.Run(name, func(b *testing.B) {
			e := benchEnv(b)
			e.bucket("bench")
			if tc.warm {
				for i := range 1 << 16 {
					if err := os.MkdirAll(filepath.Join(e.cfg.DataDir, fmt.Sprintf("%02x/%02x", i>>8, i&0xff)), 0o755); err != nil {
						b.Fatal(err)
					}
				}
				syscall.Sync() // do not time the flush of 65,536 new directories
			}
			var seq atomic.Uint64
			base := randBytes(1, size)
			b.SetBytes(int64(size))
			b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				data := make([]byte, size)
				for pb.Next() {
					i := seq.Add(1)
					copy(data, base)
					binary.LittleEndian.PutUint64(data, i) // distinct content: no dedup
					if _, err := e.s.PutObject(e.ctx, PutInput{Bucket: "bench", Key: fmt.Sprintf("k%d", i),
						Body: bytes.NewReader(data), Sums: sumsOf(data)}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(peakRSSMiB(), "peakRSS-MiB")
		})
	}
}

func BenchmarkOpenObject(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := benchEnv(b)
			e.bucket("bench")
			const n = 64
			metas := make([]ObjectMeta, n)
			for i := range metas {
				metas[i] = e.put("bench", fmt.Sprintf("k%d", i), randBytes(uint64(i), size))
			}
			var seq atomic.Uint64
			b.SetBytes(int64(size))
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m := metas[seq.Add(1)%n]
					// Like a GET: resolve the key, then stream the version.
					m, err := e.s.HeadObject(e.ctx, "bench", m.Key)
					if err != nil {
						b.Error(err)
						return
					}
					r, err := e.s.OpenObject(e.ctx, m, 0, -1)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := io.Copy(io.Discard, r); err != nil {
						b.Error(err)
					}
					r.Close()
				}
			})
		})
	}
}

// peakRSSMiB is the process's peak resident set (VmHWM), in MiB.
func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
