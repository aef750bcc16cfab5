package rebench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/tests/harness"
	"github.com/entrepot/entrepot/tests/labe2e"
	"github.com/entrepot/entrepot/tests/netlab"
)

const (
	objSize     = 4 << 20  // fill objects (4 blocks of 1 MiB)
	probeSize   = 64 << 10 // GET latency probes
	probes      = 20
	idleSamples = 60
	maxSamples  = 300 // per target while rebalancing
	rawFor      = 8 * time.Second
	rawPort     = 5201
	unloadedFor = 15 * time.Second // rebalance measured without client load
	loadedFor   = 30 * time.Second // then with client GETs (or until it ends)
	linkDelay   = 10 * time.Millisecond
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestRebalanceRate is the opt-in rebalance benchmark (see doc.go).
func TestRebalanceRate(t *testing.T) {
	if os.Getenv("REBENCH") == "" {
		t.Skip("rebench: opt-in benchmark, set REBENCH=1 (see tests/rebench/run.sh); needs root and the lab tools")
	}
	labe2e.SkipUnlessLab(t)
	loadStart := loadAvg()
	fillMiB := envInt("REBENCH_MIB", 128)
	mbit := envInt("REBENCH_MBIT", 20)
	link := netlab.LinkConfig{Rate: int64(mbit) * 1e6, Delay: linkDelay}
	lab := netlab.NewT(t, netlab.Config{Homes: []netlab.HomeConfig{
		{Servers: 2, UPnP: netlab.IGDv2}, // h1b fills the cluster
		{Servers: 1, UPnP: netlab.IGDv2},
		{Servers: 1, UPnP: netlab.IGDv2},
		{Servers: 2, UPnP: netlab.IGDv2, Link: link}, // h4a joins, h4b is the client
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	home4 := lab.Homes[3]
	h4a, h4b := home4.Servers[0], home4.Servers[1]
	nodeHosts := []*netlab.Host{lab.Homes[0].Servers[0], lab.Homes[1].Servers[0], lab.Homes[2].Servers[0], h4a}
	lowat, err := setNotsentLowat(nodeHosts, envInt("REBENCH_NOTSENT_LOWAT", 0))
	if err != nil {
		t.Fatal(err)
	}

	// Three nodes in homes 1-3.
	secret := labe2e.WriteSecret(t)
	r1 := lab.Homes[0].Router
	first := labe2e.StartEntrepot(t, lab.Homes[0].Servers[0], labe2e.EntOpts{Zone: "home1", SecretFile: secret, UPnP: true})
	labe2e.RequireNATWired(t, first, r1)
	var rpcExt, s3Ext uint16
	labe2e.WaitFor(t, "home 1 mappings", 30*time.Second, func() bool {
		for _, m := range labe2e.MappingsTo(t, r1, first.Host()) {
			switch m.Internal.Port() {
			case 3901:
				rpcExt = m.ExternalPort
			case 3900:
				s3Ext = m.ExternalPort
			}
		}
		return rpcExt != 0 && s3Ext != 0
	})
	boot := []string{fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r1.Addr, rpcExt, first.ID())}
	nodes := []*labe2e.EntNode{first}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, labe2e.StartEntrepot(t, lab.Homes[i].Servers[0],
			labe2e.EntOpts{Zone: fmt.Sprintf("home%d", i+1), SecretFile: secret, UPnP: true, Bootstrap: boot}))
	}
	labe2e.WaitFor(t, "layout with 3 nodes everywhere", 3*time.Minute, func() bool { return labe2e.LayoutHas(ctx, nodes, 3) })
	if !labe2e.BlocksReplicated(ctx, first) {
		t.Fatal("rebench: this build does not replicate blocks")
	}

	// Fill through node 1 from its LAN.
	k, err := first.Admin().CreateKey(ctx, admin.KeyCreateRequest{Name: "rebench", CanCreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	creds := harness.Credentials{Region: "us-east-1", AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}
	lan1 := labe2e.S3From(lab.Homes[0].Servers[1], "http://"+first.Host().Addr.String()+":3900", creds)
	bucket := "rebench"
	if _, err := lan1.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	fillStart := time.Now()
	body := make([]byte, objSize)
	for i := range fillMiB * (1 << 20) / objSize {
		rand.Read(body)
		key := fmt.Sprintf("fill-%04d", i)
		if _, err := lan1.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("fill %s: %v", key, err)
		}
	}
	probe := make([]byte, probeSize)
	for i := range probes {
		rand.Read(probe)
		key := fmt.Sprintf("probe-%02d", i)
		if _, err := lan1.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(probe)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	fillTime := time.Since(fillStart)
	labe2e.WaitFor(t, "resync queues empty after the fill", 2*time.Minute, func() bool {
		for _, n := range nodes {
			st, ok := blockStatus(ctx, n)
			if !ok || st.ResyncQueue > 0 {
				return false
			}
		}
		return true
	})

	// Available bandwidth: raw TCP from home 1 to h4a over home 4's link.
	raw, err := rawTCP(ctx, lab.Homes[0].Servers[0], h4a, home4.Router, rawFor)
	if err != nil {
		t.Fatalf("raw TCP: %v", err)
	}

	// Client GETs from home 4's LAN to node 1 (through home 4's link).
	wan1 := labe2e.S3From(h4b, fmt.Sprintf("http://%s:%d", r1.Addr, s3Ext), creds)
	idle := getLoop(ctx, wan1, bucket, idleSamples, nil)
	if len(idle.d) < idleSamples/2 {
		t.Fatalf("idle GETs: %d of %d answered (%v)", len(idle.d), idleSamples, idle.lastErr)
	}

	// Node 4 joins.
	joinAt := time.Now()
	n4 := labe2e.StartEntrepot(t, h4a, labe2e.EntOpts{Zone: "home4", SecretFile: secret, UPnP: true, Bootstrap: boot})
	all := append(slices.Clone(nodes), n4)
	labe2e.WaitFor(t, "layout with 4 nodes everywhere", 3*time.Minute, func() bool { return labe2e.LayoutHas(ctx, all, 4) })
	layoutIn := time.Since(joinAt)
	// The node's data dir (labe2e keeps it under the test's temp dirs):
	// its growth is the data that reached node 4, without duplicates.
	dataDirs, _ := filepath.Glob(filepath.Join(filepath.Dir(t.TempDir()), "*", h4a.Name, "data"))
	if len(dataDirs) != 1 {
		t.Fatalf("node 4 data dir: found %v", dataDirs)
	}
	mon := startMonitor(ctx, all, home4, dataDirs[0])
	defer mon.stop()

	// Phase A: rebalance with no client load.
	labe2e.WaitFor(t, "rebalance starting", 2*time.Minute, func() bool { return mon.last().done > 0 })
	a0 := mon.last()
	expect := int64(fillMiB) << 20 * 3 / 4
	for time.Since(a0.at) < unloadedFor && mon.last().done < expect*2/5 {
		time.Sleep(100 * time.Millisecond)
	}
	a1 := mon.last()

	// Phase B: client GETs through node 1 (WAN) and node 4 (LAN),
	// alternately, until the rebalance ends.
	lan4 := labe2e.S3From(h4b, "http://"+h4a.Addr.String()+":3900", creds)
	var during1, during4 lat
	b0 := mon.last()
	bCtx, bCancel := context.WithTimeout(ctx, loadedFor)
	for !mon.finished() && bCtx.Err() == nil && (len(during1.d) < maxSamples || len(during4.d) < maxSamples) {
		getOne(bCtx, wan1, bucket, len(during1.d)+len(during1.errs), &during1)
		getOne(bCtx, lan4, bucket, len(during4.d)+len(during4.errs), &during4)
	}
	bCancel()
	b1 := mon.last()
	labe2e.WaitFor(t, "rebalance done", 8*time.Minute, mon.finished)
	end := mon.lastMove()
	after4 := getLoop(ctx, lan4, bucket, idleSamples, nil)

	r := result{
		fillMiB: fillMiB, mbit: mbit, fillTime: fillTime, layoutIn: layoutIn, raw: raw,
		unloaded: rateBetween(a0, a1), unloadedWire: wireBetween(a0, a1), unloadedStored: storedBetween(a0, a1),
		loadedStored: storedBetween(b0, b1), storedTotal: end.stored - a0.stored, unloadedFor: a1.at.Sub(a0.at), unloadedBytes: a1.done - a0.done,
		loaded: rateBetween(b0, b1), loadedFor: b1.at.Sub(b0.at),
		total: end.done, totalFor: end.at.Sub(a0.at),
		idle: idle, during1: during1, during4: during4, after4: after4,
		pace: mon.paceSeen(), stats: home4.LinkStats(), lowat: lowat,
		load: loadStart + " at the start, " + loadAvg() + " at the end",
	}
	table := r.render()
	t.Log("\n" + table)
	if out := os.Getenv("REBENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

const lowatKey = "net/ipv4/tcp_notsent_lowat"

// setNotsentLowat writes net.ipv4.tcp_notsent_lowat in each host's network
// namespace when v > 0 (REBENCH_NOTSENT_LOWAT) and returns the value read
// back from every namespace ("4294967295", the kernel default, when unset).
// The sysctl is per namespace and read by the kernel at each send, so it
// applies to the nodes' libp2p connections and to the raw TCP measurement
// from home 1.
func setNotsentLowat(hosts []*netlab.Host, v int) (string, error) {
	var seen []string
	for _, h := range hosts {
		var got []byte
		err := h.Do(func() error {
			p := filepath.Join("/proc/sys", lowatKey)
			if v > 0 {
				if err := os.WriteFile(p, []byte(strconv.Itoa(v)), 0o644); err != nil {
					return err
				}
			}
			var err error
			got, err = os.ReadFile(p)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("tcp_notsent_lowat in %s: %w", h.Name, err)
		}
		val := strings.TrimSpace(string(got))
		if v > 0 && val != strconv.Itoa(v) {
			return "", fmt.Errorf("tcp_notsent_lowat in %s: wrote %d, reads %s", h.Name, v, val)
		}
		if !slices.Contains(seen, val) {
			seen = append(seen, val)
		}
	}
	return strings.Join(seen, ", "), nil
}

// loadAvg is the machine's 1, 5 and 15 min load averages (the lab shares
// the CPUs with whatever else runs).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// blockStatus reads a node's block status document.
func blockStatus(ctx context.Context, n *labe2e.EntNode) (block.Status, bool) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cs, err := n.Admin().ClusterStatus(cctx)
	if err != nil || len(cs.Blocks) == 0 {
		return block.Status{}, false
	}
	var st block.Status
	if err := json.Unmarshal(cs.Blocks, &st); err != nil {
		return block.Status{}, false
	}
	return st, true
}

// rawTCP sends bulk data over one TCP connection from src to dst (through
// dst's router, port rawPort forwarded) for d and returns the payload
// rate the receiver saw after the first second (slow start excluded), B/s.
func rawTCP(ctx context.Context, src, dst *netlab.Host, r *netlab.Router, d time.Duration) (float64, error) {
	ln, err := dst.Listen("tcp4", fmt.Sprintf("%s:%d", dst.Addr, rawPort))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	if err := r.Forward(ctx, "tcp", rawPort, netip.AddrPortFrom(dst.Addr, rawPort)); err != nil {
		return 0, err
	}
	type res struct {
		rate float64
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		t0 := time.Now()
		var n int64
		var from time.Time
		var fromN int64
		for {
			m, err := c.Read(buf)
			n += int64(m)
			if from.IsZero() && time.Since(t0) >= time.Second {
				from, fromN = time.Now(), n
			}
			if err != nil {
				if !from.IsZero() && errors.Is(err, io.EOF) {
					ch <- res{rate: float64(n-fromN) / time.Since(from).Seconds()}
					return
				}
				ch <- res{err: fmt.Errorf("after %d bytes: %w", n, err)}
				return
			}
		}
	}()
	c, err := src.DialContext(ctx, "tcp4", netip.AddrPortFrom(r.Addr, rawPort).String())
	if err != nil {
		return 0, err
	}
	chunk := make([]byte, 256<<10)
	rand.Read(chunk)
	_ = c.SetWriteDeadline(time.Now().Add(d))
	for {
		if _, err := c.Write(chunk); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			c.Close()
			return 0, err
		}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	defer c.Close()
	select {
	case r := <-ch:
		return r.rate, r.err
	case <-time.After(30 * time.Second):
		return 0, errors.New("receiver did not finish")
	}
}

// lat collects GET latencies and errors.
type lat struct {
	d       []time.Duration
	errs    []error
	lastErr error
}

func getOne(ctx context.Context, cl *s3.Client, bucket string, i int, l *lat) {
	key := fmt.Sprintf("probe-%02d", i%probes)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := cl.GetObject(rctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err == nil {
		var n int64
		n, err = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		if err == nil && n != probeSize {
			err = fmt.Errorf("got %d bytes, want %d", n, probeSize)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			l.errs = append(l.errs, err)
			l.lastErr = err
		}
		return
	}
	l.d = append(l.d, time.Since(t0))
}

func getLoop(ctx context.Context, cl *s3.Client, bucket string, n int, l *lat) lat {
	if l == nil {
		l = &lat{}
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		getOne(ctx, cl, bucket, i, l)
	}
	return *l
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// sample is the cluster's rebalance state at one time.
type sample struct {
	at       time.Time
	done     int64 // block bytes moved since the join, all nodes
	busy     bool  // some node still has queued or active work
	downWire uint64
	stored   int64 // bytes in node 4's block directory
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// monitor samples the nodes' block status every 250 ms.
type monitor struct {
	mu      sync.Mutex
	samples []sample
	pace    []string
	cancel  context.CancelFunc
	done    chan struct{}
}

func startMonitor(ctx context.Context, nodes []*labe2e.EntNode, home *netlab.Home, dataDir string) *monitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &monitor{cancel: cancel, done: make(chan struct{})}
	type acc struct {
		layouts string
		last    int64
		base    int64
	}
	accs := make([]acc, len(nodes))
	go func() {
		defer close(m.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for ctx.Err() == nil {
			s := sample{at: time.Now(), downWire: home.LinkStats().DownBytes, stored: dirBytes(dataDir)}
			for i, n := range nodes {
				st, ok := blockStatus(ctx, n)
				if !ok {
					s.busy = true
					s.done += accs[i].base + accs[i].last
					continue
				}
				a := &accs[i]
				// A new scan (another layout change) restarts the node's
				// count: keep what it had moved.
				if st.Rebalance.Layouts != a.layouts || st.Rebalance.BytesDone < a.last {
					a.base += a.last
					a.layouts = st.Rebalance.Layouts
				}
				a.last = st.Rebalance.BytesDone
				s.done += a.base + a.last
				if st.ResyncQueue > 0 || st.Rebalance.Active {
					s.busy = true
				}
				for _, p := range st.Pace.Peers {
					if p.LimitBps > 0 {
						m.mu.Lock()
						if len(m.pace) < 4 {
							m.pace = append(m.pace, fmt.Sprintf("%s→%s: limit %.2f MB/s (available %.2f MB/s, remote clients %v)",
								n.Host().Name, shortID(p.Peer), p.LimitBps/1e6, p.AvailableBps/1e6, p.RemoteClients))
						}
						m.mu.Unlock()
					}
				}
			}
			m.mu.Lock()
			m.samples = append(m.samples, s)
			m.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}()
	return m
}

func shortID(id string) string { return id[max(len(id)-6, 0):] }

func (m *monitor) stop() { m.cancel(); <-m.done }

func (m *monitor) last() sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) == 0 {
		return sample{at: time.Now(), busy: true}
	}
	return m.samples[len(m.samples)-1]
}

// finished: nothing moved and no node busy for the last 5 s, after some
// movement.
func (m *monitor) finished() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.samples)
	if n == 0 || m.samples[n-1].done == 0 {
		return false
	}
	lastS := m.samples[n-1]
	for i := n - 1; i >= 0; i-- {
		s := m.samples[i]
		if s.busy || s.done != lastS.done {
			return false
		}
		if lastS.at.Sub(s.at) >= 5*time.Second {
			return true
		}
	}
	return false
}

// lastMove is the first sample with the final byte count.
func (m *monitor) lastMove() sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.samples)
	i := n - 1
	for i > 0 && m.samples[i-1].done == m.samples[n-1].done {
		i--
	}
	return m.samples[i]
}

func (m *monitor) paceSeen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.pace)
}

func rateBetween(a, b sample) float64 {
	if el := b.at.Sub(a.at).Seconds(); el > 0 {
		return float64(b.done-a.done) / el
	}
	return 0
}

func storedBetween(a, b sample) float64 {
	if el := b.at.Sub(a.at).Seconds(); el > 0 {
		return float64(b.stored-a.stored) / el
	}
	return 0
}

func wireBetween(a, b sample) float64 {
	if el := b.at.Sub(a.at).Seconds(); el > 0 {
		return float64(b.downWire-a.downWire) / el
	}
	return 0
}

type result struct {
	fillMiB, mbit                  int
	fillTime, layoutIn             time.Duration
	raw                            float64
	unloaded, unloadedWire, loaded float64
	unloadedStored, loadedStored   float64
	storedTotal                    int64
	unloadedFor, loadedFor         time.Duration
	unloadedBytes                  int64
	total                          int64
	totalFor                       time.Duration
	idle, during1, during4, after4 lat
	pace                           []string
	stats                          netlab.LinkStats
	lowat                          string // net.ipv4.tcp_notsent_lowat in the nodes' namespaces
	load                           string // machine load averages
}

func ms(d time.Duration) string { return fmt.Sprintf("%7.1f", float64(d.Microseconds())/1000) }

func (r result) render() string {
	var b strings.Builder
	linkB := float64(r.mbit) * 1e6 / 8
	fmt.Fprintf(&b, "Rebalance bench: nodes 1-3 in homes 1-3 (unshaped links), RF 3; %d MiB of 4 MiB random objects (fill took %v);\n",
		r.fillMiB, r.fillTime.Round(time.Second))
	fmt.Fprintf(&b, "node 4 joins in home 4 behind a %d Mbit/s link (%v each way, 100 ms queue); layout with 4 nodes after %v.\n",
		r.mbit, linkDelay, r.layoutIn.Round(time.Second))
	fmt.Fprintf(&b, "net.ipv4.tcp_notsent_lowat in the nodes' namespaces: %s\n", r.lowat)
	fmt.Fprintf(&b, "machine load average (1/5/15 min): %s\n\n", r.load)
	fmt.Fprintf(&b, "%-58s %8s %8s\n", "", "MB/s", "of raw")
	row := func(name string, v float64) {
		fmt.Fprintf(&b, "%-58s %8.2f %7.0f%%\n", name, v/1e6, 100*v/r.raw)
	}
	row("link rate (configured)", linkB)
	row(fmt.Sprintf("raw TCP, 1 stream, home 1 -> home 4 (%v)", rawFor), r.raw)
	row(fmt.Sprintf("rebalance, no client load (%v, %d MiB; block bytes)", r.unloadedFor.Round(time.Second), r.unloadedBytes>>20), r.unloaded)
	row("  same period, growth of node 4's block dir", r.unloadedStored)
	row("  same period, all bytes into home 4 on the wire", r.unloadedWire)
	row(fmt.Sprintf("rebalance, with client GETs (%v; block bytes)", r.loadedFor.Round(time.Second)), r.loaded)
	row("  same period, growth of node 4's block dir", r.loadedStored)
	row(fmt.Sprintf("rebalance overall (%d MiB sent in %v)", r.total>>20, r.totalFor.Round(time.Second)), float64(r.total)/r.totalFor.Seconds())
	row(fmt.Sprintf("  node 4's block dir grew by %d MiB", r.storedTotal>>20), float64(r.storedTotal)/r.totalFor.Seconds())
	fmt.Fprintf(&b, "\nGET of a 64 KiB object from home 4's LAN, one at a time (ms):\n")
	fmt.Fprintf(&b, "%-44s %5s %7s %7s %7s %6s\n", "", "n", "p50", "p99", "max", "errors")
	lrow := func(name string, l lat) {
		fmt.Fprintf(&b, "%-44s %5d %s %s %s %6d\n", name, len(l.d), ms(pct(l.d, 0.5)), ms(pct(l.d, 0.99)), ms(pct(l.d, 1)), len(l.errs))
	}
	lrow("idle, via node 1 (WAN, through home 4's link)", r.idle)
	lrow("during rebalance, via node 1 (WAN)", r.during1)
	lrow("during rebalance, via node 4 (LAN)", r.during4)
	lrow("after rebalance, via node 4 (LAN)", r.after4)
	for _, l := range []lat{r.during1, r.during4} {
		if l.lastErr != nil {
			fmt.Fprintf(&b, "last error: %v\n", l.lastErr)
		}
	}
	fmt.Fprintf(&b, "\nhome 4 link: %d MB down, %d frames dropped down (queue full), %d up\n",
		r.stats.DownBytes/1e6, r.stats.DownDropped, r.stats.UpDropped)
	if len(r.pace) > 0 {
		b.WriteString("first adaptive limits seen (sampled every 250 ms):\n")
		for _, p := range r.pace {
			b.WriteString("  " + p + "\n")
		}
	} else {
		b.WriteString("no adaptive limit seen in the status samples\n")
	}
	return b.String()
}
