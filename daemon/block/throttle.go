package block

import (
	"context"
	"sync"
	"time"
)

// Adaptive pacing of background transfers (resync and rebalance). The
// algorithm is described in doc.go under "Rebalance pacing".
const (
	// paceWindow is the measurement window.
	paceWindow = 2 * time.Second
	// paceHold: clients count as active this long after their last block
	// transfer ended.
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
)

// pacer measures background and client block traffic and paces background
// transfers. Its clock is injectable for tests.
type pacer struct {
	mu    sync.Mutex
	now   func() time.Time
	fixed float64 // ReplicationConfig.Bandwidth, bytes/s (0 = none)

	// the current window
	winStart         time.Time
	bgBytes, clBytes int64
	bgBusy           time.Duration // time with background transfers in flight
	bgIn, clIn       int           // transfers in flight
	bgSince          time.Time     // start of the current busy stretch (bgIn > 0)
	throttled        bool          // a background transfer waited on the limit

	avail      float64 // bytes/s the path delivered to saturated, unthrottled background work (0 = unknown)
	client     float64 // client block traffic, bytes/s
	lastClient time.Time

	// token bucket
	have float64
	last time.Time
	rate float64 // the limit the bucket last applied (0 = none)
}

func newPacer(fixed int64, now func() time.Time) *pacer {
	if now == nil {
		now = time.Now
	}
	t := now()
	return &pacer{now: now, fixed: float64(fixed), winStart: t, last: t}
}

// PaceStatus is what the pacer measured and the limit it applies.
type PaceStatus struct {
	// AvailableBps: background throughput in the latest windows where
	// transfers were in flight all along, unthrottled and with no client
	// traffic (0 = not measured yet).
	AvailableBps float64 `json:"available_bytes_per_sec"`
	// ClientBps: client block traffic (remote reads and writes) of this node.
	ClientBps    float64 `json:"client_bytes_per_sec"`
	ClientActive bool    `json:"client_active"`
	// LimitBps is the current background limit (0 = none).
	LimitBps float64 `json:"limit_bytes_per_sec"`
}

func (p *pacer) status() PaceStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.roll(now)
	return PaceStatus{AvailableBps: p.avail, ClientBps: p.client, ClientActive: p.clientActive(now), LimitBps: p.limit(now)}
}

// roll closes the window if it is over, updating the estimates.
func (p *pacer) roll(now time.Time) {
	el := now.Sub(p.winStart)
	if el < paceWindow {
		return
	}
	busy := p.bgBusy
	if p.bgIn > 0 {
		busy += now.Sub(p.bgSince)
	}
	secs := el.Seconds()
	p.client = ewma(p.client, float64(p.clBytes)/secs, true)
	if p.clBytes == 0 && p.clIn == 0 && !p.throttled && p.bgBytes > 0 && busy >= time.Duration(paceBusy*float64(el)) {
		p.avail = ewma(p.avail, float64(p.bgBytes)/secs, p.avail > 0)
	}
	p.winStart, p.bgBytes, p.clBytes, p.bgBusy, p.throttled = now, 0, 0, 0, false
	if p.bgIn > 0 {
		p.bgSince = now
	}
}

func ewma(old, sample float64, have bool) float64 {
	if !have {
		return sample
	}
	return (1-paceAlpha)*old + paceAlpha*sample
}

func (p *pacer) clientActive(now time.Time) bool {
	return p.clIn > 0 || (!p.lastClient.IsZero() && now.Sub(p.lastClient) < paceHold)
}

// limit is the background rate limit in bytes/s (0 = none): the fixed
// cap, and while clients are active, paceTarget of the available bandwidth
// minus the clients' traffic, at least paceMinShare of it. With no
// bandwidth figure (neither measured nor configured) it is the fixed cap
// only, and wait falls back to yielding.
func (p *pacer) limit(now time.Time) float64 {
	lim := p.fixed
	if !p.clientActive(now) {
		return lim
	}
	base := p.avail
	if base == 0 {
		base = p.fixed
	}
	if base == 0 {
		return lim
	}
	a := max(base*paceTarget-p.client, base*paceMinShare, paceFloor)
	if lim == 0 || a < lim {
		lim = a
	}
	return lim
}

// reserve takes n bytes from the bucket and returns how long the caller
// must wait, and whether it should rather yield to client transfers (no
// bandwidth figure while clients are active).
func (p *pacer) reserve(n int) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.roll(now)
	lim := p.limit(now)
	if lim != p.rate {
		// A new limit starts from an empty bucket: no burst at the old rate.
		p.rate, p.have = lim, 0
		p.last = now
	}
	yield := p.clIn > 0 && p.avail == 0 && p.fixed == 0
	if lim <= 0 {
		p.last = now
		return 0, yield
	}
	p.have = min(p.have+now.Sub(p.last).Seconds()*lim, max(lim/8, limiterMinBurst))
	p.last = now
	p.have -= float64(n)
	if p.have >= 0 {
		return 0, yield
	}
	p.throttled = true
	return time.Duration(-p.have / lim * float64(time.Second)), yield
}

// wait paces a background transfer of n bytes.
func (p *pacer) wait(ctx context.Context, n int) error {
	d, yield := p.reserve(n)
	if yield {
		// The old rule: wait up to yieldMax while clients transfer.
		for i := time.Duration(0); i < yieldMax && p.clientsInFlight(); i += 10 * time.Millisecond {
			if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return sleepCtx(ctx, d)
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

// background marks a background transfer in flight; call the returned
// function with the bytes it moved (0 if it failed) when it ends.
func (p *pacer) background() func(n int) {
	p.mu.Lock()
	now := p.now()
	p.roll(now)
	if p.bgIn == 0 {
		p.bgSince = now
	}
	p.bgIn++
	p.mu.Unlock()
	return func(n int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		p.roll(now)
		p.bgIn--
		p.bgBytes += int64(n)
		if p.bgIn == 0 {
			p.bgBusy += now.Sub(p.bgSince)
		}
	}
}

// clientXfer marks a client block transfer with another node in flight;
// call the returned function with the bytes it moved when it ends.
func (p *pacer) clientXfer() func(n int) {
	p.mu.Lock()
	p.roll(p.now())
	p.clIn++
	p.mu.Unlock()
	return func(n int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		p.roll(now)
		p.clIn--
		p.clBytes += int64(n)
		p.lastClient = now
	}
}
