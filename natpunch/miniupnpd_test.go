package natpunch

// A real check against miniupnpd 2.3.1 (Debian package) in network
// namespaces this test creates and deletes: a "wan" namespace with a STUN
// responder, a router namespace running miniupnpd with nftables, and a host
// namespace where a helper copy of this test binary runs the client. Root
// only; skipped otherwise. Every address is private and no namespace is
// linked to the host's.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const helperEnv = "NATPUNCH_NETNS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "stun":
		os.Exit(runSTUN(os.Getenv("NATPUNCH_STUN_ADDR")))
	case "client":
		os.Exit(runClientHelper(os.Stdin, os.Stdout))
	default:
		os.Exit(2)
	}
}

// runSTUN answers STUN Binding requests (RFC 5389) with MAPPED-ADDRESS and
// XOR-MAPPED-ADDRESS, ignoring CHANGE-REQUEST: enough for miniupnpd's
// ext_perform_stun to accept a private WAN address as public.
func runSTUN(addr string) int {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 1
		}
		if n < 20 || binary.BigEndian.Uint16(buf[0:2]) != 0x0001 {
			continue
		}
		ip := from.Addr().Unmap().As4()
		resp := make([]byte, 20, 44)
		binary.BigEndian.PutUint16(resp[0:], 0x0101)
		copy(resp[4:20], buf[4:20]) // cookie and transaction id
		resp = append(resp, 0, 1, 0, 8, 0, 1, byte(from.Port()>>8), byte(from.Port()), ip[0], ip[1], ip[2], ip[3])
		cookie := binary.BigEndian.Uint32(buf[4:8])
		xport := from.Port() ^ uint16(cookie>>16)
		xip := binary.BigEndian.Uint32(ip[:]) ^ cookie
		resp = append(resp, 0, 0x20, 0, 8, 0, 1, byte(xport>>8), byte(xport), byte(xip>>24), byte(xip>>16), byte(xip>>8), byte(xip))
		binary.BigEndian.PutUint16(resp[2:], uint16(len(resp)-20))
		_, _ = c.WriteToUDPAddrPort(resp, from)
	}
}

type helperReply struct {
	OK        bool          `json:"ok"`
	Err       string        `json:"err,omitempty"`
	TookMS    int64         `json:"took_ms"`
	Mapping   *Mapping      `json:"mapping,omitempty"`
	Gateway   GatewayStatus `json:"gateway"`
	Status    []MappingStatus
	ProbeErrs string `json:"probe_err,omitempty"`
}

// runClientHelper drives a Client from line commands: "map tcp 4001",
// "maintain", "close". The first line configures it: "methods upnp,natpmp".
func runClientHelper(in io.Reader, out io.Writer) int {
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	var c *Client
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var r helperReply
		start := time.Now()
		var err error
		switch f[0] {
		case "new":
			cfg := Config{NodeID: "12D3KooWLabNode0001", CheckInterval: time.Second,
				PublicPrefixes: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
				Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil))}
			for _, m := range strings.Split(f[1], ",") {
				cfg.Methods = append(cfg.Methods, Method(m))
			}
			c, err = New(cfg)
		case "map":
			var p Proto
			p, err = ParseProto(f[1])
			port, _ := strconv.Atoi(f[2])
			if err == nil {
				r.Mapping, err = c.Map(context.Background(), MappingRequest{Proto: p, InternalPort: uint16(port), Service: "lab"})
			}
		case "maintain":
			err = c.Maintain(context.Background())
		case "close":
			err = c.Close(context.Background())
		}
		r.TookMS = time.Since(start).Milliseconds()
		r.OK = err == nil
		if err != nil {
			r.Err = err.Error()
		}
		if c != nil {
			r.Gateway = c.Gateway()
			r.Status = c.Status()
		}
		_ = enc.Encode(r)
	}
	return 0
}

type lab struct {
	t      *testing.T
	prefix string
	dir    string
	procs  []*exec.Cmd
	upnpd  *exec.Cmd
	helper *exec.Cmd
	hIn    io.WriteCloser
	hOut   *bufio.Scanner
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t *testing.T) *lab {
	if os.Geteuid() != 0 {
		t.Skip("miniupnpd lab needs root (network namespaces)")
	}
	for _, bin := range []string{"/usr/sbin/miniupnpd", "ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("miniupnpd lab needs %s", bin)
		}
	}
	if testing.Short() {
		t.Skip("miniupnpd lab skipped in -short mode")
	}
	l := &lab{t: t, prefix: fmt.Sprintf("npt%d", os.Getpid()%100000), dir: t.TempDir()}
	// Sweep namespaces left by a crashed run of this test (prefix "npt").
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "npt") &&
				(strings.HasSuffix(f[0], "-w") || strings.HasSuffix(f[0], "-r") || strings.HasSuffix(f[0], "-h")) {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
	w, r, h := l.prefix+"-w", l.prefix+"-r", l.prefix+"-h"
	t.Cleanup(l.cleanup)
	for _, ns := range []string{w, r, h} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", r, "link", "add", "wan0", "type", "veth", "peer", "name", "wr0", "netns", w)
	run(t, "ip", "-n", r, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", h)
	run(t, "ip", "-n", w, "addr", "add", "10.77.0.254/24", "dev", "wr0")
	run(t, "ip", "-n", w, "link", "set", "wr0", "up")
	run(t, "ip", "-n", r, "addr", "add", "10.77.0.11/24", "dev", "wan0")
	run(t, "ip", "-n", r, "addr", "add", "192.168.77.1/24", "dev", "lan0")
	run(t, "ip", "-n", r, "link", "set", "wan0", "up")
	run(t, "ip", "-n", r, "link", "set", "lan0", "up")
	run(t, "ip", "-n", r, "route", "add", "default", "via", "10.77.0.254")
	run(t, "ip", "-n", h, "addr", "add", "192.168.77.10/24", "dev", "eth0")
	run(t, "ip", "-n", h, "link", "set", "eth0", "up")
	run(t, "ip", "-n", h, "route", "add", "default", "via", "192.168.77.1")
	run(t, "ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	nftConf := filepath.Join(l.dir, "router.nft")
	if err := os.WriteFile(nftConf, []byte(`table inet filter {
	chain miniupnpd {
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct status dnat accept
		iifname "lan0" accept
		ct state established,related accept
		jump miniupnpd
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump postrouting_miniupnpd
		oifname "wan0" masquerade
	}
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "exec", r, "nft", "-f", nftConf)

	stun := l.start("stun", w, "NATPUNCH_STUN_ADDR=10.77.0.254:3478")
	out, _ := stun.StdoutPipe()
	if err := stun.Start(); err != nil {
		t.Fatal(err)
	}
	l.procs = append(l.procs, stun)
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("STUN responder: %q", line)
	}
	return l
}

func (l *lab) start(mode, ns string, env ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	return cmd
}

// startRouter (re)starts miniupnpd with the given extra config lines.
func (l *lab) startRouter(extra ...string) {
	l.t.Helper()
	l.stopRouter()
	conf := filepath.Join(l.dir, "miniupnpd.conf")
	lines := append([]string{
		"ext_ifname=wan0", "listening_ip=lan0", "enable_upnp=yes", "enable_natpmp=yes", "ipv6_disable=yes",
		"secure_mode=yes", "system_uptime=no", "notify_interval=30", "uuid=6f1b2c3d-0000-4000-8000-0000000000aa",
		"friendly_name=natpunch lab router", "allow 1024-65535 192.168.77.0/24 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}, extra...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		l.t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(l.dir, "miniupnpd.log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.prefix+"-r", "/usr/sbin/miniupnpd", "-d", "-f", conf,
		"-P", filepath.Join(l.dir, "miniupnpd.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.upnpd = cmd
	// Wait until it listens (HTTP) and, with STUN, has enabled forwarding.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logf.Name())
		s := string(b)
		if strings.Contains(s, "HTTP listening on port") &&
			(!strings.Contains(strings.Join(extra, " "), "ext_perform_stun=yes") || strings.Contains(s, "Port forwarding is now enabled")) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(logf.Name())
	l.t.Fatalf("miniupnpd did not start:\n%s", b)
}

func (l *lab) stopRouter() {
	if l.upnpd != nil {
		_ = l.upnpd.Process.Kill()
		_ = l.upnpd.Wait()
		l.upnpd = nil
	}
}

// rules returns miniupnpd's DNAT rules.
func (l *lab) rules() string {
	return run(l.t, "ip", "netns", "exec", l.prefix+"-r", "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
}

func (l *lab) flushRules() {
	for _, ch := range []string{"miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"} {
		run(l.t, "ip", "netns", "exec", l.prefix+"-r", "nft", "flush", "chain", "inet", "filter", ch)
	}
}

func (l *lab) client(methods string) {
	l.t.Helper()
	cmd := l.start("client", l.prefix+"-h")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	logf, _ := os.Create(filepath.Join(l.dir, "client.log"))
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.helper, l.hIn, l.hOut = cmd, in, bufio.NewScanner(out)
	if r := l.do("new " + methods); !r.OK {
		l.t.Fatalf("new: %s", r.Err)
	}
}

func (l *lab) do(cmd string) helperReply {
	l.t.Helper()
	if _, err := io.WriteString(l.hIn, cmd+"\n"); err != nil {
		l.t.Fatal(err)
	}
	if !l.hOut.Scan() {
		b, _ := os.ReadFile(filepath.Join(l.dir, "client.log"))
		l.t.Fatalf("helper died on %q:\n%s", cmd, b)
	}
	var r helperReply
	if err := json.Unmarshal(l.hOut.Bytes(), &r); err != nil {
		l.t.Fatal(err)
	}
	return r
}

func (l *lab) stopClient() {
	if l.helper != nil {
		_ = l.hIn.Close()
		_ = l.helper.Wait()
		l.helper = nil
	}
}

func (l *lab) cleanup() {
	l.stopClient()
	l.stopRouter()
	for _, p := range l.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	for _, s := range []string{"-h", "-r", "-w"} {
		_ = exec.Command("ip", "netns", "del", l.prefix+s).Run()
	}
	if l.t.Failed() {
		for _, f := range []string{"miniupnpd.log", "client.log"} {
			b, _ := os.ReadFile(filepath.Join(l.dir, f))
			l.t.Logf("%s:\n%s", f, b)
		}
	}
}

func TestMiniupnpdLab(t *testing.T) {
	l := newLab(t)
	stun := []string{"ext_perform_stun=yes", "ext_stun_host=10.77.0.254", "ext_stun_port=3478"}
	rule := "dnat ip to 192.168.77.10:4001"

	t.Run("NAT-PMP", func(t *testing.T) {
		l.t = t
		l.startRouter(append(stun, "http_port=5000")...)
		defer l.flushRules()
		l.client("natpmp,pcp,upnp")
		defer l.stopClient()
		r := l.do("map tcp 4001")
		if !r.OK || r.Mapping.Method != MethodNATPMP || r.Mapping.External != netip.MustParseAddrPort("10.77.0.11:4001") {
			t.Fatalf("map: %+v", r)
		}
		t.Logf("NAT-PMP map took %d ms: %+v", r.TookMS, *r.Mapping)
		if r.TookMS > 1000 {
			t.Errorf("first NAT-PMP mapping took %d ms, target ≤ 1000", r.TookMS)
		}
		if !strings.Contains(l.rules(), rule) {
			t.Fatalf("no DNAT rule:\n%s", l.rules())
		}
		r = l.do("close")
		if !r.OK || r.TookMS > 2000 || strings.Contains(l.rules(), rule) {
			t.Fatalf("close: %+v\n%s", r, l.rules())
		}
		t.Logf("close took %d ms", r.TookMS)
	})

	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"UPnP IGDv2", nil},
		{"UPnP IGDv1", []string{"force_igd_desc_v1=yes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.t = t
			conf := append(append(append([]string{}, stun...), tc.extra...), "http_port=0")
			l.startRouter(conf...)
			defer l.flushRules()
			l.client("upnp")
			defer l.stopClient()
			r := l.do("map tcp 4001")
			if !r.OK || r.Mapping.Method != MethodUPnP || r.Mapping.External != netip.MustParseAddrPort("10.77.0.11:4001") {
				t.Fatalf("map: %+v", r)
			}
			t.Logf("UPnP map took %d ms via %s", r.TookMS, r.Gateway.IGD)
			if r.TookMS > 3000 {
				t.Errorf("first UPnP mapping took %d ms, target ≤ 3000", r.TookMS)
			}
			if !strings.Contains(l.rules(), rule) {
				t.Fatalf("no DNAT rule:\n%s", l.rules())
			}
			// Router restart: rules gone, SOAP port moves (http_port=0).
			l.flushRules()
			l.startRouter(conf...)
			time.Sleep(1100 * time.Millisecond) // one check interval
			start := time.Now()
			for !strings.Contains(l.rules(), rule) && time.Since(start) < 10*time.Second {
				l.do("maintain")
				time.Sleep(200 * time.Millisecond)
			}
			if !strings.Contains(l.rules(), rule) {
				t.Fatalf("mapping not restored after router restart:\n%s", l.rules())
			}
			t.Logf("restored %v after the first check; IGD now %s", time.Since(start), l.do("maintain").Gateway.IGD)
			r = l.do("close")
			if !r.OK || r.TookMS > 2000 || strings.Contains(l.rules(), rule) {
				t.Fatalf("close: %+v\n%s", r, l.rules())
			}
		})
	}

	t.Run("double NAT", func(t *testing.T) {
		l.t = t
		l.startRouter("http_port=5000") // no STUN: miniupnpd sees its private WAN address
		l.client("natpmp,pcp,upnp")
		defer l.stopClient()
		r := l.do("map tcp 4001")
		if r.OK && !r.Mapping.DoubleNAT {
			t.Fatalf("map behind double NAT: %+v", r)
		}
		if !r.Gateway.DoubleNAT {
			t.Fatalf("double NAT not detected: %+v", r)
		}
		t.Logf("double NAT: first map took %d ms, ok=%v err=%q, gateway %+v", r.TookMS, r.OK, r.Err, r.Gateway)
		r = l.do("map tcp 4002")
		if r.OK || !strings.Contains(r.Err, "backed off") {
			t.Fatalf("second write within 5 min: %+v", r)
		}
	})
}
