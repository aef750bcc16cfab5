package netlab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// NAT-PMP (RFC 6886) lets the lab's tests talk to miniupnpd without
// natpmpc. Port 5351 on the gateway.
const natpmpPort = 5351

// ErrNATPMP reports a malformed or mismatched NAT-PMP response.
var ErrNATPMP = errors.New("netlab: bad NAT-PMP response")

// NATPMPResponse is a decoded NAT-PMP answer. Result 0 is success; 3 is
// "network failure" (what miniupnpd answers without a usable public IP,
// i.e. under double NAT).
type NATPMPResponse struct {
	Op           byte
	Result       uint16
	Epoch        uint32
	ExternalIP   netip.Addr // external-address answers only
	InternalPort uint16     // mapping answers only
	ExternalPort uint16
	Lifetime     uint32
}

// parseNATPMP decodes a NAT-PMP response to op (0 address, 1 UDP, 2 TCP).
func parseNATPMP(b []byte, op byte) (NATPMPResponse, error) {
	var r NATPMPResponse
	if len(b) < 8 {
		return r, fmt.Errorf("%w: %d bytes", ErrNATPMP, len(b))
	}
	if b[0] != 0 || b[1] != 128+op {
		return r, fmt.Errorf("%w: version %d op %d", ErrNATPMP, b[0], b[1])
	}
	r.Op = op
	r.Result = binary.BigEndian.Uint16(b[2:4])
	r.Epoch = binary.BigEndian.Uint32(b[4:8])
	switch {
	case op == 0 && len(b) >= 12:
		r.ExternalIP = netip.AddrFrom4([4]byte(b[8:12]))
	case op != 0 && len(b) >= 16:
		r.InternalPort = binary.BigEndian.Uint16(b[8:10])
		r.ExternalPort = binary.BigEndian.Uint16(b[10:12])
		r.Lifetime = binary.BigEndian.Uint32(b[12:16])
	case r.Result == 0:
		return r, fmt.Errorf("%w: short success (%d bytes)", ErrNATPMP, len(b))
	}
	return r, nil
}

// NATPMPExternalAddress asks gw for its external address from inside h.
func NATPMPExternalAddress(ctx context.Context, h *Host, gw netip.Addr) (NATPMPResponse, error) {
	return natpmpCall(ctx, h, gw, []byte{0, 0}, 0)
}

// NATPMPMap asks gw to map proto ("tcp" or "udp") internal port to
// external port (0: any) for lifetime seconds (0 deletes).
func NATPMPMap(ctx context.Context, h *Host, gw netip.Addr, proto string, internal, external uint16, lifetime uint32) (NATPMPResponse, error) {
	var op byte
	switch proto {
	case "udp":
		op = 1
	case "tcp":
		op = 2
	default:
		return NATPMPResponse{}, fmt.Errorf("%w: protocol %q", ErrConfig, proto)
	}
	req := make([]byte, 12)
	req[1] = op
	binary.BigEndian.PutUint16(req[4:6], internal)
	binary.BigEndian.PutUint16(req[6:8], external)
	binary.BigEndian.PutUint32(req[8:12], lifetime)
	return natpmpCall(ctx, h, gw, req, op)
}

func natpmpCall(ctx context.Context, h *Host, gw netip.Addr, req []byte, op byte) (NATPMPResponse, error) {
	var conn net.Conn
	if err := h.Do(func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, natpmpPort)))
		return err
	}); err != nil {
		return NATPMPResponse{}, fmt.Errorf("nat-pmp dial %s: %w", gw, err)
	}
	defer conn.Close()
	buf := make([]byte, 64)
	wait := 250 * time.Millisecond
	for try := 0; try < 4; try++ {
		if _, err := conn.Write(req); err != nil {
			return NATPMPResponse{}, fmt.Errorf("nat-pmp send: %w", err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err == nil {
			return parseNATPMP(buf[:n], op)
		}
		if ctx.Err() != nil {
			return NATPMPResponse{}, fmt.Errorf("nat-pmp %s: %w", gw, ctx.Err())
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return NATPMPResponse{}, fmt.Errorf("nat-pmp receive: %w", err)
		}
		wait *= 2
	}
	return NATPMPResponse{}, fmt.Errorf("nat-pmp %s: no answer", gw)
}
