package block

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Adaptive pacing of background transfers (resync and rebalance). The
// algorithm is described in doc.go under "Rebalance pacing".
const (
	// paceWindow is the measurement window.
	paceWindow = 2 * time.Second
	// paceHold: clients count as active this long after their last block
	// transfer ended, or after a peer last reported active clients.
	paceHold = 3 * time.Second
	// paceTarget is the share of the available bandwidth that background
	// plus client traffic may fill while clients are active; the rest is
	// headroom that keeps the bottleneck's queue short.
	paceTarget = 0.75
	// paceMinShare is the least share of the available bandwidth left to
	// background traffic, so a busy node still makes rebalance progress.
	paceMinShare = 0.10
	// paceAlpha is the weight of a new window in the moving averages.
	paceAlpha = 0.3
	// paceBusy: a window measures the available bandwidth only if
	// background transfers were in flight at least this share of it.
	paceBusy = 0.9
	// paceFloor is the lowest adaptive limit, bytes/s.
	paceFloor = 64 << 10
	// yieldMax bounds how long a background transfer waits for client
	// transfers to end when there is no bandwidth figure to pace by.
	yieldMax = 200 * time.Millisecond
	// paceSoloMax bounds the wait for a limited peer's other background
	// transfer to end.
	paceSoloMax = 2 * time.Second
	// maxPacedPeers bounds the per-peer state (least recently used dropped).
	maxPacedPeers = 1024
)

// limiterMinBurst is the least a bucket lets go at once after an idle
// time: one block and its framing (else 1/8 s of traffic at the limit).
const limiterMinBurst = 1<<20 + 64

// pacer measures block traffic and paces background transfers: a node-wide
// fixed cap, the node's own client traffic, and per peer the bandwidth
// background transfers with that peer get and whether the peer reported
// active clients. Its clock is injectable for tests.
type pacer struct {
	mu    sync.Mutex
	now   func() time.Time
	fixed float64 // ReplicationConfig.Bandwidth, bytes/s (0 = none)
	cap   bucket

	// this node's client block traffic
	clWin      time.Time
	clBytes    int64
	clIn       int
	client     float64 // bytes/s
	lastClient time.Time

	peers map[string]*peerPace
}

// peerPace is the background traffic with one peer.
type peerPace struct {
	winStart  time.Time
	bgBytes   int64
	bgBusy    time.Duration // time with transfers in flight
	bgIn      int
	bgSince   time.Time // start of the current busy stretch (bgIn > 0)
	throttled bool      // a transfer waited on a limit in this window

	avail float64 // bytes/s (0 = not measured yet)

	remoteUntil  time.Time // the peer reported active clients: pace until then
	remoteClient float64   // the client traffic it reported, bytes/s

	b        bucket
	lastUsed time.Time
}

// bucket is a token bucket in bytes.
type bucket struct {
	have float64
	last time.Time
	rate float64 // the limit last applied (0 = none)
}

// take removes n bytes at limit lim (0 = none) and returns the wait.
func (b *bucket) take(now time.Time, lim float64, n int) time.Duration {
	if lim != b.rate {
		// A new limit starts from an empty bucket: no burst at the old rate.
		b.rate, b.have, b.last = lim, 0, now
	}
	if lim <= 0 {
		b.last = now
		return 0
	}
	b.have = min(b.have+now.Sub(b.last).Seconds()*lim, max(lim/8, limiterMinBurst))
	b.last = now
	b.have -= float64(n)
	if b.have >= 0 {
		return 0
	}
	return time.Duration(-b.have / lim * float64(time.Second))
}

func newPacer(fixed int64, now func() time.Time) *pacer {
	if now == nil {
		now = time.Now
	}
	return &pacer{now: now, fixed: float64(fixed), clWin: now(), peers: map[string]*peerPace{}}
}

// PaceStatus is what the pacer measured and the limits it applies.
type PaceStatus struct {
	// ClientBps: this node's client block traffic with other nodes
	// (remote reads, writes' puts); ClientActive also counts local reads.
	ClientBps    float64 `json:"client_bytes_per_sec"`
	ClientActive bool    `json:"client_active"`
	// CapBps is the configured Bandwidth (0 = none).
	CapBps float64    `json:"cap_bytes_per_sec"`
	Peers  []PeerPace `json:"peers,omitempty"`
}

// PeerPace is the pacing of background transfers with one peer.
type PeerPace struct {
	Peer string `json:"peer"`
	// AvailableBps: background throughput with the peer in the latest
	// windows where transfers were in flight all along, unthrottled and
	// with no client traffic on either side (0 = not measured yet).
	AvailableBps float64 `json:"available_bytes_per_sec"`
	// RemoteClients: the peer reported active clients recently.
	RemoteClients bool `json:"remote_clients"`
	// LimitBps is the current adaptive limit (0 = none; the cap applies too).
	LimitBps float64 `json:"limit_bytes_per_sec"`
}

func (p *pacer) status() PaceStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.rollClient(now)
	st := PaceStatus{ClientBps: p.client, ClientActive: p.localActive(now), CapBps: p.fixed}
	for id, pp := range p.peers {
		p.rollPeer(pp, now)
		st.Peers = append(st.Peers, PeerPace{Peer: id, AvailableBps: pp.avail,
			RemoteClients: now.Before(pp.remoteUntil), LimitBps: p.limit(pp, now)})
	}
	slices.SortFunc(st.Peers, func(a, b PeerPace) int {
		if a.Peer < b.Peer {
			return -1
		}
		if a.Peer > b.Peer {
			return 1
		}
		return 0
	})
	return st
}

func ewma(old, sample float64, have bool) float64 {
	if !have {
		return sample
	}
	return (1-paceAlpha)*old + paceAlpha*sample
}

func (p *pacer) rollClient(now time.Time) {
	el := now.Sub(p.clWin)
	if el < paceWindow {
		return
	}
	p.client = ewma(p.client, float64(p.clBytes)/el.Seconds(), true)
	p.clWin, p.clBytes = now, 0
}

// rollPeer closes pp's window if it is over, updating its estimate.
func (p *pacer) rollPeer(pp *peerPace, now time.Time) {
	el := now.Sub(pp.winStart)
	if el < paceWindow {
		return
	}
	busy := pp.bgBusy
	if pp.bgIn > 0 {
		busy += now.Sub(pp.bgSince)
	}
	quiet := p.clIn == 0 && p.lastClient.Before(pp.winStart) && !pp.remoteUntil.After(pp.winStart)
	if quiet && !pp.throttled && pp.bgBytes > 0 && busy >= time.Duration(paceBusy*float64(el)) {
		pp.avail = ewma(pp.avail, float64(pp.bgBytes)/el.Seconds(), pp.avail > 0)
	}
	pp.winStart, pp.bgBytes, pp.bgBusy, pp.throttled = now, 0, 0, false
	if pp.bgIn > 0 {
		pp.bgSince = now
	}
}

func (p *pacer) localActive(now time.Time) bool {
	return p.clIn > 0 || (!p.lastClient.IsZero() && now.Sub(p.lastClient) < paceHold)
}

// limit is the adaptive limit of background traffic with a peer, bytes/s
// (0 = none): while clients are active here or at the peer, paceTarget of
// the available bandwidth minus the clients' traffic, at least
// paceMinShare of it. With no figure measured, the fixed cap is the base;
// with neither, there is no limit (wait yields instead).
func (p *pacer) limit(pp *peerPace, now time.Time) float64 {
	remote := now.Before(pp.remoteUntil)
	if !p.localActive(now) && !remote {
		return 0
	}
	base := pp.avail
	if base == 0 {
		base = p.fixed
	}
	if base == 0 {
		return 0
	}
	c := p.client
	if remote {
		c += pp.remoteClient
	}
	return max(base*paceTarget-c, base*paceMinShare, paceFloor)
}

func (p *pacer) peer(id string, now time.Time) *peerPace {
	pp := p.peers[id]
	if pp == nil {
		if len(p.peers) >= maxPacedPeers {
			var old string
			for k, v := range p.peers {
				if old == "" || v.lastUsed.Before(p.peers[old].lastUsed) {
					old = k
				}
			}
			delete(p.peers, old)
		}
		pp = &peerPace{winStart: now}
		p.peers[id] = pp
	}
	pp.lastUsed = now
	return pp
}

// begin paces a background transfer of n bytes with peer id, marks it in
// flight and returns the function to call with the bytes it moved (0 if
// it failed) when it ends. While the peer's traffic is limited (clients
// active) it first waits, up to paceSoloMax, for the peer's other
// background transfer to end: one block at a time on the connection keeps
// the client requests sharing it from queueing behind several.
func (p *pacer) begin(ctx context.Context, id string, n int) (func(int), error) {
	for waited := time.Duration(0); ; waited += 10 * time.Millisecond {
		p.mu.Lock()
		now := p.now()
		p.rollClient(now)
		pp := p.peer(id, now)
		p.rollPeer(pp, now)
		if p.limit(pp, now) > 0 && pp.bgIn > 0 && waited < paceSoloMax {
			p.mu.Unlock()
			if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
				return nil, err
			}
			continue
		}
		d := max(pp.b.take(now, p.limit(pp, now), n), p.cap.take(now, p.fixed, n))
		if d > 0 {
			pp.throttled = true
		}
		yield := p.clIn > 0 && pp.avail == 0 && p.fixed == 0
		end := p.markLocked(pp, now)
		p.mu.Unlock()
		if yield {
			// The rule before any measurement: wait up to yieldMax while
			// client transfers are in flight.
			for i := time.Duration(0); i < yieldMax && p.clientsInFlight(); i += 10 * time.Millisecond {
				if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
					end(0)
					return nil, err
				}
			}
		}
		if err := sleepCtx(ctx, d); err != nil {
			end(0)
			return nil, err
		}
		return end, nil
	}
}

func (p *pacer) clientsInFlight() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clIn > 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// background marks a background transfer with peer id in flight, unpaced;
// call the returned function with the bytes it moved when it ends.
func (p *pacer) background(id string) func(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pp := p.peer(id, now)
	p.rollPeer(pp, now)
	return p.markLocked(pp, now)
}

// markLocked marks a background transfer with pp in flight; p.mu is held.
func (p *pacer) markLocked(pp *peerPace, now time.Time) func(n int) {
	if pp.bgIn == 0 {
		pp.bgSince = now
	}
	pp.bgIn++
	return func(n int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		p.rollPeer(pp, now)
		pp.bgIn--
		pp.bgBytes += int64(n)
		if pp.bgIn == 0 {
			pp.bgBusy += now.Sub(pp.bgSince)
		}
	}
}

// clientXfer marks a client block transfer with another node in flight;
// call the returned function with the bytes it moved when it ends.
func (p *pacer) clientXfer() func(n int) {
	p.mu.Lock()
	p.rollClient(p.now())
	p.clIn++
	p.mu.Unlock()
	return func(n int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		p.rollClient(now)
		p.clIn--
		p.clBytes += int64(n)
		p.lastClient = now
	}
}

// clientLocal notes a client read served from this node's disk: clients
// are active (their bytes leave through S3, which this layer does not see).
func (p *pacer) clientLocal() {
	p.mu.Lock()
	p.lastClient = p.now()
	p.mu.Unlock()
}

// remote records what peer id said about its clients in a put reply.
func (p *pacer) remote(id string, active bool, clientBps uint64) {
	if !active {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pp := p.peer(id, now)
	pp.remoteUntil = now.Add(paceHold)
	pp.remoteClient = float64(clientBps)
}

// local returns whether this node's clients are active and their traffic,
// for put replies.
func (p *pacer) local() (bool, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.rollClient(now)
	return p.localActive(now), uint64(p.client)
}
