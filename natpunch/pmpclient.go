package natpunch

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// pmpMapper speaks NAT-PMP (RFC 6886) to the gateway.
type pmpMapper struct {
	server  netip.AddrPort
	timeout time.Duration

	mu        sync.Mutex
	ext       netip.Addr
	epoch     uint32
	haveEpoch bool
}

func (p *pmpMapper) method() Method   { return MethodNATPMP }
func (p *pmpMapper) identity() string { return "NAT-PMP " + p.server.String() }

// sawEpoch records an epoch and reports a regression (router restart).
func (p *pmpMapper) sawEpoch(e uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	reboot := p.haveEpoch && e < p.epoch
	p.epoch, p.haveEpoch = e, true
	return reboot
}

func (p *pmpMapper) externalAddr(ctx context.Context) (pmpExternalAddrResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var resp pmpExternalAddrResponse
	_, err := udpExchange(ctx, p.server, encodePMPExternalAddrRequest(), func(b []byte) bool {
		r, err := decodePMPExternalAddrResponse(b)
		if err != nil {
			return false
		}
		resp = r
		return true
	})
	return resp, err
}

func (p *pmpMapper) check(ctx context.Context) (netip.Addr, bool, error) {
	r, err := p.externalAddr(ctx)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("NAT-PMP external address: %w", err)
	}
	reboot := p.sawEpoch(r.Epoch)
	if r.Result != pmpResultSuccess {
		return netip.Addr{}, reboot, &RouterError{Method: MethodNATPMP, Code: int(r.Result), Text: pmpResultText(r.Result)}
	}
	p.mu.Lock()
	p.ext = r.IP
	p.mu.Unlock()
	return r.IP, reboot, nil
}

func (p *pmpMapper) mapRequest(ctx context.Context, req pmpMapRequest) (pmpMapResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var resp pmpMapResponse
	_, err := udpExchange(ctx, p.server, encodePMPMapRequest(req), func(b []byte) bool {
		r, err := decodePMPMapResponse(b)
		if err != nil || r.Proto != req.Proto {
			return false
		}
		if r.Result == pmpResultSuccess && r.InternalPort != req.InternalPort {
			return false
		}
		resp = r
		return true
	})
	if err != nil {
		return resp, fmt.Errorf("NAT-PMP map %s %d: %w", req.Proto, req.InternalPort, err)
	}
	p.sawEpoch(resp.Epoch)
	if resp.Result != pmpResultSuccess {
		return resp, &RouterError{Method: MethodNATPMP, Code: int(resp.Result), Text: pmpResultText(resp.Result)}
	}
	return resp, nil
}

func (p *pmpMapper) add(ctx context.Context, s mapSpec) (netip.AddrPort, time.Duration, error) {
	r, err := p.mapRequest(ctx, pmpMapRequest{
		Proto: s.Proto, InternalPort: s.InternalPort, ExternalPort: s.ExternalPort,
		Lifetime: uint32(s.Lease / time.Second),
	})
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	p.mu.Lock()
	ext := p.ext
	p.mu.Unlock()
	if !ext.IsValid() {
		if e, _, err := p.check(ctx); err == nil {
			ext = e
		}
	}
	if r.Lifetime == 0 {
		return netip.AddrPort{}, 0, &RouterError{Method: MethodNATPMP, Code: -1, Text: "zero lifetime granted"}
	}
	return netip.AddrPortFrom(ext, r.ExternalPort), time.Duration(r.Lifetime) * time.Second, nil
}

func (p *pmpMapper) remove(ctx context.Context, s mapSpec, _ uint16) error {
	// RFC 6886 §3.4: delete = lifetime 0 and suggested external port 0.
	_, err := p.mapRequest(ctx, pmpMapRequest{Proto: s.Proto, InternalPort: s.InternalPort})
	return err
}

func (p *pmpMapper) verify(context.Context, mapSpec, uint16) (bool, error) { return true, nil }

// pcpMapper speaks PCP (RFC 6887) to the gateway.
type pcpMapper struct {
	server  netip.AddrPort
	client  netip.Addr
	timeout time.Duration

	mu        sync.Mutex
	ext       netip.Addr
	epoch     uint32
	haveEpoch bool
}

func (p *pcpMapper) method() Method   { return MethodPCP }
func (p *pcpMapper) identity() string { return "PCP " + p.server.String() }

func (p *pcpMapper) sawEpoch(e uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	reboot := p.haveEpoch && e < p.epoch
	p.epoch, p.haveEpoch = e, true
	return reboot
}

func (p *pcpMapper) exchange(ctx context.Context, req []byte, op uint8, nonce *[12]byte) (pcpResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var resp pcpResponse
	_, err := udpExchange(ctx, p.server, req, func(b []byte) bool {
		r, err := decodePCPResponse(b)
		if err != nil || r.Opcode != op {
			return false
		}
		if nonce != nil && r.Result == pcpResultSuccess && r.Map.Nonce != *nonce {
			return false
		}
		resp = r
		return true
	})
	if err != nil {
		return resp, fmt.Errorf("PCP opcode %d: %w", op, err)
	}
	p.sawEpoch(resp.Epoch)
	if resp.Result != pcpResultSuccess {
		return resp, &RouterError{Method: MethodPCP, Code: int(resp.Result), Text: pcpResultText(resp.Result)}
	}
	return resp, nil
}

func (p *pcpMapper) announce(ctx context.Context) (bool, error) {
	p.mu.Lock()
	prev, had := p.epoch, p.haveEpoch
	p.mu.Unlock()
	r, err := p.exchange(ctx, encodePCPAnnounce(p.client), pcpOpAnnounce, nil)
	if err != nil {
		return false, err
	}
	return had && r.Epoch < prev, nil
}

func (p *pcpMapper) check(ctx context.Context) (netip.Addr, bool, error) {
	reboot, err := p.announce(ctx)
	if err != nil {
		return netip.Addr{}, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ext, reboot, nil
}

func (p *pcpMapper) add(ctx context.Context, s mapSpec) (netip.AddrPort, time.Duration, error) {
	req := encodePCPMapRequest(p.client, uint32(s.Lease/time.Second), pcpMap{
		Nonce: s.Nonce, Protocol: s.Proto.ianaNumber(), InternalPort: s.InternalPort, ExternalPort: s.ExternalPort,
	})
	r, err := p.exchange(ctx, req, pcpOpMap, &s.Nonce)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("PCP map %s %d: %w", s.Proto, s.InternalPort, err)
	}
	if r.Lifetime == 0 {
		return netip.AddrPort{}, 0, &RouterError{Method: MethodPCP, Code: -1, Text: "zero lifetime granted"}
	}
	p.mu.Lock()
	p.ext = r.Map.ExternalIP
	p.mu.Unlock()
	return netip.AddrPortFrom(r.Map.ExternalIP, r.Map.ExternalPort), time.Duration(r.Lifetime) * time.Second, nil
}

func (p *pcpMapper) remove(ctx context.Context, s mapSpec, external uint16) error {
	req := encodePCPMapRequest(p.client, 0, pcpMap{
		Nonce: s.Nonce, Protocol: s.Proto.ianaNumber(), InternalPort: s.InternalPort, ExternalPort: external,
	})
	_, err := p.exchange(ctx, req, pcpOpMap, &s.Nonce)
	return err
}

func (p *pcpMapper) verify(context.Context, mapSpec, uint16) (bool, error) { return true, nil }
