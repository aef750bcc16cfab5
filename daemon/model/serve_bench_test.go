package model

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/entrepot/entrepot/daemon/block"
)

// BenchmarkServeTCP serves 1 MiB objects over loopback TCP, 16 connections:
// "reader" is OpenObject's reader into a *net.TCPConn (CRC check, then
// sendfile), "reader-buffered" the same reader forced through its buffer
// (read, CRC check, write), "sendfile-unchecked" raw sendfile of the block
// file with no check at all (the upper bound).
func BenchmarkServeTCP(b *testing.B) {
	const size = 1 << 20
	e := newEnv(b, func(c *Config) { c.BlockSize = size })
	e.bucket("bench")
	const n = 32
	metas := make([]ObjectMeta, n)
	paths := make([]string, n)
	for i := range metas {
		data := randBytes(uint64(i), size)
		metas[i] = e.put("bench", fmt.Sprintf("k%d", i), data)
		h := block.Sum(data).String()
		paths[i] = filepath.Join(e.cfg.DataDir, h[:2], h[2:4], h)
	}
	serve := map[string]func(conn net.Conn, i int) error{
		"reader": func(conn net.Conn, i int) error {
			r, err := e.s.OpenObject(e.ctx, metas[i], 0, -1)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = io.Copy(conn, r)
			return err
		},
		"sendfile-unchecked": func(conn net.Conn, i int) error {
			f, err := os.Open(paths[i])
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := f.Seek(8, io.SeekStart); err != nil {
				return err
			}
			_, err = io.Copy(conn, io.LimitReader(f, size)) // *net.TCPConn.ReadFrom -> sendfile
			return err
		},
	}
	serve["reader-buffered"] = func(conn net.Conn, i int) error {
		r, err := e.s.OpenObject(e.ctx, metas[i], 0, -1)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(struct{ io.Writer }{conn}, r) // hides io.ReaderFrom
		return err
	}
	for _, name := range []string{"reader", "reader-buffered", "sendfile-unchecked"} {
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						var req [1]byte
						for {
							if _, err := io.ReadFull(c, req[:]); err != nil {
								return
							}
							if err := serve[name](c, int(req[0])%n); err != nil {
								return
							}
						}
					}()
				}
			}()
			var seq atomic.Uint64
			b.SetBytes(size)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				buf := make([]byte, 256<<10)
				for pb.Next() {
					if _, err := c.Write([]byte{byte(seq.Add(1))}); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.CopyBuffer(io.Discard, io.LimitReader(c, size), buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
