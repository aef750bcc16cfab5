package block

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/db"
)

// BenchmarkWrite measures durable 1 MiB block writes from 16 goroutines.
func BenchmarkWrite(b *testing.B) {
	for _, level := range []int{0, 1} {
		b.Run(fmt.Sprintf("zstd%d", level), func(b *testing.B) {
			d, err := db.Open(b.TempDir(), db.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			s, err := Open(Config{Dir: b.TempDir(), DB: d, CompressionLevel: level, GCDelay: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			base := random(1<<20, 1)
			var seq atomic.Uint64
			b.SetBytes(1 << 20)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				data := make([]byte, len(base))
				for pb.Next() {
					copy(data, base)
					binary.LittleEndian.PutUint64(data, seq.Add(1))
					h, _, err := s.Write(context.Background(), data)
					if err != nil {
						b.Error(err)
						return
					}
					s.Unpin(h)
				}
			})
		})
	}
}

// BenchmarkRead measures 1 MiB block reads (page cache) with the default
// CRC32C check and with full SHA-256 verification.
func BenchmarkRead(b *testing.B) {
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprintf("verifyHash=%v", verify), func(b *testing.B) {
			d, _ := db.Open(b.TempDir(), db.Options{NoSync: true})
			defer d.Close()
			s, _ := Open(Config{Dir: b.TempDir(), DB: d, VerifyHash: verify, NoFsync: true})
			defer s.Close()
			var hs []Hash
			for i := range 32 {
				h, _, err := s.Write(context.Background(), random(1<<20, uint64(i)))
				if err != nil {
					b.Fatal(err)
				}
				hs = append(hs, h)
			}
			var seq atomic.Uint64
			b.SetBytes(1 << 20)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					buf, err := s.Read(context.Background(), hs[seq.Add(1)%uint64(len(hs))])
					if err != nil {
						b.Error(err)
						return
					}
					s.PutBuffer(buf)
				}
			})
		})
	}
}
