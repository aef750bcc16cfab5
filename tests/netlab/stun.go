package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// STUN (RFC 5389) constants used by the lab's responder.
const (
	stunHeaderLen        = 20
	stunMagicCookie      = 0x2112A442
	stunBindingRequest   = 0x0001
	stunBindingResponse  = 0x0101
	stunAttrMapped       = 0x0001
	stunAttrXORMapped    = 0x0020
	stunFamilyIPv4       = 0x01
	stunMaxRequestLength = 1 << 12
)

var errNotSTUN = errors.New("not a STUN binding request")

// parseSTUNRequest checks a Binding request and returns its transaction
// id (12 bytes). Attributes (e.g. CHANGE-REQUEST) are ignored: the lab
// answers everything from one address, which miniupnpd 2.3.1 reads as an
// unrestricted 1:1 NAT and so accepts the router's 10.77.0.x address as
// its public one.
func parseSTUNRequest(b []byte) ([12]byte, error) {
	var id [12]byte
	if len(b) < stunHeaderLen || len(b) > stunMaxRequestLength {
		return id, fmt.Errorf("%w: length %d", errNotSTUN, len(b))
	}
	if binary.BigEndian.Uint16(b[0:2]) != stunBindingRequest {
		return id, fmt.Errorf("%w: type %#04x", errNotSTUN, binary.BigEndian.Uint16(b[0:2]))
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 || stunHeaderLen+n != len(b) {
		return id, fmt.Errorf("%w: body length %d for %d bytes", errNotSTUN, n, len(b))
	}
	if binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return id, fmt.Errorf("%w: magic cookie", errNotSTUN)
	}
	copy(id[:], b[8:20])
	return id, nil
}

// stunResponse builds a Binding success response with MAPPED-ADDRESS and
// XOR-MAPPED-ADDRESS for an IPv4 peer.
func stunResponse(id [12]byte, peer netip.AddrPort) []byte {
	b := make([]byte, stunHeaderLen+2*12)
	binary.BigEndian.PutUint16(b[0:2], stunBindingResponse)
	binary.BigEndian.PutUint16(b[2:4], 24)
	binary.BigEndian.PutUint32(b[4:8], stunMagicCookie)
	copy(b[8:20], id[:])
	ip := peer.Addr().Unmap().As4()
	attr := func(off int, typ uint16, port uint16, a [4]byte) {
		binary.BigEndian.PutUint16(b[off:], typ)
		binary.BigEndian.PutUint16(b[off+2:], 8)
		b[off+4] = 0
		b[off+5] = stunFamilyIPv4
		binary.BigEndian.PutUint16(b[off+6:], port)
		copy(b[off+8:off+12], a[:])
	}
	attr(20, stunAttrMapped, peer.Port(), ip)
	var x [4]byte
	binary.BigEndian.PutUint32(x[:], binary.BigEndian.Uint32(ip[:])^stunMagicCookie)
	attr(32, stunAttrXORMapped, peer.Port()^uint16(stunMagicCookie>>16), x)
	return b
}

type stunServer struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
}

func startSTUN(h *Host, addr netip.AddrPort) (*stunServer, error) {
	var conn *net.UDPConn
	err := h.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start STUN responder: %w", err)
	}
	s := &stunServer{conn: conn}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, peer, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			id, err := parseSTUNRequest(buf[:n])
			if err != nil {
				continue
			}
			_, _ = conn.WriteToUDPAddrPort(stunResponse(id, peer), peer)
		}
	}()
	return s, nil
}

func (s *stunServer) close() {
	s.conn.Close()
	s.wg.Wait()
}
