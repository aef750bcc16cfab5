package natpunch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// PCP wire format, RFC 6887 §7 and §11.
const (
	pcpVersion        = 2
	pcpOpAnnounce     = 0
	pcpOpMap          = 1
	pcpResponseBit    = 0x80
	pcpHeaderLen      = 24
	pcpMapPayloadLen  = 36
	pcpMaxPacket      = 1100
	pcpResultSuccess  = 0
	pcpUnsuppVersion  = 1
	pcpNotAuthorized  = 2
	pcpMalformedReq   = 3
	pcpUnsuppOpcode   = 4
	pcpUnsuppOption   = 5
	pcpMalformedOpt   = 6
	pcpNetworkFailure = 7
	pcpNoResources    = 8
	pcpUnsuppProtocol = 9
	pcpUserExQuota    = 10
	pcpCannotProvide  = 11
	pcpAddrMismatch   = 12
	pcpExcessivePeers = 13
)

var errPCPMalformed = errors.New("malformed PCP packet")

func pcpResultText(code uint8) string {
	names := [...]string{"success", "unsupported version", "not authorized", "malformed request",
		"unsupported opcode", "unsupported option", "malformed option", "network failure",
		"no resources", "unsupported protocol", "user exceeded quota", "cannot provide external",
		"address mismatch", "excessive remote peers"}
	if int(code) < len(names) {
		return names[code]
	}
	return fmt.Sprintf("result %d", code)
}

// pcpMap is the MAP opcode payload (RFC 6887 §11.1), in requests and responses.
type pcpMap struct {
	Nonce        [12]byte
	Protocol     uint8
	InternalPort uint16
	ExternalPort uint16     // suggested in a request, assigned in a response
	ExternalIP   netip.Addr // suggested in a request (zero = none), assigned in a response
}

type pcpResponse struct {
	Opcode   uint8
	Result   uint8
	Lifetime uint32
	Epoch    uint32
	Map      pcpMap // valid when Opcode == pcpOpMap and the payload was present
}

// putPCPAddr writes a as a 16-byte address, IPv4 as IPv4-mapped IPv6.
func putPCPAddr(b []byte, a netip.Addr) {
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	if a.Is4() {
		a = netip.AddrFrom16(a.As16())
	}
	s := a.As16()
	copy(b, s[:])
}

func getPCPAddr(b []byte) netip.Addr {
	return netip.AddrFrom16([16]byte(b[:16])).Unmap()
}

func encodePCPHeader(b []byte, op uint8, lifetime uint32, client netip.Addr) {
	b[0] = pcpVersion
	b[1] = op & 0x7f
	binary.BigEndian.PutUint32(b[4:8], lifetime)
	putPCPAddr(b[8:24], client)
}

func encodePCPAnnounce(client netip.Addr) []byte {
	b := make([]byte, pcpHeaderLen)
	encodePCPHeader(b, pcpOpAnnounce, 0, client)
	return b
}

func encodePCPMapRequest(client netip.Addr, lifetime uint32, m pcpMap) []byte {
	b := make([]byte, pcpHeaderLen+pcpMapPayloadLen)
	encodePCPHeader(b, pcpOpMap, lifetime, client)
	p := b[pcpHeaderLen:]
	copy(p[0:12], m.Nonce[:])
	p[12] = m.Protocol
	binary.BigEndian.PutUint16(p[16:18], m.InternalPort)
	binary.BigEndian.PutUint16(p[18:20], m.ExternalPort)
	putPCPAddr(p[20:36], m.ExternalIP)
	return b
}

func decodePCPResponse(b []byte) (pcpResponse, error) {
	var r pcpResponse
	if len(b) < pcpHeaderLen || len(b) > pcpMaxPacket || len(b)%4 != 0 {
		return r, fmt.Errorf("decode PCP response: %d bytes: %w", len(b), errPCPMalformed)
	}
	if b[0] != pcpVersion {
		return r, fmt.Errorf("decode PCP response: version %d: %w", b[0], errPCPMalformed)
	}
	if b[1]&pcpResponseBit == 0 {
		return r, fmt.Errorf("decode PCP response: request bit: %w", errPCPMalformed)
	}
	r.Opcode = b[1] &^ pcpResponseBit
	r.Result = b[3]
	r.Lifetime = binary.BigEndian.Uint32(b[4:8])
	r.Epoch = binary.BigEndian.Uint32(b[8:12])
	rest := b[pcpHeaderLen:]
	if r.Opcode == pcpOpMap {
		if len(rest) < pcpMapPayloadLen {
			if r.Result != pcpResultSuccess {
				return r, nil // error responses may omit the payload
			}
			return r, fmt.Errorf("decode PCP MAP response: payload %d bytes: %w", len(rest), errPCPMalformed)
		}
		copy(r.Map.Nonce[:], rest[0:12])
		r.Map.Protocol = rest[12]
		r.Map.InternalPort = binary.BigEndian.Uint16(rest[16:18])
		r.Map.ExternalPort = binary.BigEndian.Uint16(rest[18:20])
		r.Map.ExternalIP = getPCPAddr(rest[20:36])
		rest = rest[pcpMapPayloadLen:]
	}
	// Options (RFC 6887 §7.3): code, reserved, 16-bit length, data padded to 4.
	for len(rest) > 0 {
		if len(rest) < 4 {
			return r, fmt.Errorf("decode PCP options: %w", errPCPMalformed)
		}
		n := int(binary.BigEndian.Uint16(rest[2:4]))
		padded := (n + 3) &^ 3
		if 4+padded > len(rest) {
			return r, fmt.Errorf("decode PCP option %d: length %d: %w", rest[0], n, errPCPMalformed)
		}
		rest = rest[4+padded:]
	}
	return r, nil
}
