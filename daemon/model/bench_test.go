package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
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

func BenchmarkPutObject(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := benchEnv(b)
			e.bucket("bench")
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
