package netlab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Router is a NAT router namespace: wan0 towards the internet (or the
// carrier), bridge lan0 towards its servers, nftables masquerade and a
// stateful firewall dropping unsolicited inbound, optionally miniupnpd.
type Router struct {
	*Host
	// WANPrefix is the prefix of the router's WAN link.
	WANPrefix netip.Prefix
	// LANAddr is the router's LAN address (the servers' gateway).
	LANAddr netip.Addr
	// LAN is the LAN prefix.
	LAN netip.Prefix

	home   *Home
	upnp   UPnPMode
	natpmp bool
	stun   bool // use the STUN workaround (WAN address is "public")

	symmetric bool // endpoint-dependent mapping

	mu       sync.Mutex
	soapPort int
	cmd      *exec.Cmd
	log      *lockedBuffer
	done     chan struct{}
}

// UPnP reports the router's UPnP IGD mode.
func (r *Router) UPnP() UPnPMode { return r.upnp }

// SymmetricNAT reports whether the router's NAT is endpoint-dependent.
func (r *Router) SymmetricNAT() bool { return r.symmetric }

// NATPMP reports whether the router answers NAT-PMP.
func (r *Router) NATPMP() bool { return r.natpmp }

// SOAPPort is miniupnpd's current HTTP (SOAP and description) port.
func (r *Router) SOAPPort() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.soapPort
}

// RootDescURL is the IGD description URL on the LAN side.
func (r *Router) RootDescURL() string {
	return fmt.Sprintf("http://%s:%d/rootDesc.xml", r.LANAddr, r.SOAPPort())
}

// ruleset is the router's nftables configuration. Table inet filter holds
// the empty chains miniupnpd 2.3.1 fills (it never creates them).
func (r *Router) ruleset() string {
	masq := "masquerade"
	if r.symmetric {
		masq = "masquerade random,fully-random"
	}
	return `table inet fw {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		ct state invalid drop
		iifname "lan0" accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan0" oifname "wan0" accept
		ct status dnat accept
	}
}
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" ` + masq + `
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority filter - 1; policy accept;
		iifname "wan0" jump miniupnpd
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority srcnat - 1; policy accept;
		jump postrouting_miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
`
}

func (r *Router) nft(ctx context.Context, script string) ([]byte, error) {
	cmd := r.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("nft in %s: %w: %s", r.Name, err, bytes.TrimSpace(out))
	}
	return out, nil
}

func (r *Router) loadRuleset(ctx context.Context) error {
	_, err := r.nft(ctx, r.ruleset())
	return err
}

// Forward adds a static port forward (like a manual rule in a router's web
// UI): proto ("tcp" or "udp") traffic to the router's WAN address on
// extPort goes to "to".
func (r *Router) Forward(ctx context.Context, proto string, extPort uint16, to netip.AddrPort) error {
	if proto != "tcp" && proto != "udp" {
		return fmt.Errorf("%w: protocol %q", ErrConfig, proto)
	}
	_, err := r.nft(ctx, fmt.Sprintf("add rule ip nat prerouting iifname \"wan0\" %s dport %d dnat to %s\n", proto, extPort, to))
	return err
}

// Mapping is one port mapping installed by miniupnpd (UPnP or NAT-PMP).
type Mapping struct {
	Proto        string // "tcp" or "udp"
	ExternalPort uint16
	Internal     netip.AddrPort
}

// Mappings reads the router's current miniupnpd port mappings from its
// nftables ruleset (chain prerouting_miniupnpd).
func (r *Router) Mappings(ctx context.Context) ([]Mapping, error) {
	out, err := r.Run(ctx, "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
	if err != nil {
		return nil, err
	}
	return parseMappings(string(out))
}

// parseMappings parses `nft list chain` output of miniupnpd's DNAT chain.
// Lines look like
//
//	iif "wan0" @nh,72,8 0x6 th dport 9000 dnat ip to 192.168.11.10:9000
//
// (protocol 0x6 tcp, 0x11 udp; newer nft may print "meta l4proto tcp").
func parseMappings(out string) ([]Mapping, error) {
	var ms []Mapping
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		dn := indexOf(f, "dnat")
		if dn < 0 {
			continue
		}
		var m Mapping
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "@nh,72,8":
				switch f[i+1] {
				case "0x6", "6":
					m.Proto = "tcp"
				case "0x11", "17":
					m.Proto = "udp"
				}
			case "l4proto", "protocol":
				if f[i+1] == "tcp" || f[i+1] == "udp" {
					m.Proto = f[i+1]
				}
			case "tcp", "udp":
				if f[i+1] == "dport" {
					m.Proto = f[i]
				}
			case "dport":
				p, err := strconv.ParseUint(f[i+1], 10, 16)
				if err != nil {
					return nil, fmt.Errorf("parse mapping %q: port: %w", sc.Text(), err)
				}
				m.ExternalPort = uint16(p)
			case "to":
				ap, err := netip.ParseAddrPort(f[i+1])
				if err != nil {
					return nil, fmt.Errorf("parse mapping %q: target: %w", sc.Text(), err)
				}
				m.Internal = ap
			}
		}
		if m.Proto == "" || m.ExternalPort == 0 || !m.Internal.IsValid() {
			return nil, fmt.Errorf("parse mapping %q: incomplete", sc.Text())
		}
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

func indexOf(f []string, s string) int {
	for i, x := range f {
		if x == s {
			return i
		}
	}
	return -1
}

func (r *Router) confPath() string {
	return filepath.Join(r.lab.StateDir, "miniupnpd-"+r.Name+".conf")
}

func (r *Router) config(port int) string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ext_ifname=wan0\nlistening_ip=lan0\nhttp_port=%d\n", port)
	fmt.Fprintf(&b, "enable_upnp=%s\nenable_natpmp=%s\n", yes(r.upnp != UPnPNone), yes(r.natpmp))
	fmt.Fprintf(&b, "ipv6_disable=yes\nsecure_mode=yes\nsystem_uptime=no\nnotify_interval=30\n")
	fmt.Fprintf(&b, "force_igd_desc_v1=%s\n", yes(r.upnp == IGDv1))
	fmt.Fprintf(&b, "lease_file=%s\n", filepath.Join(r.lab.StateDir, "miniupnpd-"+r.Name+".leases"))
	fmt.Fprintf(&b, "uuid=%08x-%04x-4000-8000-%012x\n", r.home.Index, port, os.Getpid())
	fmt.Fprintf(&b, "friendly_name=netlab %s router %s\n", r.lab.Prefix, r.Name)
	if r.stun {
		fmt.Fprintf(&b, "ext_perform_stun=yes\next_stun_host=%s\next_stun_port=%d\n", InternetAddr, STUNPort)
	}
	fmt.Fprintf(&b, "allow 1024-65535 %s 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n", r.LAN)
	return b.String()
}

// UPnPRunning reports whether miniupnpd is running on the router.
func (r *Router) UPnPRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// UPnPLog returns miniupnpd's output so far (current or last run).
func (r *Router) UPnPLog() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.log == nil {
		return ""
	}
	return r.log.String()
}

// StartUPnP starts miniupnpd on the router's current SOAP port and waits
// until it serves (and, with the STUN workaround, until "Port forwarding
// is now enabled"). ErrNoUPnP if the router has neither UPnP nor NAT-PMP.
func (r *Router) StartUPnP(ctx context.Context) error {
	if r.upnp == UPnPNone && !r.natpmp {
		return ErrNoUPnP
	}
	r.mu.Lock()
	if r.done != nil {
		select {
		case <-r.done:
		default:
			r.mu.Unlock()
			return fmt.Errorf("start miniupnpd in %s: already running", r.Name)
		}
	}
	port := r.soapPort
	if port == 0 {
		port = 5000
		r.soapPort = port
	}
	if err := os.WriteFile(r.confPath(), []byte(r.config(port)), 0o644); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("write miniupnpd config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(r.lab.StateDir, "miniupnpd-"+r.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("open miniupnpd log: %w", err)
	}
	buf := &lockedBuffer{file: logf}
	// Not CommandContext: the daemon outlives ctx, which only bounds the start.
	cmd := r.Command(context.Background(), "miniupnpd", "-f", r.confPath(),
		"-P", filepath.Join(r.lab.StateDir, "miniupnpd-"+r.Name+".pid"), "-d")
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		logf.Close()
		return fmt.Errorf("start miniupnpd in %s: %w", r.Name, err)
	}
	done := make(chan struct{})
	r.cmd, r.log, r.done = cmd, buf, done
	r.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()

	want := []string{}
	if r.upnp != UPnPNone {
		want = append(want, fmt.Sprintf("HTTP listening on port %d", port))
	}
	if r.stun {
		want = append(want, "Port forwarding is now enabled")
	} else {
		want = append(want, "Port forwarding is impossible")
	}
	if r.natpmp {
		want = append(want, "Listening for NAT-PMP")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s := buf.String()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("miniupnpd in %s exited during start: %s", r.Name, s)
		case <-ctx.Done():
			return fmt.Errorf("miniupnpd in %s not ready (want %q): %w: %s", r.Name, want, ctx.Err(), s)
		case <-tick.C:
		}
	}
}

// StopUPnP stops miniupnpd with SIGTERM (SIGKILL after 3 s). Its DNAT
// rules and lease file stay, as on a real router.
func (r *Router) StopUPnP() error { return r.signalUPnP(syscall.SIGTERM) }

// KillUPnP kills miniupnpd with SIGKILL (a crash).
func (r *Router) KillUPnP() error { return r.signalUPnP(syscall.SIGKILL) }

func (r *Router) signalUPnP(sig syscall.Signal) error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return ErrNoUPnP
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(3 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-done
	return nil
}

// RestartUPnP stops miniupnpd and starts it again on a new SOAP port (the
// "router rebooted and its UPnP URL moved" case). With flush, the
// mappings (nft chains and lease file) are dropped too, as on a reboot.
func (r *Router) RestartUPnP(ctx context.Context, flush bool) error {
	if err := r.StopUPnP(); err != nil {
		return err
	}
	if flush {
		if err := r.FlushMappings(ctx); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.soapPort++
	r.mu.Unlock()
	return r.StartUPnP(ctx)
}

// FlushMappings empties miniupnpd's chains and removes its lease file.
func (r *Router) FlushMappings(ctx context.Context) error {
	_, err := r.nft(ctx, "flush chain inet filter miniupnpd\nflush chain inet filter prerouting_miniupnpd\nflush chain inet filter postrouting_miniupnpd\n")
	if err != nil {
		return err
	}
	err = os.Remove(filepath.Join(r.lab.StateDir, "miniupnpd-"+r.Name+".leases"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove lease file: %w", err)
	}
	return nil
}

// lockedBuffer keeps a daemon's output in memory and in a file.
type lockedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	file *os.File
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	_, _ = b.file.Write(p)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
