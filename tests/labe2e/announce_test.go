package labe2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/netlab"
)

// TestNATAnnounceTiming: a node starts behind (a) a miniupnpd IGDv2 router
// without NAT-PMP, (b) a NAT-PMP-only router, (c) an IGDv2 router with
// another member already running on the same LAN, (d) a router with no
// port mapping at all, and joins two running members, each in its own
// home. Behind (a)-(c) its p2p port gets mapped, a member dials the
// mapping back, and both outside members end up holding that external
// address for the node; behind (d) natpunch decides "no gateway". The test
// asserts that behaviour only (60 s bounds); the timings are figures,
// logged as FIGURE lines, from process start to
//
//   - mapped: natpunch's "mapping up" line for the p2p port;
//   - confirmed: p2p's "external address confirmed" line (a member dialled
//     the mapping back through the router);
//   - advertised: p2p's "advertised addresses changed" line adding it
//     (libp2p's address set, what identify sends to members);
//   - announced-first: the first outside member stores the address for
//     the node in its peerstore (its "member address reached by
//     dial-back" line: it dialled the address back);
//   - announced-all: the last of the two members lists the address for
//     the node in its admin cluster status (polled every 20 ms; the
//     time is taken when the status call returns, which includes an RPC
//     round trip to every connected member, so it is late by up to a
//     WAN round trip);
//   - no gateway: natpunch's "no usable gateway" line;
//
// and, after SIGTERM, until the router has no mapping to the node.
// The node restarts for every run with its identity, state and peer list
// (it dials the members it knows at once) but listens on another port, so
// no member holds the new external address from an earlier run. (Fresh
// identities at one address made members redial the stopped ones there:
// libp2p's resource manager then refused the new node's connections, its
// limit being 0.2 new connections per second per IP after a burst of 16.) LABE2E_NAT_RUNS sets the number of
// runs per router (default 3); natbench.sh runs more.
func TestNATAnnounceTiming(t *testing.T) {
	SkipUnlessLab(t)
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("LABE2E_NAT_RUNS")); err == nil && v > 0 {
		runs = v
	}
	// LABE2E_NAT_LINK_DELAY (a Go duration) delays every home's access
	// link both ways: 25ms gives a 100 ms RTT between homes.
	var link netlab.LinkConfig
	if d, err := time.ParseDuration(os.Getenv("LABE2E_NAT_LINK_DELAY")); err == nil {
		link.Delay = d
	}
	lab := netlab.NewT(t, netlab.Config{Homes: []netlab.HomeConfig{
		{Servers: 1, UPnP: netlab.IGDv2, Link: link}, // running member A
		{Servers: 1, UPnP: netlab.IGDv2, Link: link}, // running member C
		{Servers: 1, UPnP: netlab.IGDv2, Link: link}, // (a) UPnP only
		{Servers: 1, NATPMP: true, Link: link},       // (b) NAT-PMP (and PCP) only
		{Servers: 2, UPnP: netlab.IGDv2, Link: link}, // (c) UPnP, a member on the LAN
		{Servers: 1, Link: link},                     // (d) no port mapping at all
	}})
	secret := WriteSecret(t)
	var members []*EntNode
	var boot []string
	for i, h := range lab.Homes[:2] {
		m := StartEntrepot(t, h.Servers[0], EntOpts{Zone: fmt.Sprintf("member%d", i), SecretFile: secret, UPnP: true, Bootstrap: boot})
		RequireNATWired(t, m, h.Router)
		boot = append(boot, p2pMappingAddr(t, h.Router, m))
		members = append(members, m)
	}
	lan := StartEntrepot(t, lab.Homes[4].Servers[0], EntOpts{Zone: "lan", SecretFile: secret, UPnP: true, Bootstrap: boot})
	RequireNATWired(t, lan, lab.Homes[4].Router)

	kinds := []struct {
		name string
		home *netlab.Home
		host *netlab.Host
	}{
		{"upnp-igd2", lab.Homes[2], lab.Homes[2].Servers[0]},
		{"nat-pmp", lab.Homes[3], lab.Homes[3].Servers[0]},
		{"upnp-igd2+lan-member", lab.Homes[4], lab.Homes[4].Servers[1]},
	}
	for ki, k := range kinds {
		dir := filepath.Join(t.TempDir(), k.host.Name) // the node restarts with its identity and peer list
		var mapped, confirmed, advertised, first, all, removed []time.Duration
		for i := range runs {
			// A port per run: members still redial the earlier runs'
			// (stopped) nodes at their external address, and a dial
			// crossing the new node's own dial on the same 4-tuple (its
			// listen port, reused for dialling) is a TCP simultaneous open
			// that fails both handshakes ("noise: message is too short").
			port := uint16(4000 + 100*ki + i)
			f := announceRun(t, members, k.home, k.host, secret, boot, dir, fmt.Sprintf("k%d", ki), port)
			t.Logf("FIGURE nat-announce %s run %d: mapped %v, confirmed %v, advertised %v, announced to a first member %v, to all %v, removed %v after SIGTERM",
				k.name, i+1, f.mapped, f.confirmed, f.advertised, f.first, f.all, f.removed)
			mapped, confirmed = append(mapped, f.mapped), append(confirmed, f.confirmed)
			advertised, first, all = append(advertised, f.advertised), append(first, f.first), append(all, f.all)
			removed = append(removed, f.removed)
		}
		for _, s := range []struct {
			what string
			d    []time.Duration
		}{{"mapped", mapped}, {"confirmed", confirmed}, {"advertised", advertised},
			{"announced-first", first}, {"announced-all", all}, {"removed", removed}} {
			x := netlab.Summarize(s.d)
			t.Logf("FIGURE nat-announce summary %-20s %-15s n=%d min %v median %v max %v", k.name, s.what, len(s.d),
				x.Min.Round(time.Millisecond), x.P50.Round(time.Millisecond), x.Max.Round(time.Millisecond))
		}
	}

	var noGW []time.Duration
	for i := range runs {
		h := lab.Homes[5].Servers[0]
		n := StartEntrepot(t, h, EntOpts{Zone: fmt.Sprintf("znone%d", i), SecretFile: secret, UPnP: true, Bootstrap: boot})
		var at time.Time
		WaitFor(t, h.Name+" decides there is no gateway", 30*time.Second, func() bool {
			at = logTime(n.log(), "no usable gateway", "")
			return !at.IsZero()
		})
		if _, err := n.Stop(15 * time.Second); err != nil {
			t.Fatal(err)
		}
		d := at.Sub(n.start)
		t.Logf("FIGURE nat-announce no-gateway run %d: decided %v after process start (natpunch probe: %s)", i+1, d,
			logField(n.log(), "no usable gateway", "took"))
		noGW = append(noGW, d)
	}
	x := netlab.Summarize(noGW)
	t.Logf("FIGURE nat-announce summary %-20s %-15s n=%d min %v median %v max %v", "no-gateway", "decided", len(noGW),
		x.Min.Round(time.Millisecond), x.P50.Round(time.Millisecond), x.Max.Round(time.Millisecond))
}

// p2pMappingAddr returns the bootstrap address of n through its router's
// mapping of the p2p port (not the S3 port's).
func p2pMappingAddr(t *testing.T, r *netlab.Router, n *EntNode) string {
	t.Helper()
	for _, m := range MappingsTo(t, r, n.Host()) {
		if m.Internal.Port() == 3901 {
			return fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r.Addr, m.ExternalPort, n.ID())
		}
	}
	t.Fatalf("no mapping of %s's p2p port on %s", n.name, r.Name)
	return ""
}

type announceFigures struct {
	mapped, confirmed, advertised, first, all, removed time.Duration
}

// announceRun starts a fresh node on h (in home), waits until every member
// holds its mapped external address, stops it and returns the timings.
func announceRun(t *testing.T, members []*EntNode, home *netlab.Home, h *netlab.Host, secret string, boot []string, dir, zone string, port uint16) announceFigures {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The member side: poll each member for a node holding the address
	// the router maps to this run's port (natpunch asks for the same
	// external port; each run has its own, so no member holds it from an
	// earlier run).
	prefix := "/ip4/" + home.Router.Addr.String() + "/tcp/"
	expect := fmt.Sprintf("%s%d", prefix, port)
	type seen struct {
		at   time.Time
		addr string
	}
	found := make(chan seen, len(members))
	for _, m := range members {
		go func() {
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				st, err := m.Admin().ClusterStatus(cctx)
				at := time.Now()
				ccancel()
				for _, x := range st.Nodes {
					if err != nil {
						continue
					}
					for _, a := range x.Addrs {
						if a == expect || a == expect+"/p2p/"+x.ID {
							found <- seen{at: at, addr: expect}
							return
						}
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	n := StartEntrepot(t, h, EntOpts{Zone: zone, SecretFile: secret, UPnP: true, Bootstrap: boot, RPCPort: port, Dir: dir})
	var got []seen
	for range members {
		select {
		case s := <-found:
			got = append(got, s)
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d members listed an external address of the new node (router %s)\n%s",
				h.Name, len(got), len(members), home.Router.Name, Tail(n.log(), 40))
		}
	}
	// Behaviour: the announced address is the router mapping to this
	// node's p2p port, confirmed by a dial back through the router and in
	// the node's own advertised addresses.
	ms := MappingsTo(t, home.Router, h)
	var want string
	for _, m := range ms {
		if m.Internal.Port() == port {
			want = fmt.Sprintf("%s%d", prefix, m.ExternalPort)
		}
	}
	for _, s := range got {
		if s.addr != want {
			t.Fatalf("%s: a member lists %s, but the router maps %s to the p2p port (mappings %+v)", h.Name, s.addr, want, ms)
		}
	}
	id, err := n.Admin().NodeID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hasPrefixAddr(id.Addrs, want) {
		t.Fatalf("%s: %s not among its own advertised addresses %v", h.Name, want, id.Addrs)
	}
	log := n.log()
	tm := logTime(log, "mapping up", fmt.Sprintf("internal=%d ", port))
	tc := logTime(log, "external address confirmed", want)
	ta := logTime(log, "advertised addresses changed", want)
	if tm.IsZero() || tc.IsZero() || ta.IsZero() {
		t.Fatalf("%s: log lines missing (mapped %v, confirmed %v, advertised %v)\n%s", h.Name, tm, tc, ta, Tail(log, 60))
	}
	// The members that dialled the address back stored it then, and log
	// it: the exact "first" time. The admin polls give the others'.
	var stored time.Time
	for _, m := range members {
		at := logTime(m.log(), "member address reached by dial-back", "peer="+n.ID()+" addr="+want)
		if !at.IsZero() && (stored.IsZero() || at.Before(stored)) {
			stored = at
		}
	}
	if stored.IsZero() {
		stored = got[0].at // every member learnt it from identify
	}
	f := announceFigures{mapped: tm.Sub(n.start), confirmed: tc.Sub(n.start), advertised: ta.Sub(n.start),
		first: stored.Sub(n.start), all: got[len(got)-1].at.Sub(n.start)}
	if f.all > 3*time.Second {
		t.Logf("%s: slow announcement (%v), its log:\n%s", h.Name, f.all, Tail(log, 300))
		for _, m := range members {
			t.Logf("member %s (%s) log:\n%s", m.name, m.ID(), Tail(m.log(), 100))
		}
	}
	t0 := time.Now()
	if _, err := n.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, h.Name+"'s mappings removed", 10*time.Second, func() bool { return len(MappingsTo(t, home.Router, h)) == 0 })
	f.removed = time.Since(t0)
	return f
}

// logTime returns the time of the first log line with msg whose text
// contains sub (zero when none).
func logTime(log, msg, sub string) time.Time {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="`+msg+`"`) && !strings.Contains(line, "msg="+msg+" ") {
			continue
		}
		if sub != "" && !strings.Contains(line, sub) {
			continue
		}
		if v := textField(line, "time"); v != "" {
			if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return ts
			}
		}
	}
	return time.Time{}
}

// logField returns field key of the first log line with msg.
func logField(log, msg, key string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="`+msg+`"`) {
			return textField(line, key)
		}
	}
	return ""
}

// textField extracts an unquoted key=value from a slog text line.
func textField(line, key string) string {
	i := strings.Index(line, key+"=")
	if i < 0 || (i > 0 && line[i-1] != ' ') {
		return ""
	}
	v := line[i+len(key)+1:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}
