package natpunch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"time"
)

// mapSpec is what a mapper needs to create or renew one mapping.
type mapSpec struct {
	Proto        Proto
	InternalIP   netip.Addr
	InternalPort uint16
	ExternalPort uint16 // wanted; never 0
	Lease        time.Duration
	Description  string
	Nonce        [12]byte // PCP mapping nonce, stable for the mapping's life
	AllowLow     bool     // allow external ports below 1024
	Seed         string   // seeds alternative external ports (node id)
}

// mapper is one router protocol on one gateway.
type mapper interface {
	method() Method
	// check reads the external address and reports a router reboot
	// (PMP/PCP epoch regression). It writes nothing.
	check(ctx context.Context) (ext netip.Addr, rebooted bool, err error)
	// add creates or renews a mapping; it returns the external address and
	// the granted lifetime (0 = permanent).
	add(ctx context.Context, s mapSpec) (netip.AddrPort, time.Duration, error)
	remove(ctx context.Context, s mapSpec, external uint16) error
	// verify reports whether the router still holds the mapping for us.
	verify(ctx context.Context, s mapSpec, external uint16) (bool, error)
	// identity describes the service for status output.
	identity() string
}

// RouterError is an error code returned by the router: a UPnP error code
// (e.g. 718, 725), a NAT-PMP result code or a PCP result code.
type RouterError struct {
	Method Method
	Code   int
	Text   string
}

func (e *RouterError) Error() string {
	return fmt.Sprintf("%s error %d: %s", e.Method, e.Code, e.Text)
}

// Is maps router codes to the package sentinels.
func (e *RouterError) Is(target error) bool {
	switch target {
	case ErrRefused:
		switch e.Method {
		case MethodUPnP:
			return e.Code == 606 || e.Code == 726 || e.Code == 727 || e.Code == 728
		case MethodNATPMP:
			return e.Code == pmpResultRefused
		case MethodPCP:
			return e.Code == pcpNotAuthorized
		}
	case ErrConflict:
		return e.Method == MethodUPnP && e.Code == 718
	case ErrDoubleNAT:
		return (e.Method == MethodNATPMP && e.Code == pmpResultNetFailure) ||
			(e.Method == MethodPCP && e.Code == pcpNetworkFailure)
	}
	return false
}

// errUnreachable marks transport failures (connection refused, timeout,
// garbled reply): the gateway must be rediscovered.
var errUnreachable = errors.New("router unreachable")

func unreachable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, errUnreachable, err)
}

// altPort returns the i-th alternative external port for a mapping, in
// [1024, 65535], stable for a given seed so a node keeps its ports across
// restarts.
func altPort(seed string, p Proto, internal uint16, i int) uint16 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s/%d/%d", seed, p, internal, i)
	return uint16(1024 + h.Sum64()%(65536-1024))
}

// udpExchange sends req to server and waits for a reply accepted by decode,
// retransmitting with the RFC 6886 schedule (250 ms, doubling) until ctx
// ends. An ICMP port unreachable ends it at once.
func udpExchange(ctx context.Context, server netip.AddrPort, req []byte, accept func([]byte) bool) ([]byte, error) {
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, unreachable("dial "+server.String(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, pcpMaxPacket+4)
	wait := 250 * time.Millisecond
	for attempt := 0; attempt < 9; attempt++ {
		if _, err := conn.Write(req); err != nil {
			return nil, unreachable("send to "+server.String(), err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, unreachable("set deadline", err)
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil, unreachable("no reply from "+server.String(), ctx.Err())
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // retransmit
				}
				return nil, unreachable("read from "+server.String(), err)
			}
			if accept(buf[:n]) {
				return append([]byte(nil), buf[:n]...), nil
			}
		}
		wait *= 2
	}
	return nil, unreachable("no reply from "+server.String(), context.DeadlineExceeded)
}
