package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/entrepot/entrepot/natpunch"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	tcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrNoSecret is returned when a host is created without a cluster secret.
var ErrNoSecret = errors.New("p2p: a cluster secret is required: members only, no open network")

// Config configures the host. Zero values take the documented defaults.
type Config struct {
	// IdentityFile holds the node's ed25519 key (required; created 0600 on first start).
	IdentityFile string
	// Secret is the private-network key from ParseSecret (required).
	Secret pnet.PSK
	// ListenAddrs are libp2p multiaddrs (default /ip4/0.0.0.0/tcp/3901).
	ListenAddrs []string
	// AnnounceAddrs are extra addresses to advertise (for example a forwarded public address).
	AnnounceAddrs []string
	// Bootstrap are member addresses with /p2p/<id> (optional).
	Bootstrap []string
	// PeerListFile persists known members and their addresses ("" = not persisted).
	PeerListFile string
	// MDNS enables LAN discovery (default off; the daemon turns it on).
	MDNS bool
	// Namespace prefixes the DHT protocols and names the mDNS service (default "entrepot").
	Namespace string
	// PingInterval is the liveness period (default 15 s); a peer is reported
	// down after 4 missed pings, like Garage, so a home uplink hiccup does not flap.
	PingInterval time.Duration
	// ReconnectInterval is how often unreachable known members are retried (default 30 s).
	ReconnectInterval time.Duration
	// Logger receives the host's and libp2p's logs (nil = discard).
	Logger *slog.Logger
	// Registerer receives libp2p and p2p metrics (nil = none).
	Registerer prometheus.Registerer
	// ExtraOptions are appended to the libp2p options (tests: connection gaters).
	ExtraOptions []libp2p.Option

	// NAT turns on router port mapping (UPnP IGD, NAT-PMP, PCP) of the TCP
	// listen port(s) through natpunch, as the host's NAT manager; nil = off.
	// Empty NodeID, Logger, Registerer and PublicPrefixes are filled in
	// (PublicPrefixes from LabPublicPrefixes in a lab build).
	NAT *natpunch.Config
	// Expose lists other TCP ports (S3, web) to map on the router too; needs NAT.
	Expose []ExposedPort
	// RelayService: RelayAuto (default) runs a circuit relay for members,
	// without the 2 min / 128 KiB per-connection cap, once a public address
	// of this node is confirmed by a member; RelayOn / RelayOff force it.
	RelayService RelayMode
	// UseRelays: RelayAuto (default) holds reservations on up to two
	// relaying members while no public address is confirmed, and
	// advertises the circuit addresses; RelayOn / RelayOff force it.
	UseRelays RelayMode
	// DisableHolePunching turns DCUtR off (default on).
	DisableHolePunching bool
	// ReachabilityInterval is how often candidate addresses are checked,
	// relays maintained and relayed links retried directly (default 15 s).
	ReachabilityInterval time.Duration
}

// Host is the node's libp2p host plus discovery and liveness.
type Host struct {
	cfg     Config
	log     *slog.Logger
	started time.Time // New was called: the origin of the since_start log fields
	h       host.Host
	kad     *dht.IpfsDHT
	mdns    mdns.Service
	boot    []peer.AddrInfo

	nat      *natManager // nil when NAT is off
	db       *dialbacker
	reach    *reachState
	announce []ma.Multiaddr
	identSub event.Subscription // identify completed with a member
	addrSub  event.Subscription // our advertised addresses changed
	nudger   *addrsNudger       // recomputes the advertised addresses now

	announcing sync.WaitGroup // announceConfirmed rounds in flight
	newPeer    chan struct{}  // poked on identify (capacity 1)

	mu sync.Mutex
	// saveNow asks Run to persist the peer list (a member seen for the first
	// time), so a node killed soon after joining still knows its peers.
	saveNow chan struct{}
	peers   map[peer.ID]*peerState

	closeOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
}

type peerState struct {
	lastSeen time.Time
	rtt      time.Duration
	failures int
}

// PeerStatus is what `entrepot status` shows about a member.
type PeerStatus struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Connected bool     `json:"connected"`
	Relayed   bool     `json:"relayed"`
	// Via is how the member is reached now: ViaDirect, ViaHolePunched,
	// ViaRelayed, or "" when not connected.
	Via      string        `json:"via,omitempty"`
	RTT      time.Duration `json:"rtt_ns"`
	LastSeen time.Time     `json:"last_seen"`
	Up       bool          `json:"up"`
}

// New builds and starts the host: listeners are open when it returns.
// Call Run for discovery and liveness, Close to stop.
func New(ctx context.Context, cfg Config) (*Host, error) {
	started := time.Now()
	if len(cfg.Secret) != 32 {
		return nil, ErrNoSecret
	}
	if cfg.IdentityFile == "" {
		return nil, errors.New("p2p: IdentityFile is required")
	}
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/3901"}
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "entrepot"
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = 30 * time.Second
	}
	if cfg.ReachabilityInterval <= 0 {
		cfg.ReachabilityInterval = 15 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "p2p")
	if err := applyLabPrefix(log); err != nil {
		return nil, err
	}
	key, err := LoadOrCreateIdentity(cfg.IdentityFile)
	if err != nil {
		return nil, err
	}
	boot, err := parseAddrInfos(cfg.Bootstrap)
	if err != nil {
		return nil, fmt.Errorf("rpc.bootstrap: %w", err)
	}
	var announce []ma.Multiaddr
	for _, s := range cfg.AnnounceAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("announce address %q: %w", s, err)
		}
		announce = append(announce, a)
	}
	limiter := rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale())
	rm, err := rcmgr.NewResourceManager(limiter, rcmgr.WithConnRateLimiters(connRateLimiter()))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.PrivateNetwork(cfg.Secret),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent("entrepot"),
	}
	if cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	reach := newReachState()
	opts = append(opts, libp2p.AddrsFactory(reach.factory(announce)))
	if !cfg.DisableHolePunching {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(reach)))
	}
	var nat *natManager
	if cfg.NAT != nil {
		nc := *cfg.NAT
		if nc.NodeID == "" {
			if id, err := peer.IDFromPrivateKey(key); err == nil {
				nc.NodeID = id.String()
			}
		}
		if nc.Logger == nil {
			nc.Logger = cfg.Logger
		}
		if nc.Registerer == nil {
			nc.Registerer = cfg.Registerer
		}
		if nc.PublicPrefixes == nil {
			nc.PublicPrefixes = LabPublicPrefixes()
		}
		c, err := natpunch.New(nc)
		if err != nil {
			rm.Close()
			return nil, fmt.Errorf("nat: %w", err)
		}
		nat = newNATManager(c, cfg.Expose, log, started)
		opts = append(opts, libp2p.NATManager(nat.attach))
	}
	opts = append(opts, cfg.ExtraOptions...)
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		if nat != nil {
			_ = nat.Close()
		}
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	kad, err := dht.New(h,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(protocol.ID("/"+cfg.Namespace)),
		dht.BootstrapPeers(boot...),
	)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("start dht: %w", err)
	}
	p := &Host{cfg: cfg, log: log, started: started, h: h, kad: kad, boot: boot, peers: map[peer.ID]*peerState{}, done: make(chan struct{}),
		nat: nat, reach: reach, announce: announce, newPeer: make(chan struct{}, 1), saveNow: make(chan struct{}, 1),
		db: newDialbacker(cfg.Secret, key, cfg.Namespace)}
	p.db.reached = p.dialedBack
	h.SetStreamHandler(p.db.proto, p.db.handle)
	// Identify, not the connection, tells whether a member serves dial-back.
	p.identSub, err = h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		_ = kad.Close()
		_ = h.Close()
		return nil, fmt.Errorf("subscribe to identify events: %w", err)
	}
	p.addrSub, err = h.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		_ = p.identSub.Close()
		_ = kad.Close()
		_ = h.Close()
		return nil, fmt.Errorf("subscribe to address events: %w", err)
	}
	go p.watchAdvertised(p.addrSub)
	if p.nudger, err = newAddrsNudger(h.EventBus()); err != nil {
		_ = p.addrSub.Close()
		_ = p.identSub.Close()
		_ = kad.Close()
		_ = h.Close()
		return nil, fmt.Errorf("address update emitter: %w", err)
	}
	go func() { // drained at once so identify never waits on us
		for range p.identSub.Out() {
			select {
			case p.newPeer <- struct{}{}:
			default:
			}
		}
	}()
	if cfg.PeerListFile != "" {
		if err := p.loadPeerList(); err != nil {
			log.Warn("peer list not loaded", "err", err)
		}
	}
	for _, b := range boot {
		h.Peerstore().AddAddrs(b.ID, b.Addrs, time.Hour)
		p.known(b.ID)
	}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		p.seen(c.RemotePeer(), 0)
	}})
	log.Info("libp2p host started", "peer_id", h.ID().String(), "addrs", h.Addrs())
	return p, nil
}

// ID is this node's peer ID.
func (p *Host) ID() peer.ID { return p.h.ID() }

// Libp2p exposes the underlying host to the rpc layer (stream handlers, dials).
func (p *Host) Libp2p() host.Host { return p.h }

// Addrs returns this node's addresses with /p2p/<id>, for other nodes' bootstrap lists.
func (p *Host) Addrs() []string {
	var out []string
	for _, a := range p.h.Addrs() {
		out = append(out, a.String()+"/p2p/"+p.h.ID().String())
	}
	return out
}

// Run discovers and watches members until ctx ends or Close is called.
func (p *Host) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	defer close(p.done)
	defer cancel()
	if p.cfg.MDNS {
		p.mdns = mdns.NewMdnsService(p.h, p.cfg.Namespace, &mdnsNotifee{p: p, ctx: ctx})
		if err := p.mdns.Start(); err != nil {
			p.log.Warn("mdns not started", "err", err)
			p.mdns = nil
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.runReach(ctx)
	}()
	p.reconnect(ctx)
	if err := p.kad.Bootstrap(ctx); err != nil {
		p.log.Warn("dht bootstrap", "err", err)
	}
	pingT := time.NewTicker(p.cfg.PingInterval)
	reT := time.NewTicker(p.cfg.ReconnectInterval)
	saveT := time.NewTicker(time.Minute)
	defer pingT.Stop()
	defer reT.Stop()
	defer saveT.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pingT.C:
			p.pingAll(ctx)
		case <-reT.C:
			p.reconnect(ctx)
		case <-saveT.C:
			p.savePeerListLogged()
		case <-p.saveNow:
			p.savePeerListLogged()
		}
	}
}

// Close stops discovery, saves the peer list and closes the host.
func (p *Host) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		cancel := p.cancel
		p.mu.Unlock()
		if cancel != nil {
			cancel()
			<-p.done
		}
		if p.mdns != nil {
			p.mdns.Close()
		}
		p.savePeerListLogged()
		var errs []error
		p.reach.mu.Lock()
		rl := p.reach.relay
		p.reach.relay = nil
		p.reach.mu.Unlock()
		if rl != nil {
			errs = append(errs, rl.Close())
		}
		if p.nat != nil {
			// Remove the router mappings before the listeners close.
			errs = append(errs, p.nat.Close())
		}
		errs = append(errs, p.identSub.Close(), p.addrSub.Close(), p.nudger.Close(), p.kad.Close(), p.h.Close())
		err = errors.Join(errs...)
	})
	return err
}

// Connect dials a member by address info, remembering it.
func (p *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := p.h.Connect(ctx, ai); err != nil {
		return fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	p.known(ai.ID)
	return nil
}

// FindAndConnect locates a member through the DHT (its home IP may have changed) and dials it.
func (p *Host) FindAndConnect(ctx context.Context, id peer.ID) error {
	if p.h.Network().Connectedness(id) == network.Connected {
		return nil
	}
	direct := p.h.Connect(ctx, peer.AddrInfo{ID: id})
	if direct == nil {
		return nil
	}
	ai, err := p.kad.FindPeer(ctx, id)
	if err != nil {
		return fmt.Errorf("find %s: %w (dial at known addresses: %v)", id, err, direct)
	}
	return p.Connect(ctx, ai)
}

// Peers lists every known member, sorted by ID.
func (p *Host) Peers() []PeerStatus {
	p.mu.Lock()
	ids := make([]peer.ID, 0, len(p.peers))
	states := map[peer.ID]peerState{}
	for id, s := range p.peers {
		ids = append(ids, id)
		states[id] = *s
	}
	p.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]PeerStatus, 0, len(ids))
	for _, id := range ids {
		s := states[id]
		st := PeerStatus{ID: id.String(), RTT: s.rtt, LastSeen: s.lastSeen, Up: s.failures < 4 && !s.lastSeen.IsZero()}
		for _, a := range p.h.Peerstore().Addrs(id) {
			st.Addrs = append(st.Addrs, a.String())
		}
		st.Via = p.via(id)
		st.Connected = st.Via != ""
		st.Relayed = st.Via == ViaRelayed
		// A connection alone does not make a member up: after a WAN cut
		// the dead TCP connection lingers while pings fail.
		if st.Connected && s.failures == 0 {
			st.Up = true
		}
		out = append(out, st)
	}
	return out
}

func (p *Host) known(id peer.ID) {
	if id == p.h.ID() {
		return
	}
	p.mu.Lock()
	if _, ok := p.peers[id]; !ok {
		p.peers[id] = &peerState{}
	}
	p.mu.Unlock()
}

func (p *Host) seen(id peer.ID, rtt time.Duration) {
	if id == p.h.ID() {
		return
	}
	p.mu.Lock()
	s, ok := p.peers[id]
	if !ok {
		s = &peerState{}
		p.peers[id] = s
	}
	if s.lastSeen.IsZero() { // first contact since start
		select {
		case p.saveNow <- struct{}{}:
		default:
		}
	}
	s.lastSeen = time.Now()
	s.failures = 0
	if rtt > 0 {
		s.rtt = rtt
	}
	p.mu.Unlock()
}

// pingAll pings every connected peer concurrently. A ping times out after
// two intervals (2 s to 10 s), so a silent peer collects its 4 failures in
// about 4 intervals even while its dead TCP connection lingers.
func (p *Host) pingAll(ctx context.Context) {
	timeout := min(max(2*p.cfg.PingInterval, 2*time.Second), 10*time.Second)
	var wg sync.WaitGroup
	for _, id := range p.h.Network().Peers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			res, ok := <-ping.Ping(pctx, p.h, id)
			cancel()
			if !ok {
				// ping.Ping closes its channel without a result when the
				// context ends first: a timeout, not a success.
				res.Error = fmt.Errorf("no answer within %v", timeout)
			}
			if res.Error != nil {
				p.mu.Lock()
				n := -1
				if s, ok := p.peers[id]; ok {
					s.failures++
					n = s.failures
				}
				p.mu.Unlock()
				p.log.Debug("ping failed", "peer", id.String(), "failures", n, "err", res.Error)
				return
			}
			p.seen(id, res.RTT)
		}()
	}
	wg.Wait()
}

func (p *Host) reconnect(ctx context.Context) {
	p.mu.Lock()
	var ids []peer.ID
	for id := range p.peers {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		if p.h.Network().Connectedness(id) == network.Connected {
			continue
		}
		wg.Add(1)
		go func(id peer.ID) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := p.FindAndConnect(cctx, id); err != nil {
				p.mu.Lock()
				if s, ok := p.peers[id]; ok {
					s.failures++
				}
				p.mu.Unlock()
				p.log.Debug("member unreachable", "peer", id.String(), "err", err)
			}
		}(id)
	}
	wg.Wait()
}

type mdnsNotifee struct {
	p   *Host
	ctx context.Context
}

func (n *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.p.h.ID() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		// A LAN device that is not a member fails the private-network handshake here.
		if err := n.p.Connect(ctx, ai); err != nil {
			n.p.log.Debug("mdns peer not connected", "peer", ai.ID.String(), "err", err)
		}
	}()
}

func parseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%q must end with /p2p/<peer id>: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// connRateLimiter bounds new connections per source address. libp2p's
// default (0.2/s per IPv4 address after a burst of 16) suits a public
// network; here several members can share one home's public address, and
// after a restart every member redials at once, so the default refused a
// restarted node for 15–87 s in the NAT lab. The limits stay (a non-member
// can still open TCP connections before the private-network handshake fails)
// at five times the default rate, with a burst of 64 per address.
func connRateLimiter() *rate.Limiter {
	return &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Prefix: netip.MustParsePrefix("::1/128")},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: 1, Burst: 64}}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: 1, Burst: 64}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 2.5, Burst: 320}},
			},
			GracePeriod: time.Minute,
		},
	}
}
