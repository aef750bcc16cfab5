package p2p

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// RelayMode chooses whether a relay feature runs.
type RelayMode int

const (
	// RelayAuto decides from reachability: the relay service runs once a
	// public address of this node is confirmed; reservations are held
	// while none is.
	RelayAuto RelayMode = iota
	// RelayOn forces the feature on.
	RelayOn
	// RelayOff forces it off.
	RelayOff
)

// How a member is reached, in PeerStatus.Via.
const (
	ViaDirect      = "direct"
	ViaHolePunched = "hole-punched"
	ViaRelayed     = "relayed"
)

const (
	maxRelays         = 2                // reservations held by an unreachable node
	confirmTTL        = 10 * time.Minute // a confirmed address is re-checked this often
	upgradeInterval   = time.Minute      // direct dial attempts to a relayed-only member
	relayBufferSize   = 32 << 10
	relayMaxCircuits  = 64
	relayMaxPerIP     = 64 // every member of a home shares one public IP
	verifiersPerCheck = 3
)

// candState is a candidate external address and what the dial-back said.
type candState struct {
	addr      ma.Multiaddr
	nat       bool // from a router mapping (else a public interface address)
	internal  uint16
	external  netip.AddrPort
	confirmed bool
	checked   time.Time
	fails     int
	// asked are the members asked to dial it back since its state last
	// changed. Unconfirmed, a member outside our LAN not among them is
	// asked at once (it may be the first able to reach us through the
	// router), whatever the back-off; confirmed, it is asked too, so that
	// it records the address (announceTo).
	asked map[peer.ID]bool
}

// reachState is the host's view of its own reachability and relays.
type reachState struct {
	mu         sync.Mutex
	cands      map[string]*candState
	reachable  bool // a public address is confirmed
	relay      *relayv2.Relay
	rsv        map[peer.ID]*reservation
	circuits   []ma.Multiaddr
	punched    map[peer.ID]time.Time // last successful hole punch
	lastDirect map[peer.ID]directTry // last direct-dial attempt to a relayed-only member
}

// directTry is a direct-dial attempt: when, and to which addresses.
type directTry struct {
	at    time.Time
	addrs string
}

type reservation struct {
	r   *relayclient.Reservation
	got time.Time
}

func newReachState() *reachState {
	return &reachState{cands: map[string]*candState{}, rsv: map[peer.ID]*reservation{},
		punched: map[peer.ID]time.Time{}, lastDirect: map[peer.ID]directTry{}}
}

// factory is the libp2p AddrsFactory: listen and confirmed NAT addresses
// (from the NAT manager) plus configured announce addresses plus circuit
// addresses through the relays we hold a reservation with.
func (r *reachState) factory(announce []ma.Multiaddr) func([]ma.Multiaddr) []ma.Multiaddr {
	return func(in []ma.Multiaddr) []ma.Multiaddr {
		out := append(append([]ma.Multiaddr{}, in...), announce...)
		r.mu.Lock()
		out = append(out, r.circuits...)
		r.mu.Unlock()
		return out
	}
}

// Trace records DCUtR outcomes (holepunch.EventTracer).
func (r *reachState) Trace(evt *holepunch.Event) {
	if evt.Type != holepunch.EndHolePunchEvtT {
		return
	}
	if e, ok := evt.Evt.(*holepunch.EndHolePunchEvt); ok && e.Success {
		r.mu.Lock()
		r.punched[evt.Remote] = time.Now()
		r.mu.Unlock()
	}
}

// memberACL lets only members reserve on and connect through our relay.
// The cluster PSK already keeps non-members from connecting at all; the
// ACL also refuses peers this node has never seen as members.
type memberACL struct{ p *Host }

func (a memberACL) AllowReserve(id peer.ID, _ ma.Multiaddr) bool { return a.p.isMember(id) }
func (a memberACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dst peer.ID) bool {
	return a.p.isMember(src) && a.p.isMember(dst)
}

func (p *Host) isMember(id peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.peers[id]
	return ok
}

// runReach confirms candidate addresses, switches the relay service and
// reservations, and retries direct links to relayed members, until ctx ends.
func (p *Host) runReach(ctx context.Context) {
	t := time.NewTicker(p.cfg.ReachabilityInterval)
	defer t.Stop()
	defer p.announcing.Wait()
	var natChanged <-chan struct{}
	if p.nat != nil {
		natChanged = p.nat.changed
	}
	for {
		p.reachStep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-natChanged:
		case <-p.newPeer:
			// A new member may be the first one able to dial us back
			// (the others being on our LAN): confirmCandidates asks it
			// at once about every unconfirmed candidate.
		}
	}
}

func (p *Host) reachStep(ctx context.Context) {
	p.refreshCandidates()
	p.confirmCandidates(ctx)
	p.updateRelayService()
	p.maintainReservations(ctx)
	p.upgradeRelayed(ctx)
}

// refreshCandidates rebuilds the candidate set, keeping known states.
func (p *Host) refreshCandidates() {
	next := map[string]*candState{}
	if p.nat != nil {
		for k, c := range p.nat.candidates() {
			next[k] = &candState{addr: c.addr, nat: true, internal: c.internal, external: c.external}
		}
	}
	for _, a := range p.announce {
		if _, ok := tcpPort(a); ok {
			next[a.String()] = &candState{addr: a}
		}
	}
	for _, a := range p.h.Network().ListenAddresses() {
		if _, ok := tcpPort(a); !ok {
			continue
		}
		resolved, err := manet.ResolveUnspecifiedAddresses([]ma.Multiaddr{a}, ifaceAddrs(p))
		if err != nil {
			continue
		}
		for _, r := range resolved {
			if manet.IsPublicAddr(r) {
				next[r.String()] = &candState{addr: r}
			}
		}
	}
	r := p.reach
	r.mu.Lock()
	for k, c := range next {
		if old, ok := r.cands[k]; ok {
			c.confirmed, c.checked, c.fails, c.asked = old.confirmed, old.checked, old.fails, old.asked
		}
	}
	r.cands = next
	r.mu.Unlock()
}

func ifaceAddrs(p *Host) []ma.Multiaddr {
	a, err := p.h.Network().InterfaceListenAddresses()
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, x := range a {
		if ip, err := manet.ToIP(x); err == nil {
			if m, err := manet.FromIP(ip); err == nil {
				out = append(out, m)
			}
		}
	}
	return out
}

// due reports whether c needs a (re)check now.
func (c *candState) due(now time.Time, base time.Duration) bool {
	if c.checked.IsZero() {
		return true
	}
	if c.confirmed {
		return now.Sub(c.checked) >= confirmTTL
	}
	wait := base << min(c.fails, 6)
	if wait > confirmTTL {
		wait = confirmTTL
	}
	return now.Sub(c.checked) >= wait
}

// verifiers returns connected members that serve dial-back, best first:
// members seen at a public address, then members reached through a relay
// or at a private address outside our subnet, and last members on our own
// LAN, which cannot test our router mapping (most routers have no hairpin
// NAT).
func (p *Host) verifiers() []verifier {
	tiers := make([][]peer.ID, 3)
	for _, id := range p.h.Network().Peers() {
		if ok, _ := p.h.Peerstore().SupportsProtocols(id, p.db.proto); len(ok) == 0 {
			continue
		}
		tier := 1
		for _, c := range p.h.Network().ConnsToPeer(id) {
			if isRelayed(c) {
				continue
			}
			switch {
			case manet.IsPublicAddr(c.RemoteMultiaddr()):
				tier = 0
			case sameSubnet(c.LocalMultiaddr(), c.RemoteMultiaddr()) && tier != 0:
				tier = 2
			}
		}
		tiers[tier] = append(tiers[tier], id)
	}
	var out []verifier
	for tier, t := range tiers {
		sort.Slice(t, func(i, j int) bool { return t[i] < t[j] })
		for _, id := range t {
			out = append(out, verifier{id: id, lan: tier == 2})
		}
	}
	return out
}

// verifier is a connected member able to serve dial-back; lan is true when
// it is on our own subnet (it usually cannot test a router mapping).
type verifier struct {
	id  peer.ID
	lan bool
}

// unasked reports whether a member outside our LAN has not been asked
// about c yet.
func (c *candState) unasked(vs []verifier) bool {
	for _, v := range vs {
		if !v.lan && !c.asked[v.id] {
			return true
		}
	}
	return false
}

// sameSubnet reports whether two addresses share a /24 (IPv4) or /64 (IPv6).
func sameSubnet(a, b ma.Multiaddr) bool {
	ia, err1 := manet.ToIP(a)
	ib, err2 := manet.ToIP(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if a4, b4 := ia.To4(), ib.To4(); a4 != nil && b4 != nil {
		return a4[0] == b4[0] && a4[1] == b4[1] && a4[2] == b4[2]
	}
	return len(ia) == 16 && len(ib) == 16 && string(ia[:8]) == string(ib[:8])
}

func (p *Host) confirmCandidates(ctx context.Context) {
	r := p.reach
	now := time.Now()
	vs := p.verifiers()
	r.mu.Lock()
	var due []*candState
	fresh := map[peer.ID]bool{} // outside members not yet asked about a due candidate
	for _, c := range r.cands {
		if c.due(now, p.cfg.ReachabilityInterval) || !c.confirmed && c.unasked(vs) {
			due = append(due, c)
			for _, v := range vs {
				if !v.lan && !c.asked[v.id] {
					fresh[v.id] = true
				}
			}
		}
	}
	r.mu.Unlock()
	if len(due) > 0 && len(vs) > 0 {
		// Members never asked go first (stable: tiers kept otherwise).
		sort.SliceStable(vs, func(i, j int) bool { return fresh[vs[i].id] && !fresh[vs[j].id] })
		addrs := make([]ma.Multiaddr, len(due))
		for i, c := range due {
			addrs[i] = c.addr
		}
		ok := make([]bool, len(due))
		reachedBy := make([][]peer.ID, len(due))
		var asked []peer.ID
		for _, v := range vs {
			if len(asked) == verifiersPerCheck || !slices.Contains(ok, false) {
				break
			}
			asked = append(asked, v.id)
			cctx, cancel := context.WithTimeout(ctx, 2*dialbackDialTime+5*time.Second)
			res, err := p.db.ask(cctx, p.h, v.id, addrs)
			cancel()
			if err != nil {
				p.log.Debug("dial-back check failed", "member", v.id.String(), "err", err)
				continue
			}
			p.log.Debug("dial-back check", "member", v.id.String(), "addrs", addrs, "reached", res)
			for i := range res {
				ok[i] = ok[i] || res[i]
				if res[i] {
					reachedBy[i] = append(reachedBy[i], v.id)
				}
			}
		}
		r.mu.Lock()
		for i, c := range due {
			was := c.confirmed
			c.checked, c.confirmed = now, ok[i]
			if was != c.confirmed {
				c.asked = nil
			}
			if c.asked == nil {
				c.asked = map[peer.ID]bool{}
			}
			if ok[i] {
				c.fails = 0
				for _, id := range reachedBy[i] {
					c.asked[id] = true
				}
			} else {
				c.fails++
				for _, id := range asked {
					c.asked[id] = true
				}
			}
			if was != c.confirmed {
				msg := "external address confirmed"
				if !c.confirmed {
					msg = "external address no longer confirmed"
				}
				p.log.Info(msg, "addr", c.addr.String(), "since_start", time.Since(p.started).Round(time.Millisecond))
			}
		}
		r.mu.Unlock()
	}
	// Publish the confirmed NAT addresses and the reachability.
	conf := map[uint16]netip.AddrPort{}
	reachable := false
	r.mu.Lock()
	for _, c := range r.cands {
		if !c.confirmed {
			continue
		}
		if c.nat {
			conf[c.internal] = c.external
		}
		if manet.IsPublicAddr(c.addr) {
			reachable = true
		}
	}
	changed := r.reachable != reachable
	r.reachable = reachable
	r.mu.Unlock()
	if p.nat != nil && p.nat.setConfirmed(conf) {
		// Advertise (identify push) now, not at libp2p's next tick.
		p.nudger.nudge()
	}
	if changed {
		p.log.Info("reachability", "public", reachable)
	}
	// Confirmed addresses go to the outside members that have not
	// dialled them yet (connected or identified since).
	tell := map[peer.ID][]ma.Multiaddr{}
	r.mu.Lock()
	for _, c := range r.cands {
		if !c.confirmed {
			continue
		}
		for _, v := range vs {
			if v.lan || c.asked[v.id] {
				continue
			}
			if c.asked == nil {
				c.asked = map[peer.ID]bool{}
			}
			c.asked[v.id] = true
			tell[v.id] = append(tell[v.id], c.addr)
		}
	}
	r.mu.Unlock()
	p.announceTo(ctx, tell)
}

// updateRelayService starts or stops the members-only relay.
func (p *Host) updateRelayService() {
	r := p.reach
	r.mu.Lock()
	want := p.cfg.RelayService == RelayOn || (p.cfg.RelayService == RelayAuto && r.reachable)
	running := r.relay != nil
	r.mu.Unlock()
	switch {
	case want && !running:
		res := relayv2.DefaultResources()
		res.Limit = nil // S3 objects cross relays: no 2 min / 128 KiB cap
		res.MaxCircuits = relayMaxCircuits
		res.BufferSize = relayBufferSize
		res.MaxReservationsPerIP = relayMaxPerIP
		rl, err := relayv2.New(p.h, relayv2.WithResources(res), relayv2.WithACL(memberACL{p}))
		if err != nil {
			p.log.Warn("relay service not started", "err", err)
			return
		}
		r.mu.Lock()
		r.relay = rl
		r.mu.Unlock()
		p.log.Info("relay service started for members")
	case !want && running:
		r.mu.Lock()
		rl := r.relay
		r.relay = nil
		r.mu.Unlock()
		_ = rl.Close()
		p.log.Info("relay service stopped")
	}
}

func isRelayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// directlyConnected reports whether id has a non-relayed connection.
func (p *Host) directlyConnected(id peer.ID) bool {
	for _, c := range p.h.Network().ConnsToPeer(id) {
		if !isRelayed(c) {
			return true
		}
	}
	return false
}

// maintainReservations keeps up to maxRelays reservations on relaying
// members while this node is not reachable, and publishes the circuit
// addresses through them.
func (p *Host) maintainReservations(ctx context.Context) {
	r := p.reach
	r.mu.Lock()
	want := p.cfg.UseRelays == RelayOn || (p.cfg.UseRelays == RelayAuto && !r.reachable)
	now := time.Now()
	for id, res := range r.rsv {
		if !want || !p.directlyConnected(id) || now.After(res.r.Expiration) {
			delete(r.rsv, id)
		}
	}
	var refresh []peer.ID
	for id, res := range r.rsv {
		if now.After(res.got.Add(res.r.Expiration.Sub(res.got) / 2)) {
			refresh = append(refresh, id)
		}
	}
	have := len(r.rsv)
	r.mu.Unlock()
	if want {
		for _, id := range p.h.Network().Peers() {
			if have >= maxRelays {
				break
			}
			r.mu.Lock()
			_, held := r.rsv[id]
			r.mu.Unlock()
			if held || !p.directlyConnected(id) {
				continue
			}
			if ok, _ := p.h.Peerstore().SupportsProtocols(id, circuitproto.ProtoIDv2Hop); len(ok) == 0 {
				continue
			}
			refresh = append(refresh, id)
			have++
		}
	}
	for _, id := range refresh {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := relayclient.Reserve(cctx, p.h, peer.AddrInfo{ID: id})
		cancel()
		r.mu.Lock()
		if err != nil {
			delete(r.rsv, id)
			p.log.Debug("relay reservation failed", "relay", id.String(), "err", err)
		} else {
			if _, ok := r.rsv[id]; !ok {
				p.log.Info("relay reservation", "relay", id.String(), "until", res.Expiration)
			}
			r.rsv[id] = &reservation{r: res, got: time.Now()}
		}
		r.mu.Unlock()
	}
	// Circuit addresses: every direct TCP address of each relay.
	var circuits []ma.Multiaddr
	r.mu.Lock()
	ids := make([]peer.ID, 0, len(r.rsv))
	for id := range r.rsv {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		suffix, err := ma.NewMultiaddr("/p2p/" + id.String() + "/p2p-circuit")
		if err != nil {
			continue
		}
		n := 0
		for _, a := range p.h.Peerstore().Addrs(id) {
			if _, ok := tcpPort(a); !ok || manet.IsIPLoopback(a) && !p.loopbackOnly() || n == 4 {
				continue
			}
			circuits = append(circuits, a.Encapsulate(suffix))
			n++
		}
	}
	r.mu.Lock()
	same := slices.EqualFunc(r.circuits, circuits, func(a, b ma.Multiaddr) bool { return a.Equal(b) })
	r.circuits = circuits
	r.mu.Unlock()
	if !same {
		p.nudger.nudge()
	}
}

// loopbackOnly reports whether this host listens on loopback only (tests).
func (p *Host) loopbackOnly() bool {
	for _, a := range p.h.Network().ListenAddresses() {
		if _, ok := tcpPort(a); ok && !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// upgradeRelayed tries a direct dial to members reached only through a
// relay, at most once a minute per member unless the member advertises new
// direct addresses (say a mapping it just got confirmed), which are tried
// at once. DCUtR handles hole punching itself when a relayed link opens.
func (p *Host) upgradeRelayed(ctx context.Context) {
	r := p.reach
	now := time.Now()
	var wg sync.WaitGroup
	for _, id := range p.h.Network().Peers() {
		if p.directlyConnected(id) {
			continue
		}
		key := directAddrsKey(p.h.Peerstore().Addrs(id))
		r.mu.Lock()
		last := r.lastDirect[id]
		if now.Sub(last.at) < upgradeInterval && key == last.addrs {
			r.mu.Unlock()
			continue
		}
		r.lastDirect[id] = directTry{at: now, addrs: key}
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "upgrade relayed link"), 10*time.Second)
			defer cancel()
			if err := p.h.Connect(cctx, peer.AddrInfo{ID: id}); err == nil && p.directlyConnected(id) {
				p.log.Info("relayed member now reached directly", "peer", id.String())
			}
		}()
	}
	wg.Wait()
}

// directAddrsKey identifies a set of direct (non-relay) addresses.
func directAddrsKey(addrs []ma.Multiaddr) string {
	var ss []string
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err != nil {
			ss = append(ss, a.String())
		}
	}
	sort.Strings(ss)
	return strings.Join(ss, " ")
}

// via says how a connected member is reached ("" when not connected).
func (p *Host) via(id peer.ID) string {
	conns := p.h.Network().ConnsToPeer(id)
	if len(conns) == 0 {
		return ""
	}
	if !p.directlyConnected(id) {
		return ViaRelayed
	}
	p.reach.mu.Lock()
	_, punched := p.reach.punched[id]
	p.reach.mu.Unlock()
	if punched {
		return ViaHolePunched
	}
	return ViaDirect
}

// ReachStatus is this node's reachability, for `entrepot status`.
type ReachStatus struct {
	// Public is true when a public address of this node is confirmed.
	Public bool `json:"public"`
	// Confirmed and Unconfirmed list the candidate external addresses.
	Confirmed   []string `json:"confirmed,omitempty"`
	Unconfirmed []string `json:"unconfirmed,omitempty"`
	// RelayService is true when this node relays for members.
	RelayService bool `json:"relay_service"`
	// Relays are the members holding a reservation for this node.
	Relays []string `json:"relays,omitempty"`
	// NAT is the router port mapping state (nil when NAT is off).
	NAT *NATStatus `json:"nat,omitempty"`
}

// Reachability returns this node's reachability state.
func (p *Host) Reachability() ReachStatus {
	r := p.reach
	var st ReachStatus
	r.mu.Lock()
	st.Public, st.RelayService = r.reachable, r.relay != nil
	for _, c := range r.cands {
		if c.confirmed {
			st.Confirmed = append(st.Confirmed, c.addr.String())
		} else {
			st.Unconfirmed = append(st.Unconfirmed, c.addr.String())
		}
	}
	for id := range r.rsv {
		st.Relays = append(st.Relays, id.String())
	}
	r.mu.Unlock()
	sort.Strings(st.Confirmed)
	sort.Strings(st.Unconfirmed)
	sort.Strings(st.Relays)
	if p.nat != nil {
		ns := p.NATStatus()
		st.NAT = &ns
	}
	return st
}
