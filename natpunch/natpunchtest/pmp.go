package natpunchtest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PMPMapping is a mapping held by the fake NAT-PMP/PCP server.
type PMPMapping struct {
	Proto        string // "TCP" or "UDP"
	InternalPort uint16
	ExternalPort uint16
	Lifetime     uint32
	PCP          bool
}

// PMP is a fake NAT-PMP (RFC 6886) and PCP (RFC 6887) server on 127.0.0.1.
type PMP struct {
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu         sync.Mutex
	enablePMP  bool
	enablePCP  bool
	externalIP netip.Addr
	epochStart time.Time
	epochBase  uint32
	mappings   map[string]PMPMapping // by proto/internal port
	taken      map[string]bool       // proto/external port held by other hosts
	pmpResult  uint16                // forced result code for every PMP request
	pcpResult  uint8                 // forced result code for PCP MAP
	maxLife    uint32
	requests   int
	maps       int
}

// NewPMP starts a fake server answering both NAT-PMP and PCP; its external
// IP is 203.0.113.9.
func NewPMP() (*PMP, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("listen PMP: %w", err)
	}
	p := &PMP{conn: c, enablePMP: true, enablePCP: true, externalIP: netip.MustParseAddr("203.0.113.9"),
		epochStart: time.Now(), epochBase: 100000, mappings: map[string]PMPMapping{}, taken: map[string]bool{},
		maxLife: 7200}
	p.wg.Add(1)
	go serveUDP(&p.wg, p.conn, 1200, p.handle)
	return p, nil
}

// Addr is the server address (use it as natpunch Config.PMPServer).
func (p *PMP) Addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops the server.
func (p *PMP) Close() { _ = p.conn.Close(); p.wg.Wait() }

// SetProtocols enables or disables NAT-PMP and PCP answers (a disabled
// protocol is silently ignored, like a router without it).
func (p *PMP) SetProtocols(pmp, pcp bool) {
	withLock(&p.mu, func() { p.enablePMP, p.enablePCP = pmp, pcp })
}

// SetExternalIP changes the external address.
func (p *PMP) SetExternalIP(ip netip.Addr) {
	withLock(&p.mu, func() { p.externalIP = ip })
}

// SetPMPResult forces a NAT-PMP result code (3 = network failure, what
// miniupnpd answers with a private WAN address); 0 restores success.
func (p *PMP) SetPMPResult(code uint16) {
	withLock(&p.mu, func() { p.pmpResult = code })
}

// SetPCPResult forces a PCP result code on MAP; 0 restores success.
func (p *PMP) SetPCPResult(code uint8) {
	withLock(&p.mu, func() { p.pcpResult = code })
}

// SetMaxLifetime caps granted lifetimes (seconds).
func (p *PMP) SetMaxLifetime(s uint32) {
	withLock(&p.mu, func() { p.maxLife = s })
}

// Take marks an external port as held by another host.
func (p *PMP) Take(proto string, external uint16) {
	withLock(&p.mu, func() { p.taken[fmt.Sprintf("%s/%d", proto, external)] = true })
}

// Restart simulates a router reboot: mappings are lost and the epoch
// starts again from 0.
func (p *PMP) Restart() {
	withLock(&p.mu, func() {
		p.mappings = map[string]PMPMapping{}
		p.epochStart, p.epochBase = time.Now(), 0
	})
}

// Mappings returns the mappings held, sorted.
func (p *PMP) Mappings() []PMPMapping {
	p.mu.Lock()
	defer p.mu.Unlock()
	return sortedValues(p.mappings, func(a, b PMPMapping) bool {
		return fmt.Sprint(a.Proto, a.InternalPort) < fmt.Sprint(b.Proto, b.InternalPort)
	})
}

// Requests returns the number of requests answered; MapRequests those
// that created, renewed or deleted a mapping.
func (p *PMP) Requests() (all, maps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests, p.maps
}

func (p *PMP) epoch() uint32 { return p.epochBase + uint32(time.Since(p.epochStart)/time.Second) }

func (p *PMP) handle(b []byte) []byte {
	if len(b) < 2 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch b[0] {
	case 0:
		if !p.enablePMP {
			return nil
		}
		p.requests++
		return p.handlePMP(b)
	case 2:
		if !p.enablePCP {
			return nil
		}
		p.requests++
		return p.handlePCP(b)
	}
	return nil
}

func (p *PMP) grant(proto string, in, ext uint16, life uint32, pcp bool) uint16 {
	key := fmt.Sprintf("%s/%d", proto, in)
	if life == 0 {
		delete(p.mappings, key)
		return 0
	}
	if old, ok := p.mappings[key]; ok {
		ext = old.ExternalPort
	}
	if ext < 1024 {
		ext = in
	}
	for p.taken[fmt.Sprintf("%s/%d", proto, ext)] {
		ext++
	}
	if life > p.maxLife {
		life = p.maxLife
	}
	p.mappings[key] = PMPMapping{Proto: proto, InternalPort: in, ExternalPort: ext, Lifetime: life, PCP: pcp}
	return ext
}

func (p *PMP) handlePMP(b []byte) []byte {
	op := b[1]
	switch {
	case op == 0 && len(b) >= 2:
		r := make([]byte, 12)
		r[1] = 128
		binary.BigEndian.PutUint16(r[2:], p.pmpResult)
		binary.BigEndian.PutUint32(r[4:], p.epoch())
		if p.pmpResult == 0 {
			a := p.externalIP.As4()
			copy(r[8:], a[:])
		}
		return r
	case (op == 1 || op == 2) && len(b) >= 12:
		p.maps++
		in := binary.BigEndian.Uint16(b[4:])
		ext := binary.BigEndian.Uint16(b[6:])
		life := binary.BigEndian.Uint32(b[8:])
		r := make([]byte, 16)
		r[1] = 128 + op
		binary.BigEndian.PutUint32(r[4:], p.epoch())
		binary.BigEndian.PutUint16(r[8:], in)
		if p.pmpResult != 0 {
			binary.BigEndian.PutUint16(r[2:], p.pmpResult)
			return r
		}
		proto := "UDP"
		if op == 2 {
			proto = "TCP"
		}
		if life > p.maxLife {
			life = p.maxLife
		}
		got := p.grant(proto, in, ext, life, false)
		binary.BigEndian.PutUint16(r[10:], got)
		binary.BigEndian.PutUint32(r[12:], life)
		return r
	}
	r := make([]byte, 8)
	r[1] = 128 + op
	binary.BigEndian.PutUint16(r[2:], 5) // unsupported opcode
	binary.BigEndian.PutUint32(r[4:], p.epoch())
	return r
}

func (p *PMP) handlePCP(b []byte) []byte {
	if len(b) < 24 || len(b)%4 != 0 || b[1]&0x80 != 0 {
		return nil
	}
	op := b[1]
	life := binary.BigEndian.Uint32(b[4:])
	resp := func(result uint8, life uint32, payload []byte) []byte {
		r := make([]byte, 24+len(payload))
		r[0], r[1], r[3] = 2, op|0x80, result
		binary.BigEndian.PutUint32(r[4:], life)
		binary.BigEndian.PutUint32(r[8:], p.epoch())
		copy(r[24:], payload)
		return r
	}
	switch op {
	case 0: // ANNOUNCE
		return resp(0, 0, nil)
	case 1: // MAP
		if len(b) < 60 {
			return resp(3, 0, nil)
		}
		payload := append([]byte(nil), b[24:60]...)
		p.maps++
		if p.pcpResult != 0 {
			return resp(p.pcpResult, 0, payload)
		}
		proto := map[byte]string{6: "TCP", 17: "UDP"}[payload[12]]
		if proto == "" {
			return resp(9, 0, payload) // UNSUPP_PROTOCOL
		}
		in := binary.BigEndian.Uint16(payload[16:])
		ext := binary.BigEndian.Uint16(payload[18:])
		if life > p.maxLife {
			life = p.maxLife
		}
		got := p.grant(proto, in, ext, life, true)
		binary.BigEndian.PutUint16(payload[18:], got)
		ip := p.externalIP.As16()
		if p.externalIP.Is4() {
			ip = netip.AddrFrom16(p.externalIP.As16()).As16()
		}
		copy(payload[20:36], ip[:])
		return resp(0, life, payload)
	}
	return resp(4, 0, nil) // UNSUPP_OPCODE
}
