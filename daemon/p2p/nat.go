package p2p

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/entrepot/entrepot/natpunch"
	"github.com/libp2p/go-libp2p/core/network"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	ma "github.com/multiformats/go-multiaddr"
)

// ExposedPort is a TCP port other than the p2p one (S3, web) that the NAT
// manager also maps on the router, for clients outside the home.
type ExposedPort struct {
	Service string // "s3", "web": names the mapping on the router
	Port    uint16
}

// natManager plugs a natpunch.Client into libp2p as the host's NAT manager
// (instead of libp2p's own port mapper, never both): it maps every TCP
// listen port, lets natpunch renew and heal the mappings, removes them on
// Close, and reports to libp2p only the external addresses that a member
// has confirmed by dialling back (see dialback.go).
type natManager struct {
	c      *natpunch.Client
	log    *slog.Logger
	expose []ExposedPort
	born   time.Time // the host's start, for since_start log fields

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	changed chan struct{} // natpunch candidates changed (capacity 1)

	mu        sync.Mutex
	ports     map[uint16]bool           // TCP listen ports mapped
	confirmed map[uint16]netip.AddrPort // internal port → confirmed external address
	started   bool

	closeOnce sync.Once
	closeErr  error
}

var _ bhost.NATManager = (*natManager)(nil)

func newNATManager(c *natpunch.Client, expose []ExposedPort, log *slog.Logger, started time.Time) *natManager {
	ctx, cancel := context.WithCancel(context.Background())
	return &natManager{c: c, log: log, expose: expose, born: started, ctx: ctx, cancel: cancel,
		changed: make(chan struct{}, 1), ports: map[uint16]bool{}, confirmed: map[uint16]netip.AddrPort{}}
}

// attach is the libp2p NATManager constructor (libp2p.NATManager(m.attach)).
func (m *natManager) attach(n network.Network) bhost.NATManager {
	n.Notify(&network.NotifyBundle{
		ListenF:      func(_ network.Network, a ma.Multiaddr) { m.listen(a) },
		ListenCloseF: func(_ network.Network, a ma.Multiaddr) { m.unlisten(a) },
	})
	for _, a := range n.ListenAddresses() {
		m.listen(a)
	}
	m.start()
	return m
}

func (m *natManager) start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return
	}
	m.started = true
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		_ = m.c.Run(m.ctx)
	}()
	go func() {
		defer m.wg.Done()
		for range m.c.Events() {
			m.poke()
		}
	}()
	for _, e := range m.expose {
		m.mapPort(e.Port, e.Service)
	}
}

func (m *natManager) poke() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// tcpPort returns the TCP port of a direct (non-relay) TCP address.
func tcpPort(a ma.Multiaddr) (uint16, bool) {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return 0, false
	}
	v, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		return 0, false
	}
	p, err := strconv.ParseUint(v, 10, 16)
	if err != nil || p == 0 {
		return 0, false
	}
	return uint16(p), true
}

func (m *natManager) listen(a ma.Multiaddr) {
	port, ok := tcpPort(a)
	if !ok {
		return
	}
	m.mu.Lock()
	dup := m.ports[port]
	m.ports[port] = true
	m.mu.Unlock()
	if !dup {
		m.mapPort(port, "p2p")
	}
}

func (m *natManager) mapPort(port uint16, service string) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// Map probes the gateway first; on failure the request stays
		// registered and natpunch's Run retries with back-off.
		mp, err := m.c.Map(m.ctx, natpunch.MappingRequest{Proto: natpunch.TCP, InternalPort: port, Service: service})
		if err != nil {
			m.log.Info("port not mapped yet", "service", service, "port", port, "err", err,
				"since_start", time.Since(m.born).Round(time.Millisecond))
			return
		}
		m.log.Info("port mapped on the router", "service", service, "port", port, "external", mp.External,
			"method", mp.Method, "double_nat", mp.DoubleNAT, "since_start", time.Since(m.born).Round(time.Millisecond))
		m.poke()
	}()
}

func (m *natManager) unlisten(a ma.Multiaddr) {
	port, ok := tcpPort(a)
	if !ok {
		return
	}
	m.mu.Lock()
	delete(m.ports, port)
	delete(m.confirmed, port)
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.c.Unmap(m.ctx, natpunch.TCP, port); err != nil {
			m.log.Debug("unmap", "port", port, "err", err)
		}
	}()
}

// candidates returns the external addresses of the mapped p2p ports.
func (m *natManager) candidates() map[string]natCandidate {
	m.mu.Lock()
	ports := make(map[uint16]bool, len(m.ports))
	for p := range m.ports {
		ports[p] = true
	}
	m.mu.Unlock()
	out := map[string]natCandidate{}
	for _, c := range m.c.Candidates() {
		if c.Proto != natpunch.TCP || !ports[c.InternalPort] {
			continue
		}
		a, err := addrPortMultiaddr(c.External)
		if err != nil {
			continue
		}
		out[a.String()] = natCandidate{addr: a, internal: c.InternalPort, external: c.External}
	}
	return out
}

type natCandidate struct {
	addr     ma.Multiaddr
	internal uint16
	external netip.AddrPort
}

// setConfirmed replaces the set of confirmed external addresses and
// reports whether it changed.
func (m *natManager) setConfirmed(c map[uint16]netip.AddrPort) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := !maps.Equal(m.confirmed, c)
	m.confirmed = c
	return changed
}

// GetMapping returns the confirmed external address of a TCP listen
// address, or nil: an unconfirmed mapping is never advertised.
func (m *natManager) GetMapping(a ma.Multiaddr) ma.Multiaddr {
	port, ok := tcpPort(a)
	if !ok {
		return nil
	}
	m.mu.Lock()
	ext, ok := m.confirmed[port]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	out, err := addrPortMultiaddr(ext)
	if err != nil {
		return nil
	}
	return out
}

// HasDiscoveredNAT reports whether a port-mapping gateway was found.
func (m *natManager) HasDiscoveredNAT() bool { return len(m.c.Gateway().Methods) > 0 }

// Close removes every mapping from the router (bounded by natpunch's
// CloseTimeout, 2 s) and stops renewing. Host.Close calls it before the
// listeners close; libp2p calls it again, harmlessly.
func (m *natManager) Close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.c.Close(context.Background())
		m.cancel()
		m.wg.Wait()
	})
	return m.closeErr
}

func addrPortMultiaddr(ap netip.AddrPort) (ma.Multiaddr, error) {
	ip := ap.Addr().Unmap()
	proto := "ip4"
	if ip.Is6() {
		proto = "ip6"
	}
	return ma.NewMultiaddr("/" + proto + "/" + ip.String() + "/tcp/" + strconv.Itoa(int(ap.Port())))
}

// NATStatus is the router port mapping state, for `entrepot status`.
type NATStatus struct {
	Gateway  natpunch.GatewayStatus   `json:"gateway"`
	Mappings []natpunch.MappingStatus `json:"mappings"`
}

// NATStatus returns the port mapping state (zero when NAT is off).
func (p *Host) NATStatus() NATStatus {
	if p.nat == nil {
		return NATStatus{}
	}
	return NATStatus{Gateway: p.nat.c.Gateway(), Mappings: p.nat.c.Status()}
}
