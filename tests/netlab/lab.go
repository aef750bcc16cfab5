package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BasePrefix starts the name of every namespace any lab creates. A lab's
// own prefix is BasePrefix-<pid>-<random>, so labs of concurrent test
// processes never collide and a crashed run's leftovers can be recognised
// (their pid is dead) and swept by the next New.
const BasePrefix = "entnl"

// Fixed addresses of the lab. Every lab uses the same ones: namespaces
// isolate labs from each other and from the host.
var (
	// WANPrefix is the lab's "internet". Routers' WAN addresses, the
	// internet namespace and the WAN client live here. It is private
	// (inside 10/8); see the package documentation for how the p2p layer
	// is told to treat it as public inside the lab.
	WANPrefix = netip.MustParsePrefix("10.77.0.0/24")
	// InternetAddr is the internet namespace's own address (bridge br0):
	// routers' default gateway and the STUN responder.
	InternetAddr = netip.MustParseAddr("10.77.0.254")
	// ClientAddr is the WAN client's address.
	ClientAddr = netip.MustParseAddr("10.77.0.100")
	// CGNATPrefix holds the links between a double-NAT home's carrier
	// router and its home router: 100.64.<home>.0/24 (RFC 6598).
	CGNATPrefix = netip.MustParsePrefix("100.64.0.0/16")
)

// STUNPort is the UDP port of the internet namespace's STUN responder.
const STUNPort = 3478

// Errors returned by the lab.
var (
	ErrNotRoot     = errors.New("netlab: must run as root")
	ErrMissingTool = errors.New("netlab: required tool missing")
	ErrConfig      = errors.New("netlab: invalid config")
	ErrNoUPnP      = errors.New("netlab: router runs no miniupnpd")
	ErrNotShaped   = errors.New("netlab: home was built with an unshaped link")
)

// UPnPMode selects the router's UPnP IGD flavour.
type UPnPMode int

// UPnP modes.
const (
	UPnPNone UPnPMode = iota // no UPnP IGD (NAT-PMP may still be on)
	IGDv1                    // miniupnpd with force_igd_desc_v1=yes
	IGDv2                    // miniupnpd advertising InternetGatewayDevice:2
)

func (m UPnPMode) String() string {
	switch m {
	case UPnPNone:
		return "none"
	case IGDv1:
		return "IGDv1"
	case IGDv2:
		return "IGDv2"
	}
	return "UPnPMode(" + strconv.Itoa(int(m)) + ")"
}

// HomeConfig describes one home.
type HomeConfig struct {
	// Servers is the number of servers on the LAN (default 1, at most 9),
	// named h<home><a..i> with addresses 192.168.<10+home>.<10+k>.
	Servers int
	// UPnP selects the router's UPnP IGD (default none).
	UPnP UPnPMode
	// NATPMP enables NAT-PMP/PCP on the router.
	NATPMP bool
	// DoubleNAT puts the home router behind a carrier (CGNAT) router: the
	// home router's WAN address is 100.64.<home>.2 and its miniupnpd,
	// if any, runs without the STUN workaround, so it reports the
	// double-NAT signature (empty external IP, 501, NAT-PMP result 3).
	DoubleNAT bool
	// SymmetricNAT makes the home router's NAT endpoint-dependent
	// (masquerade fully-random: every flow gets a random external port),
	// the NAT type hole punching cannot traverse. Default: port-preserving
	// endpoint-independent mapping, like most home routers.
	SymmetricNAT bool
	// Link shapes the home's access link (zero value: unshaped).
	Link LinkConfig
}

// Config describes a lab.
type Config struct {
	// Homes lists the homes; home i (1-based) gets router r<i>, WAN
	// address 10.77.0.<10+i> and LAN 192.168.<10+i>.0/24.
	Homes []HomeConfig
	// Prefix overrides the namespace prefix (default
	// BasePrefix-<pid>-<random>). Leftovers with the same prefix are
	// swept at start.
	Prefix string
	// StateDir holds miniupnpd configs, logs, pid and lease files
	// (default: a new temporary directory, removed by Close).
	StateDir string
	// Logger receives progress messages (nil: discard).
	Logger *slog.Logger
}

// Lab is a running home-network lab.
type Lab struct {
	// Prefix is this lab's namespace prefix.
	Prefix string
	// StateDir holds per-router files.
	StateDir string
	// Internet is the internet namespace (bridge br0, 10.77.0.254).
	Internet *Host
	// Client is the WAN client (10.77.0.100), for WAN-side access.
	Client *Host
	// Homes are the homes, Homes[i] being home i+1.
	Homes []*Home
	// SetupTime is how long New took.
	SetupTime time.Duration

	log        *slog.Logger
	ownState   bool
	stun       *stunServer
	mu         sync.Mutex
	wires      []*wire
	namespaces []string
	closed     bool
}

// Home is one home: a router, its servers, optionally a carrier router.
type Home struct {
	// Index is the home's 1-based number.
	Index int
	// Name is "home<Index>".
	Name string
	// Config is the configuration the home was built from.
	Config HomeConfig
	// Router is the home router (its LAN is LAN).
	Router *Router
	// Carrier is the CGNAT router in front of Router for a double-NAT
	// home, nil otherwise.
	Carrier *Router
	// Servers are the LAN hosts.
	Servers []*Host
	// LAN is the home's LAN prefix.
	LAN netip.Prefix
	// PublicAddr is the home's address on the WAN (the carrier's for a
	// double-NAT home).
	PublicAddr netip.Addr

	lab  *Lab
	wire *wire
}

func (c *Config) validate() error {
	if len(c.Homes) == 0 || len(c.Homes) > 16 {
		return fmt.Errorf("%w: need 1..16 homes, got %d", ErrConfig, len(c.Homes))
	}
	for i, h := range c.Homes {
		if h.Servers < 0 || h.Servers > 9 {
			return fmt.Errorf("%w: home %d: servers %d not in 0..9", ErrConfig, i+1, h.Servers)
		}
		if h.UPnP < UPnPNone || h.UPnP > IGDv2 {
			return fmt.Errorf("%w: home %d: bad UPnP mode %d", ErrConfig, i+1, h.UPnP)
		}
		if err := h.Link.validate(); err != nil {
			return fmt.Errorf("%w: home %d: %w", ErrConfig, i+1, err)
		}
	}
	if c.Prefix != "" && (strings.ContainsAny(c.Prefix, "/ \t\n") || len(c.Prefix) > 40) {
		return fmt.Errorf("%w: bad prefix %q", ErrConfig, c.Prefix)
	}
	return nil
}

// New builds a lab. It needs root and the tools CheckTools lists; it
// sweeps leftovers of crashed labs first. On error everything created so
// far is removed. Call Close when done (NewT does it with t.Cleanup).
func New(ctx context.Context, cfg Config) (*Lab, error) {
	start := time.Now()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if missing := MissingTools(); len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingTool, strings.Join(missing, ", "))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	prefix := cfg.Prefix
	if prefix == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("random prefix: %w", err)
		}
		prefix = fmt.Sprintf("%s-%d-%s", BasePrefix, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if err := Sweep(ctx, prefix, log); err != nil {
		return nil, fmt.Errorf("sweep leftovers: %w", err)
	}
	l := &Lab{Prefix: prefix, StateDir: cfg.StateDir, log: log}
	if l.StateDir == "" {
		d, err := os.MkdirTemp("", prefix+"-")
		if err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
		l.StateDir, l.ownState = d, true
	} else if err := os.MkdirAll(l.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	if err := l.build(ctx, cfg); err != nil {
		cerr := l.Close()
		return nil, errors.Join(fmt.Errorf("build lab: %w", err), cerr)
	}
	l.SetupTime = time.Since(start)
	log.Info("netlab up", "prefix", prefix, "homes", len(l.Homes), "setup", l.SetupTime)
	return l, nil
}

func (l *Lab) host(name string, addr, gw netip.Addr) *Host {
	h := &Host{Name: name, NS: l.Prefix + "-" + name, Addr: addr, Gateway: gw, lab: l}
	l.namespaces = append(l.namespaces, h.NS)
	return h
}

// nsBatch collects `ip` batch lines per namespace.
type nsBatch struct {
	order []*Host
	lines map[*Host][]string
}

func (b *nsBatch) add(h *Host, format string, args ...any) {
	if b.lines == nil {
		b.lines = map[*Host][]string{}
	}
	if _, ok := b.lines[h]; !ok {
		b.order = append(b.order, h)
	}
	b.lines[h] = append(b.lines[h], fmt.Sprintf(format, args...))
}

func (l *Lab) build(ctx context.Context, cfg Config) error {
	l.Internet = l.host("wan", InternetAddr, netip.Addr{})
	l.Client = l.host("client", ClientAddr, netip.Addr{})
	for i, hc := range cfg.Homes {
		idx := i + 1
		if hc.Servers == 0 {
			hc.Servers = 1
		}
		home := &Home{Index: idx, Name: fmt.Sprintf("home%d", idx), Config: hc, lab: l,
			LAN:        netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(10 + idx), 0}), 24),
			PublicAddr: netip.AddrFrom4([4]byte{10, 77, 0, byte(10 + idx)}),
		}
		lanGW := netip.AddrFrom4([4]byte{192, 168, byte(10 + idx), 1})
		if hc.DoubleNAT {
			cgLAN := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, byte(idx), 0}), 24)
			cgGW := netip.AddrFrom4([4]byte{100, 64, byte(idx), 1})
			home.Carrier = &Router{Host: l.host(fmt.Sprintf("c%d", idx), home.PublicAddr, InternetAddr),
				WANPrefix: WANPrefix, LANAddr: cgGW, LAN: cgLAN, home: home}
			home.Router = &Router{Host: l.host(fmt.Sprintf("r%d", idx), netip.AddrFrom4([4]byte{100, 64, byte(idx), 2}), cgGW),
				WANPrefix: cgLAN, LANAddr: lanGW, LAN: home.LAN, home: home,
				upnp: hc.UPnP, natpmp: hc.NATPMP, symmetric: hc.SymmetricNAT}
		} else {
			home.Router = &Router{Host: l.host(fmt.Sprintf("r%d", idx), home.PublicAddr, InternetAddr),
				WANPrefix: WANPrefix, LANAddr: lanGW, LAN: home.LAN, home: home,
				upnp: hc.UPnP, natpmp: hc.NATPMP, stun: true, symmetric: hc.SymmetricNAT}
		}
		for k := 0; k < hc.Servers; k++ {
			name := fmt.Sprintf("h%d%c", idx, 'a'+k)
			home.Servers = append(home.Servers, l.host(name, netip.AddrFrom4([4]byte{192, 168, byte(10 + idx), byte(10 + k)}), lanGW))
		}
		l.Homes = append(l.Homes, home)
	}

	// 1. Namespaces, in one ip process.
	var b strings.Builder
	for _, ns := range l.namespaces {
		fmt.Fprintf(&b, "netns add %s\n", ns)
	}
	if err := runIP(ctx, "", b.String()); err != nil {
		return err
	}
	// 2. Sysctls, before any interface exists so defaults apply to them.
	for _, h := range l.allHosts() {
		_, isRouter := l.routerByNS(h.NS)
		if err := h.Do(func() error { return nsSysctls(isRouter) }); err != nil {
			return fmt.Errorf("sysctls in %s: %w", h.Name, err)
		}
	}
	// 3. Links, created straight into their namespaces (nothing lands in
	// the host namespace).
	b.Reset()
	wanNS := l.Internet.NS
	fmt.Fprintf(&b, "link add name cl netns %s type veth peer name eth0 netns %s\n", wanNS, l.Client.NS)
	cfgs := &nsBatch{}
	cfgs.add(l.Internet, "link set lo up")
	cfgs.add(l.Internet, "link add br0 type bridge")
	cfgs.add(l.Internet, "addr add %s/%d dev br0", InternetAddr, WANPrefix.Bits())
	cfgs.add(l.Internet, "link set br0 up")
	cfgs.add(l.Internet, "link set cl master br0")
	cfgs.add(l.Internet, "link set cl up")
	hostLines(cfgs, l.Client, ClientAddr, WANPrefix.Bits(), netip.Addr{})
	for _, home := range l.Homes {
		edge := home.Router
		if home.Carrier != nil {
			edge = home.Carrier
		}
		rn := fmt.Sprintf("r%d", home.Index)
		fmt.Fprintf(&b, "link add name %s netns %s type veth peer name wan0 netns %s\n", rn, wanNS, edge.NS)
		if home.Config.Link.shaped() {
			fmt.Fprintf(&b, "link add name %sx netns %s type veth peer name %sb netns %s\n", rn, wanNS, rn, wanNS)
			for _, ifc := range []string{rn, rn + "x"} {
				cfgs.add(l.Internet, "link set %s arp off", ifc)
				cfgs.add(l.Internet, "link set %s promisc on", ifc)
				cfgs.add(l.Internet, "link set %s up", ifc)
			}
			cfgs.add(l.Internet, "link set %sb master br0", rn)
			cfgs.add(l.Internet, "link set %sb up", rn)
		} else {
			cfgs.add(l.Internet, "link set %s master br0", rn)
			cfgs.add(l.Internet, "link set %s up", rn)
		}
		var lanPorts []string
		if home.Carrier != nil {
			fmt.Fprintf(&b, "link add name inner netns %s type veth peer name wan0 netns %s\n", home.Carrier.NS, home.Router.NS)
			routerLines(cfgs, home.Carrier, []string{"inner"})
		}
		for k, s := range home.Servers {
			port := fmt.Sprintf("p%c", 'a'+k)
			lanPorts = append(lanPorts, port)
			fmt.Fprintf(&b, "link add name %s netns %s type veth peer name eth0 netns %s\n", port, home.Router.NS, s.NS)
			hostLines(cfgs, s, s.Addr, 24, s.Gateway)
		}
		routerLines(cfgs, home.Router, lanPorts)
	}
	if err := runIP(ctx, "", b.String()); err != nil {
		return err
	}
	// 4. Per-namespace configuration, in parallel.
	errc := make(chan error, len(cfgs.order))
	for _, h := range cfgs.order {
		go func() { errc <- runIP(ctx, h.NS, strings.Join(cfgs.lines[h], "\n")+"\n") }()
	}
	var errs []error
	for range cfgs.order {
		errs = append(errs, <-errc)
	}
	// 5. Firewalls, in parallel.
	routers := l.routers()
	errc = make(chan error, len(routers))
	for _, r := range routers {
		go func() { errc <- r.loadRuleset(ctx) }()
	}
	for range routers {
		errs = append(errs, <-errc)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// 6. STUN responder (before miniupnpd), shaped links.
	shaped := 0
	for _, home := range l.Homes {
		if home.Config.Link.shaped() {
			shaped++
		}
	}
	if want := minProcs(shaped); shaped > 0 && runtime.GOMAXPROCS(0) < want {
		l.log.Info("netlab: raising GOMAXPROCS for the link shapers", "from", runtime.GOMAXPROCS(0), "to", want)
		runtime.GOMAXPROCS(want)
	}
	stun, err := startSTUN(l.Internet, netip.AddrPortFrom(InternetAddr, STUNPort))
	if err != nil {
		return err
	}
	l.stun = stun
	for _, home := range l.Homes {
		if !home.Config.Link.shaped() {
			continue
		}
		rn := fmt.Sprintf("r%d", home.Index)
		w, err := startWire(l.Internet, rn, rn+"x", home.Config.Link)
		if err != nil {
			return fmt.Errorf("shape %s: %w", home.Name, err)
		}
		home.wire = w
		l.mu.Lock()
		l.wires = append(l.wires, w)
		l.mu.Unlock()
	}
	// 7. miniupnpd, in parallel (each waits for its readiness line).
	errc = make(chan error, len(routers))
	n := 0
	for _, r := range routers {
		if r.upnp == UPnPNone && !r.natpmp {
			continue
		}
		n++
		r.soapPort = 5000
		go func() { errc <- r.StartUPnP(ctx) }()
	}
	for range n {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

func hostLines(b *nsBatch, h *Host, addr netip.Addr, bits int, gw netip.Addr) {
	b.add(h, "link set lo up")
	b.add(h, "addr add %s/%d dev eth0", addr, bits)
	b.add(h, "link set eth0 up")
	if gw.IsValid() {
		b.add(h, "route add default via %s", gw)
	}
}

func routerLines(b *nsBatch, r *Router, lanPorts []string) {
	b.add(r.Host, "link set lo up")
	b.add(r.Host, "link add lan0 type bridge")
	b.add(r.Host, "addr add %s/%d dev lan0", r.LANAddr, r.LAN.Bits())
	b.add(r.Host, "link set lan0 up")
	for _, p := range lanPorts {
		b.add(r.Host, "link set %s master lan0", p)
		b.add(r.Host, "link set %s up", p)
	}
	b.add(r.Host, "addr add %s/%d dev wan0", r.Addr, r.WANPrefix.Bits())
	b.add(r.Host, "link set wan0 up")
	b.add(r.Host, "route add default via %s", r.Gateway)
}

func nsSysctls(router bool) error {
	for _, kv := range [][2]string{
		{"net/ipv6/conf/all/disable_ipv6", "1"},
		{"net/ipv6/conf/default/disable_ipv6", "1"},
	} {
		if err := writeSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	// br_netfilter would send bridged frames through the router's forward
	// chain (policy drop); the lab filters at L3 only. Absent without
	// br_netfilter, which is fine.
	for _, k := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"} {
		if err := writeSysctl("net/bridge/"+k, "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if router {
		return writeSysctl("net/ipv4/ip_forward", "1")
	}
	return nil
}

// runIP runs `ip [-n ns] -batch -` with the given lines.
func runIP(ctx context.Context, ns, lines string) error {
	return runIPArgs(ctx, ns, lines, false)
}

// runIPArgs is runIP; with force, ip carries on after a failing line.
func runIPArgs(ctx context.Context, ns, lines string, force bool) error {
	args := []string{"-batch", "-"}
	if force {
		args = append([]string{"-force"}, args...)
	}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, toolPath("ip"), args...)
	cmd.Stdin = strings.NewReader(lines)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *Lab) allHosts() []*Host {
	hs := []*Host{l.Internet, l.Client}
	for _, home := range l.Homes {
		if home.Carrier != nil {
			hs = append(hs, home.Carrier.Host)
		}
		hs = append(hs, home.Router.Host)
		hs = append(hs, home.Servers...)
	}
	return hs
}

func (l *Lab) routers() []*Router {
	var rs []*Router
	for _, home := range l.Homes {
		if home.Carrier != nil {
			rs = append(rs, home.Carrier)
		}
		rs = append(rs, home.Router)
	}
	return rs
}

func (l *Lab) routerByNS(ns string) (*Router, bool) {
	for _, r := range l.routers() {
		if r.NS == ns {
			return r, true
		}
	}
	return nil, false
}

// Hosts returns every namespace of the lab (internet, client, routers,
// servers).
func (l *Lab) Hosts() []*Host { return l.allHosts() }

// Close stops every daemon, shaper and responder of the lab, kills any
// process left in its namespaces, deletes the namespaces (and with them
// every interface, nft table and qdisc) and removes an owned state dir.
// It is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	wires := l.wires
	l.mu.Unlock()
	var errs []error
	for _, r := range l.routers() {
		if err := r.StopUPnP(); err != nil && !errors.Is(err, ErrNoUPnP) {
			errs = append(errs, err)
		}
	}
	for _, w := range wires {
		w.close()
	}
	if l.stun != nil {
		l.stun.close()
	}
	// Anything users started with Command and left running.
	if err := removeNamespaces(context.Background(), l.namespaces, l.log); err != nil {
		errs = append(errs, err)
	}
	if l.ownState {
		if err := os.RemoveAll(l.StateDir); err != nil {
			errs = append(errs, fmt.Errorf("remove state dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// CutWAN unplugs the home's access link (the internet-side end of its WAN
// veth goes down, so the router sees no carrier). Traffic stops both ways.
func (h *Home) CutWAN(ctx context.Context) error {
	return runIP(ctx, h.lab.Internet.NS, fmt.Sprintf("link set r%d down\n", h.Index))
}

// RestoreWAN plugs the access link back in.
func (h *Home) RestoreWAN(ctx context.Context) error {
	return runIP(ctx, h.lab.Internet.NS, fmt.Sprintf("link set r%d up\n", h.Index))
}

// SetLink changes a shaped home's link settings while the lab runs
// (frames already queued keep their release times). ErrNotShaped if the
// home was built with a zero LinkConfig: such a link is a plain bridge
// port with no shaper.
func (h *Home) SetLink(cfg LinkConfig) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if h.wire == nil {
		return ErrNotShaped
	}
	h.wire.set(cfg)
	return nil
}

// Host returns the lab's namespace with the given role name ("wan",
// "client", "r1", "c4", "h1a", ...), or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.allHosts() {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// LinkStats returns the shaper's counters for the home (zero when the
// link is unshaped).
func (h *Home) LinkStats() LinkStats {
	if h.wire == nil {
		return LinkStats{}
	}
	return h.wire.stats()
}

// HomeOf returns the home a server or router belongs to (nil for the
// internet namespace and the WAN client).
func (l *Lab) HomeOf(h *Host) *Home {
	for _, home := range l.Homes {
		if home.Router.Host == h || (home.Carrier != nil && home.Carrier.Host == h) || slices.Contains(home.Servers, h) {
			return home
		}
	}
	return nil
}
