package harness

import (
	"fmt"
	"net"
)

// FreeAddrs returns n distinct "127.0.0.1:port" addresses that were free a
// moment ago. All listeners are held open until every port is chosen, so the
// n ports differ; another process may still take one before it is used,
// which Node.Start detects (the node never becomes healthy) and callers may
// retry with new ports.
func FreeAddrs(n int) ([]string, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen on a free loopback port: %w", err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
