package natpunch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// NAT-PMP wire format, RFC 6886 §3.
const (
	pmpVersion          = 0
	pmpOpExternalAddr   = 0
	pmpOpMapUDP         = 1
	pmpOpMapTCP         = 2
	pmpResponseBit      = 128
	pmpExternalRespLen  = 12
	pmpMapRequestLen    = 12
	pmpMapResponseLen   = 16
	pmpResultSuccess    = 0
	pmpResultUnsuppVer  = 1
	pmpResultRefused    = 2
	pmpResultNetFailure = 3
	pmpResultNoResource = 4
	pmpResultUnsuppOp   = 5
)

var errPMPMalformed = errors.New("malformed NAT-PMP packet")

// pmpResultText names a NAT-PMP result code (RFC 6886 §3.5).
func pmpResultText(code uint16) string {
	switch code {
	case pmpResultSuccess:
		return "success"
	case pmpResultUnsuppVer:
		return "unsupported version"
	case pmpResultRefused:
		return "not authorized/refused"
	case pmpResultNetFailure:
		return "network failure"
	case pmpResultNoResource:
		return "out of resources"
	case pmpResultUnsuppOp:
		return "unsupported opcode"
	}
	return fmt.Sprintf("result %d", code)
}

type pmpExternalAddrResponse struct {
	Result uint16
	Epoch  uint32
	IP     netip.Addr
}

type pmpMapRequest struct {
	Proto        Proto
	InternalPort uint16
	ExternalPort uint16 // suggested; 0 = no preference (and required 0 on delete)
	Lifetime     uint32 // seconds; 0 deletes
}

type pmpMapResponse struct {
	Proto        Proto
	Result       uint16
	Epoch        uint32
	InternalPort uint16
	ExternalPort uint16
	Lifetime     uint32
}

func pmpMapOpcode(p Proto) byte {
	if p == UDP {
		return pmpOpMapUDP
	}
	return pmpOpMapTCP
}

func encodePMPExternalAddrRequest() []byte { return []byte{pmpVersion, pmpOpExternalAddr} }

func decodePMPExternalAddrResponse(b []byte) (pmpExternalAddrResponse, error) {
	var r pmpExternalAddrResponse
	if len(b) < 8 {
		return r, fmt.Errorf("decode NAT-PMP external address response: %d bytes: %w", len(b), errPMPMalformed)
	}
	if b[0] != pmpVersion || b[1] != pmpResponseBit|pmpOpExternalAddr {
		return r, fmt.Errorf("decode NAT-PMP external address response: version %d opcode %d: %w", b[0], b[1], errPMPMalformed)
	}
	r.Result = binary.BigEndian.Uint16(b[2:4])
	r.Epoch = binary.BigEndian.Uint32(b[4:8])
	if r.Result != pmpResultSuccess {
		// Error responses may be truncated after the epoch (RFC 6886 §3.5).
		return r, nil
	}
	if len(b) < pmpExternalRespLen {
		return r, fmt.Errorf("decode NAT-PMP external address response: %d bytes: %w", len(b), errPMPMalformed)
	}
	r.IP = netip.AddrFrom4([4]byte(b[8:12]))
	return r, nil
}

func encodePMPMapRequest(r pmpMapRequest) []byte {
	b := make([]byte, pmpMapRequestLen)
	b[0] = pmpVersion
	b[1] = pmpMapOpcode(r.Proto)
	binary.BigEndian.PutUint16(b[4:6], r.InternalPort)
	binary.BigEndian.PutUint16(b[6:8], r.ExternalPort)
	binary.BigEndian.PutUint32(b[8:12], r.Lifetime)
	return b
}

func decodePMPMapResponse(b []byte) (pmpMapResponse, error) {
	var r pmpMapResponse
	if len(b) < 8 {
		return r, fmt.Errorf("decode NAT-PMP map response: %d bytes: %w", len(b), errPMPMalformed)
	}
	if b[0] != pmpVersion {
		return r, fmt.Errorf("decode NAT-PMP map response: version %d: %w", b[0], errPMPMalformed)
	}
	switch b[1] {
	case pmpResponseBit | pmpOpMapUDP:
		r.Proto = UDP
	case pmpResponseBit | pmpOpMapTCP:
		r.Proto = TCP
	default:
		return r, fmt.Errorf("decode NAT-PMP map response: opcode %d: %w", b[1], errPMPMalformed)
	}
	r.Result = binary.BigEndian.Uint16(b[2:4])
	r.Epoch = binary.BigEndian.Uint32(b[4:8])
	if len(b) < pmpMapResponseLen {
		if r.Result != pmpResultSuccess {
			return r, nil
		}
		return r, fmt.Errorf("decode NAT-PMP map response: %d bytes: %w", len(b), errPMPMalformed)
	}
	r.InternalPort = binary.BigEndian.Uint16(b[8:10])
	r.ExternalPort = binary.BigEndian.Uint16(b[10:12])
	r.Lifetime = binary.BigEndian.Uint32(b[12:16])
	return r, nil
}
