package natpunch

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/natpunch/natpunchtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// deadUDP returns a loopback UDP address with nothing listening.
func deadUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	a := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	return a
}

type env struct {
	igd   *natpunchtest.IGD
	pmp   *natpunchtest.PMP
	clock *natpunchtest.Clock
	reg   *prometheus.Registry
	c     *Client
}

type envOpt struct {
	desc    string // fake IGD description; "" = no IGD
	pmp     bool   // fake NAT-PMP/PCP server
	methods []Method
	tweak   func(*Config)
	// fastProbe keeps the default 350 ms probe window (timing tests);
	// otherwise tests use 1 s so a loaded machine does not make them flaky.
	fastProbe bool
}

func newEnv(t *testing.T, o envOpt) *env {
	t.Helper()
	e := &env{clock: natpunchtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), reg: prometheus.NewRegistry()}
	cfg := Config{
		NodeID: "12D3KooWTestNodeAbcdefgh", Gateway: loopback, LocalAddr: loopback,
		Clock: e.clock, Registerer: e.reg, Methods: o.methods,
		Logger:    slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PMPServer: deadUDP(t), SSDPTargets: []netip.AddrPort{deadUDP(t)},
	}
	if !o.fastProbe {
		cfg.ProbeTimeout = time.Second
	}
	if o.desc != "" {
		g, err := natpunchtest.NewIGD(o.desc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		e.igd = g
		cfg.SSDPTargets = []netip.AddrPort{g.SSDPAddr()}
	}
	if o.pmp {
		p, err := natpunchtest.NewPMP()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		e.pmp = p
		cfg.PMPServer = p.Addr()
	}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	e.c = c
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUPnPMapDescriptions(t *testing.T) {
	cases := []struct {
		name    string
		desc    string
		service string
	}{
		{"miniupnpd IGDv2", natpunchtest.DescIGDv2, "WANIPConnection:2"},
		{"miniupnpd IGDv1", natpunchtest.DescIGDv1, "WANIPConnection:1"},
		{"FritzBox-like PPP", natpunchtest.DescFritzBoxPPP, "WANPPPConnection:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpt{desc: tc.desc, fastProbe: true})
			start := time.Now()
			m, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001, Service: "p2p"})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("first mapping took %v, target ≤ 3 s", d)
			}
			if m.Method != MethodUPnP || m.External != netip.MustParseAddrPort("203.0.113.7:4001") || m.DoubleNAT {
				t.Fatalf("mapping %+v", m)
			}
			ms := e.igd.Mappings()
			if len(ms) != 1 || ms[0].Client != "127.0.0.1" || ms[0].InternalPort != 4001 || ms[0].Proto != "TCP" ||
				ms[0].Description != "entrepot Abcdefgh tcp p2p" {
				t.Fatalf("router mappings %+v", ms)
			}
			if g := e.c.Gateway(); !strings.Contains(g.IGD, tc.service) {
				t.Errorf("IGD %q does not name %s", g.IGD, tc.service)
			}
			if got := e.igd.SSDPQueries(); got > 2 {
				t.Errorf("%d M-SEARCH packets, want ≤ 2 (one per search target)", got)
			}
			if err := e.c.Close(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if ms := e.igd.Mappings(); len(ms) != 0 {
				t.Fatalf("mappings left after Close: %+v", ms)
			}
		})
	}
}

func TestUPnPErrorPaths(t *testing.T) {
	cases := []struct {
		name     string
		desc     string
		setup    func(g *natpunchtest.IGD)
		req      MappingRequest
		wantPort uint16 // 0 = expect failure
		wantErr  error
		check    func(t *testing.T, g *natpunchtest.IGD, m *Mapping)
	}{
		{name: "725 only permanent leases", desc: natpunchtest.DescIGDv1,
			setup: func(g *natpunchtest.IGD) { g.SetPermanentOnly(true) },
			req:   MappingRequest{Proto: TCP, InternalPort: 4001}, wantPort: 4001,
			check: func(t *testing.T, g *natpunchtest.IGD, m *Mapping) {
				if m.Lease != 0 || !m.ExpiresAt.IsZero() {
					t.Errorf("lease %v, want permanent", m.Lease)
				}
				if g.Mappings()[0].Lease != 0 {
					t.Errorf("router lease %d", g.Mappings()[0].Lease)
				}
			}},
		{name: "402 invalid args on lease", desc: natpunchtest.DescIGDv1,
			setup: func(g *natpunchtest.IGD) { g.SetFault("AddPortMapping", 402, 1) },
			req:   MappingRequest{Proto: UDP, InternalPort: 4001}, wantPort: 4001},
		{name: "718 on IGDv2 uses AddAny", desc: natpunchtest.DescIGDv2,
			setup: func(g *natpunchtest.IGD) { g.Reserve("TCP", 4001, "192.168.1.99") },
			req:   MappingRequest{Proto: TCP, InternalPort: 4001}, wantPort: 4002,
			check: func(t *testing.T, g *natpunchtest.IGD, m *Mapping) {
				if g.Calls("AddAnyPortMapping") != 1 {
					t.Errorf("AddAny calls %d", g.Calls("AddAnyPortMapping"))
				}
			}},
		{name: "718 on IGDv1 tries another port", desc: natpunchtest.DescIGDv1,
			setup:    func(g *natpunchtest.IGD) { g.Reserve("TCP", 4001, "192.168.1.99") },
			req:      MappingRequest{Proto: TCP, InternalPort: 4001},
			wantPort: altPort("12D3KooWTestNodeAbcdefgh", TCP, 4001, 0)},
		{name: "606 below 1024 moves up", desc: natpunchtest.DescIGDv1,
			req: MappingRequest{Proto: TCP, InternalPort: 443}, wantPort: altPort("12D3KooWTestNodeAbcdefgh", TCP, 443, 0),
			check: func(t *testing.T, g *natpunchtest.IGD, m *Mapping) {
				if g.Calls("AddPortMapping") != 1 {
					t.Errorf("a port < 1024 was requested: %d Add calls", g.Calls("AddPortMapping"))
				}
			}},
		{name: "606 on allowed port is refused", desc: natpunchtest.DescIGDv1,
			setup: func(g *natpunchtest.IGD) { g.SetFault("AddPortMapping", 606, -1) },
			req:   MappingRequest{Proto: TCP, InternalPort: 4001}, wantErr: ErrRefused},
		{name: "501 with public address", desc: natpunchtest.DescIGDv2,
			setup: func(g *natpunchtest.IGD) { g.SetFault("AddPortMapping", 501, -1) },
			req:   MappingRequest{Proto: TCP, InternalPort: 4001}},
		{name: "every port taken", desc: natpunchtest.DescIGDv1,
			setup: func(g *natpunchtest.IGD) { g.SetFault("AddPortMapping", 718, -1) },
			req:   MappingRequest{Proto: TCP, InternalPort: 4001}, wantErr: ErrConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpt{desc: tc.desc})
			if tc.setup != nil {
				tc.setup(e.igd)
			}
			m, err := e.c.Map(ctxT(t), tc.req)
			if tc.wantPort == 0 {
				if err == nil {
					t.Fatalf("mapped %+v, want error", m)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				var re *RouterError
				if !errors.As(err, &re) {
					t.Fatalf("err %v carries no RouterError", err)
				}
				st := e.c.Status()
				if len(st) != 1 || st[0].Up || st[0].LastError == "" || st[0].NextAttempt.IsZero() {
					t.Fatalf("status %+v", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.External.Port() != tc.wantPort {
				t.Fatalf("external %v, want port %d", m.External, tc.wantPort)
			}
			if tc.check != nil {
				tc.check(t, e.igd, m)
			}
			// The external port reported is the one the router holds for us.
			found := false
			for _, rm := range e.igd.Mappings() {
				if rm.ExternalPort == tc.wantPort && rm.Client == "127.0.0.1" {
					found = true
				}
			}
			if !found {
				t.Fatalf("router has no mapping on %d: %+v", tc.wantPort, e.igd.Mappings())
			}
		})
	}
}

func TestNATPMPAndPCP(t *testing.T) {
	cases := []struct {
		name    string
		pmp     bool
		pcp     bool
		method  Method
		extPort uint16
	}{
		{"NAT-PMP", true, true, MethodNATPMP, 4001},
		{"PCP only", false, true, MethodPCP, 4001},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpt{pmp: true, fastProbe: true})
			e.pmp.SetProtocols(tc.pmp, tc.pcp)
			start := time.Now()
			m, err := e.c.Map(ctxT(t), MappingRequest{Proto: UDP, InternalPort: 4001})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("first mapping took %v, target ≤ 1 s", d)
			}
			if m.Method != tc.method || m.External != netip.AddrPortFrom(netip.MustParseAddr("203.0.113.9"), tc.extPort) ||
				m.Lease != time.Hour {
				t.Fatalf("mapping %+v", m)
			}
			if ms := e.pmp.Mappings(); len(ms) != 1 || ms[0].Proto != "UDP" || ms[0].PCP != (tc.method == MethodPCP) {
				t.Fatalf("server mappings %+v", ms)
			}
			if err := e.c.Close(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if ms := e.pmp.Mappings(); len(ms) != 0 {
				t.Fatalf("mappings left after Close: %+v", ms)
			}
		})
	}
}

func TestPMPConflictReportsGrantedPort(t *testing.T) {
	e := newEnv(t, envOpt{pmp: true})
	e.pmp.Take("TCP", 4001)
	m, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001})
	if err != nil {
		t.Fatal(err)
	}
	if m.External.Port() != 4002 {
		t.Fatalf("external %v, want the router's choice 4002", m.External)
	}
	if c := e.c.Candidates(); len(c) != 1 || c[0].External.Port() != 4002 {
		t.Fatalf("candidates %+v", c)
	}
}

func TestNoGatewayIsFast(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(*Config)
		want error
	}{
		{"no default route", func(c *Config) {
			c.Gateway = netip.Addr{}
			c.RouteFile = "testdata/route-nodefault"
		}, ErrNoGateway},
		{"missing route file", func(c *Config) {
			c.Gateway = netip.Addr{}
			c.RouteFile = "testdata/does-not-exist"
		}, ErrNoGateway},
		{"gateway answers nothing", nil, ErrNoService},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpt{tweak: tc.cfg, fastProbe: true})
			start := time.Now()
			_, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Fatalf("decided in %v, target ≤ 0.5 s", d)
			}
			if g := e.c.Gateway(); g.LastError == "" {
				t.Fatalf("gateway status has no error: %+v", g)
			}
		})
	}
}

func TestRenewalTiming(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	adds := func() int { return e.igd.Calls("AddPortMapping") }
	if adds() != 1 {
		t.Fatalf("adds %d", adds())
	}
	// Just before a third of the lease: health checks only (reads).
	for i := 0; i < 39; i++ {
		e.clock.Advance(30 * time.Second)
		if err := e.c.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if adds() != 1 {
		t.Fatalf("renewed early: %d adds after 19.5 min", adds())
	}
	if e.igd.Calls("GetSpecificPortMappingEntry") == 0 {
		t.Fatal("health check never verified the mapping")
	}
	e.clock.Advance(30 * time.Second) // 20 min = lease/3
	if err := e.c.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if adds() != 2 {
		t.Fatalf("adds %d at lease/3, want a renewal", adds())
	}
	st := e.c.Status()[0]
	if !st.Up || st.Renewals != 2 || st.RenewAt != e.clock.Now().Add(20*time.Minute) {
		t.Fatalf("status %+v", st)
	}
	if got := testutil.ToFloat64(e.c.m.renewals.WithLabelValues("TCP", "4001")); got != 2 {
		t.Fatalf("renewals metric %v", got)
	}
	if got := testutil.ToFloat64(e.c.m.mappingUp.WithLabelValues("TCP", "4001")); got != 1 {
		t.Fatalf("mapping_up %v", got)
	}
}

func TestPMPRenewsAtThirdOfGrantedLifetime(t *testing.T) {
	e := newEnv(t, envOpt{pmp: true})
	e.pmp.SetMaxLifetime(600)
	ctx := ctxT(t)
	m, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001})
	if err != nil {
		t.Fatal(err)
	}
	if m.Lease != 10*time.Minute {
		t.Fatalf("lease %v", m.Lease)
	}
	if got := e.c.Status()[0].RenewAt.Sub(e.clock.Now()); got != 200*time.Second {
		t.Fatalf("renew in %v, want 200 s", got)
	}
}

func TestSelfHealRouterRestartMovesSOAPPort(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	oldLoc := e.igd.Location()
	if err := e.igd.Restart(); err != nil {
		t.Fatal(err)
	}
	if e.igd.Location() == oldLoc {
		t.Fatal("fake did not move")
	}
	e.clock.Advance(30 * time.Second) // one check interval
	if err := e.c.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if ms := e.igd.Mappings(); len(ms) != 1 || ms[0].ExternalPort != 4001 {
		t.Fatalf("not restored after one check interval: %+v", ms)
	}
	if got := testutil.ToFloat64(e.c.m.rediscoveries.WithLabelValues("router_unreachable")); got != 1 {
		t.Fatalf("rediscoveries %v", got)
	}
	if !e.c.Status()[0].Up {
		t.Fatal("mapping not up")
	}
}

func TestSelfHealMappingsForgotten(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv1})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	e.igd.ClearMappings()
	e.clock.Advance(30 * time.Second)
	if err := e.c.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if ms := e.igd.Mappings(); len(ms) != 1 {
		t.Fatalf("not re-added: %+v", ms)
	}
}

func TestSelfHealPMPEpochRegression(t *testing.T) {
	e := newEnv(t, envOpt{pmp: true})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	e.pmp.Restart()
	if len(e.pmp.Mappings()) != 0 {
		t.Fatal("fake kept mappings")
	}
	e.clock.Advance(30 * time.Second)
	if err := e.c.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if ms := e.pmp.Mappings(); len(ms) != 1 {
		t.Fatalf("not re-added after epoch regression: %+v", ms)
	}
}

func TestExternalIPChange(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	drain(e.c.Events())
	e.igd.SetExternalIP("198.51.100.20")
	e.clock.Advance(30 * time.Second)
	if err := e.c.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort("198.51.100.20:4001")
	if c := e.c.Candidates(); len(c) != 1 || c[0].External != want {
		t.Fatalf("candidates %+v", c)
	}
	evs := drain(e.c.Events())
	if len(evs) == 0 || evs[len(evs)-1].Kind != EventGateway || evs[len(evs)-1].Candidates[0].External != want {
		t.Fatalf("events %+v", evs)
	}
	if got := testutil.ToFloat64(e.c.m.externalChanges); got != 1 {
		t.Fatalf("external_ip_changes_total %v", got)
	}
}

func TestGatewayChange(t *testing.T) {
	dir := t.TempDir()
	route := dir + "/route"
	write := func(gw string) {
		t.Helper()
		if err := writeFile(route, "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"+
			"lo\t00000000\t"+gw+"\t0003\t0\t0\t0\t00000000\n"); err != nil {
			t.Fatal(err)
		}
	}
	write("0100007F") // 127.0.0.1
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2, tweak: func(c *Config) {
		c.Gateway, c.RouteFile = netip.Addr{}, route
	}})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	write("0200007F") // 127.0.0.2: the fake IGD is not there
	if err := e.c.Maintain(ctx); err != nil && !errors.Is(err, ErrNoService) {
		t.Fatal(err)
	}
	if st := e.c.Status()[0]; st.Up {
		t.Fatalf("still up after gateway change: %+v", st)
	}
	if got := testutil.ToFloat64(e.c.m.rediscoveries.WithLabelValues("gateway_changed")); got != 1 {
		t.Fatalf("rediscoveries %v", got)
	}
}

func TestDoubleNATBackoff(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env)
		opt   envOpt
		count func(e *env) int
	}{
		{"UPnP empty external IP and 501", func(e *env) { e.igd.SetDoubleNAT() },
			envOpt{desc: natpunchtest.DescIGDv2}, func(e *env) int { return e.igd.Writes() }},
		{"UPnP private external IP", func(e *env) { e.igd.SetExternalIP("10.0.0.2") },
			envOpt{desc: natpunchtest.DescIGDv1}, func(e *env) int { return e.igd.Writes() }},
		{"UPnP CGNAT external IP", func(e *env) { e.igd.SetExternalIP("100.64.3.4") },
			envOpt{desc: natpunchtest.DescIGDv1}, func(e *env) int { return e.igd.Writes() }},
		{"NAT-PMP result 3", func(e *env) { e.pmp.SetPMPResult(3) },
			envOpt{pmp: true, methods: []Method{MethodNATPMP}}, func(e *env) int { _, n := e.pmp.Requests(); return n }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opt)
			tc.setup(e)
			ctx := ctxT(t)
			for p := uint16(4001); p <= 4003; p++ {
				_, _ = e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: p})
			}
			if g := e.c.Gateway(); !g.DoubleNAT {
				t.Fatalf("double NAT not detected on the first probe: %+v", g)
			}
			if got := testutil.ToFloat64(e.c.m.doubleNAT); got != 1 {
				t.Fatalf("double_nat gauge %v", got)
			}
			// Three hours of maintenance every 30 s.
			for i := 0; i < 360; i++ {
				e.clock.Advance(30 * time.Second)
				_ = e.c.Maintain(ctx)
			}
			writes := tc.count(e)
			if max := 3*60/5 + 1; writes > max {
				t.Fatalf("%d router writes in 3 h, want ≤ %d (1 per 5 min)", writes, max)
			}
			if writes == 0 {
				t.Fatal("never tried")
			}
		})
	}
}

func TestDoubleNATInnerMappingKeptAndFlagged(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	e.igd.SetExternalIP("100.64.0.10")
	m, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001})
	if err != nil {
		t.Fatal(err)
	}
	if !m.DoubleNAT || m.External != netip.MustParseAddrPort("100.64.0.10:4001") {
		t.Fatalf("mapping %+v", m)
	}
	if c := e.c.Candidates(); len(c) != 1 || !c[0].DoubleNAT {
		t.Fatalf("candidates %+v", c)
	}
}

func TestPublicPrefixesForLab(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2, tweak: func(c *Config) {
		c.PublicPrefixes = []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")}
	}})
	e.igd.SetExternalIP("10.77.0.11")
	m, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001})
	if err != nil {
		t.Fatal(err)
	}
	if m.DoubleNAT || e.c.Gateway().DoubleNAT {
		t.Fatal("lab WAN prefix classified as double NAT")
	}
}

func TestRunRetriesWithInjectedClock(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	e.igd.SetFault("AddPortMapping", 501, 1)
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err == nil {
		t.Fatal("want a first failure")
	}
	done := make(chan error, 1)
	go func() { done <- e.c.Run(ctx) }()
	// Run waits for the retry (5 s back-off).
	if err := e.clock.WaitForWaiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !e.c.Status()[0].Up {
		if time.Now().After(deadline) {
			t.Fatalf("not retried: %+v", e.c.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(e.igd.Mappings()) != 0 {
		t.Fatal("mapping left after Close")
	}
}

func TestCloseBoundedWhenRouterHangs(t *testing.T) {
	e := newEnv(t, envOpt{pmp: true, tweak: func(c *Config) { c.CloseTimeout = 300 * time.Millisecond }})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	e.pmp.SetProtocols(false, false) // the router stops answering
	start := time.Now()
	err := e.c.Close(ctx)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err == nil {
		t.Fatal("Close reported success although the router never answered")
	}
	if _, ok := <-e.c.Events(); ok {
		for range e.c.Events() {
		}
	}
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4002}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Map after Close: %v", err)
	}
}

func TestEventsAndUnmap(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Map(ctx, MappingRequest{Proto: UDP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	evs := drain(e.c.Events())
	var ups int
	for _, ev := range evs {
		if ev.Kind == EventMappingUp {
			ups++
		}
	}
	if ups != 2 || len(evs[len(evs)-1].Candidates) != 2 {
		t.Fatalf("events %+v", evs)
	}
	if err := e.c.Unmap(ctx, TCP, 4001); err != nil {
		t.Fatal(err)
	}
	if ms := e.igd.Mappings(); len(ms) != 1 || ms[0].Proto != "UDP" {
		t.Fatalf("router mappings %+v", ms)
	}
	evs = drain(e.c.Events())
	if len(evs) != 1 || evs[0].Kind != EventMappingDown || len(evs[0].Candidates) != 1 {
		t.Fatalf("events after Unmap %+v", evs)
	}
	if _, err := e.c.Map(ctx, MappingRequest{Proto: "SCTP", InternalPort: 1}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad proto: %v", err)
	}
}

func TestMethodsPreferPMPOverUPnP(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2, pmp: true})
	m, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001})
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != MethodNATPMP {
		t.Fatalf("method %s", m.Method)
	}
	g := e.c.Gateway()
	if len(g.Methods) != 3 {
		t.Fatalf("methods %v", g.Methods)
	}
	if len(e.igd.Mappings()) != 0 {
		t.Fatal("mapped on both")
	}
	// NAT-PMP refuses: fall back to UPnP for this port.
	e.pmp.SetPMPResult(2)
	e.pmp.SetPCPResult(2)
	m, err = e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4010})
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != MethodUPnP {
		t.Fatalf("fallback method %s", m.Method)
	}
}

func drain(ch <-chan Event) []Event {
	var out []Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Registerer: reg}); err == nil {
		t.Fatal("second registration on one registry accepted")
	}
	if _, err := New(Config{Methods: []Method{"stun"}}); err == nil {
		t.Fatal("unknown method accepted")
	}
}

func TestSSDPZeroRepliesHint(t *testing.T) {
	var buf strings.Builder
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2, tweak: func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	}})
	e.igd.SetSSDPSilent(true)
	if _, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001}); !errors.Is(err, ErrNoService) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(buf.String(), "0 SSDP replies") || !strings.Contains(buf.String(), "firewall") {
		t.Fatalf("log lacks the firewall hint:\n%s", buf.String())
	}
}

func TestCloseVerifiesDelete(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv1})
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	e.igd.SetIgnoreDeletes(true)
	err := e.c.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "still present") {
		t.Fatalf("Close = %v, want a still-present error", err)
	}
	if got := e.igd.Calls("DeletePortMapping"); got != 2 {
		t.Fatalf("%d deletes, want 2 (one retry after the read-back)", got)
	}
}

func TestDoubleNATClearsPromptly(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	e.igd.SetDoubleNAT()
	ctx := ctxT(t)
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err == nil {
		t.Fatal("mapped behind double NAT")
	}
	for i := 0; i < 4; i++ { // past the first back-off steps
		e.clock.Advance(5 * time.Minute)
		_ = e.c.Maintain(ctx)
	}
	// The ISP hands out a public address: the next check must notice and
	// map at once, not after the 30 min back-off.
	e.igd.SetExternalIP("203.0.113.50")
	e.igd.SetFault("AddPortMapping", 0, 0)
	e.igd.SetFault("AddAnyPortMapping", 0, 0)
	e.clock.Advance(30 * time.Second)
	if err := e.c.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.c.Status()[0]
	if !st.Up || st.External != netip.MustParseAddrPort("203.0.113.50:4001") || e.c.Gateway().DoubleNAT {
		t.Fatalf("status %+v gateway %+v", st, e.c.Gateway())
	}
}

func TestNextWake(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	ctx := ctxT(t)
	now := e.clock.Now()
	if got := e.c.nextWake(); !got.Equal(now) {
		t.Fatalf("before the first probe: wake %v, want now", got)
	}
	if _, err := e.c.Map(ctx, MappingRequest{Proto: TCP, InternalPort: 4001}); err != nil {
		t.Fatal(err)
	}
	if got := e.c.nextWake(); !got.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("mapped: wake %v, want the next check", got.Sub(now))
	}
	// The renewal at lease/3 fails: the next wake is the retry, not the
	// (past) renewal time, so Run does not spin.
	e.igd.SetFault("AddPortMapping", 501, -1)
	e.clock.Advance(20 * time.Minute)
	if err := e.c.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.c.Status()[0]
	if !st.Up || st.Failures != 1 {
		t.Fatalf("after a failed renewal the lease still runs: %+v", st)
	}
	if got, want := e.c.nextWake(), e.clock.Now().Add(5*time.Second); !got.Equal(want) {
		t.Fatalf("wake in %v, want the 5 s retry", got.Sub(e.clock.Now()))
	}
	// Failed renewals until the lease runs out: the mapping goes down.
	for i := 0; i < 200 && e.c.Status()[0].Up; i++ {
		e.clock.Advance(time.Minute)
		_ = e.c.Maintain(ctx)
	}
	if st := e.c.Status()[0]; st.Up || e.clock.Now().Sub(now) > 62*time.Minute+5*time.Minute {
		t.Fatalf("mapping not down at expiry: %+v after %v", st, e.clock.Now().Sub(now))
	}
}

func TestFailureMetricsByCode(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv1})
	e.igd.SetFault("AddPortMapping", 606, -1)
	_, _ = e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001})
	if got := testutil.ToFloat64(e.c.m.failures.WithLabelValues("TCP", "4001", "upnp", "606")); got != 1 {
		t.Fatalf("failures{code=606} = %v", got)
	}
	if got := testutil.ToFloat64(e.c.m.mappingUp.WithLabelValues("TCP", "4001")); got != 0 {
		t.Fatalf("mapping_up = %v", got)
	}
	n, err := testutil.GatherAndCount(e.reg, "entrepot_natpunch_mapping_failures_total", "entrepot_natpunch_router_writes_total")
	if err != nil || n != 2 {
		t.Fatalf("gathered %d series (%v), want 2 from the injected registry", n, err)
	}
}

func TestEventsKeepNewestWhenConsumerIsSlow(t *testing.T) {
	e := newEnv(t, envOpt{desc: natpunchtest.DescIGDv2})
	ctx := ctxT(t)
	for p := uint16(5000); p < 5100; p++ { // 100 up events, buffer of 64
		if _, err := e.c.Map(ctx, MappingRequest{Proto: UDP, InternalPort: p}); err != nil {
			t.Fatal(err)
		}
	}
	evs := drain(e.c.Events())
	if len(evs) == 0 || len(evs) > 64 {
		t.Fatalf("%d events buffered", len(evs))
	}
	if last := evs[len(evs)-1]; len(last.Candidates) != 100 || last.Mapping.InternalPort != 5099 {
		t.Fatalf("newest event lost: %d candidates, port %d", len(last.Candidates), last.Mapping.InternalPort)
	}
}
