package netlab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// UDPEcho is a UDP echo server started by StartUDPEcho.
type UDPEcho struct {
	conn net.PacketConn
	done chan struct{}
}

// StartUDPEcho runs a UDP echo server inside h on port (all addresses),
// with a plain read/write loop. Close stops it.
func StartUDPEcho(h *Host, port uint16) (*UDPEcho, error) {
	c, err := h.ListenPacket("udp4", fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, err
	}
	e := &UDPEcho{conn: c, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		buf := make([]byte, 2048)
		for {
			n, peer, err := c.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			_, _ = c.WriteTo(buf[:n], peer)
		}
	}()
	return e, nil
}

// Close stops the server.
func (e *UDPEcho) Close() error {
	err := e.conn.Close()
	<-e.done
	return err
}

// UDPRTT sends count sequential probes from h to a UDP echo server at to
// and returns the round-trip times of the answered ones (a probe times
// out after timeout). Arrival is the kernel's receive timestamp. Probes
// go one at a time, so jitter never reorders them.
func UDPRTT(ctx context.Context, h *Host, to netip.AddrPort, count int, timeout time.Duration) ([]time.Duration, error) {
	c, err := h.DialContext(ctx, "udp4", to.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	conn := c.(*net.UDPConn)
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		})
	}
	var rtts []time.Duration
	buf := make([]byte, 64)
	oob := make([]byte, 128)
	for i := 0; i < count && ctx.Err() == nil; i++ {
		msg := fmt.Appendf(nil, "netlab-probe-%d", i)
		start := time.Now()
		if _, err := conn.Write(msg); err != nil {
			return rtts, fmt.Errorf("probe %d: %w", i, err)
		}
		_ = conn.SetReadDeadline(start.Add(timeout))
		for {
			n, oobn, _, _, err := conn.ReadMsgUDP(buf, oob)
			if err != nil {
				break // lost: go on with the next probe
			}
			if string(buf[:n]) == string(msg) {
				rtts = append(rtts, rxTime(oob[:oobn]).Sub(start))
				break
			}
		}
	}
	return rtts, ctx.Err()
}

// Summary describes a sample of durations.
type Summary struct {
	N                   int
	Min, P50, Mean, Max time.Duration
	P90, StdDev         time.Duration
}

// Summarize computes min, median, p90, mean, max and standard deviation.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += float64(x)
	}
	mean := sum / float64(len(s))
	var sq float64
	for _, x := range s {
		sq += (float64(x) - mean) * (float64(x) - mean)
	}
	return Summary{
		N: len(s), Min: s[0], Max: s[len(s)-1],
		P50: s[len(s)/2], P90: s[len(s)*9/10],
		Mean:   time.Duration(mean),
		StdDev: time.Duration(math.Sqrt(sq / float64(len(s)))),
	}
}
