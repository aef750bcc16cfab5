package natpunchtest

import (
	"net"
	"sort"
	"sync"
)

// serveUDP answers every datagram conn receives (at most bufSize bytes) with
// handle's reply to its sender, sending nothing when handle returns nil,
// until conn is closed; then it marks wg done.
func serveUDP(wg *sync.WaitGroup, conn *net.UDPConn, bufSize int, handle func([]byte) []byte) {
	defer wg.Done()
	buf := make([]byte, bufSize)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if resp := handle(buf[:n]); resp != nil {
			_, _ = conn.WriteToUDPAddrPort(resp, from)
		}
	}
}

// withLock runs f holding mu: the fakes' setters and test hooks share it.
func withLock(mu *sync.Mutex, f func()) {
	mu.Lock()
	defer mu.Unlock()
	f()
}

// locked returns f's result, computed holding mu.
func locked[T any](mu *sync.Mutex, f func() T) T {
	mu.Lock()
	defer mu.Unlock()
	return f()
}

// sortedValues returns a new slice of m's values sorted by less.
func sortedValues[K comparable, V any](m map[K]V, less func(a, b V) bool) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}
