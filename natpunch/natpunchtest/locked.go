package natpunchtest

import (
	"sort"
	"sync"
)

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
