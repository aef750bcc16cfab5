package block

import (
	"context"
	"math"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// fakeLink drives a pacer like a link of a given rate would: every step,
// background transfers run back to back (the queue is never empty) and
// finish at the link rate, and clients move clientBps.
type fakeLink struct {
	p   *pacer
	clk *fakeClock
}

const testPeer = "peer-a"

// peerStatus returns the pacing of testPeer (zero if none yet).
func peerStatus(p *pacer) PeerPace {
	for _, pp := range p.status().Peers {
		if pp.Peer == testPeer {
			return pp
		}
	}
	return PeerPace{}
}

// run simulates d of traffic in 100 ms steps: background sends
// min(link - client, pacer limit) (or nothing if idle), clients clientBps.
func (l fakeLink) run(d time.Duration, linkBps, clientBps float64, bgBusy bool) (bgSent float64) {
	const step = 100 * time.Millisecond
	for t := time.Duration(0); t < d; t += step {
		var endBG, endCl func(int)
		if bgBusy {
			endBG = l.p.background(testPeer)
		}
		if clientBps > 0 {
			endCl = l.p.clientXfer()
		}
		l.p.mu.Lock()
		pp := l.p.peer(testPeer, l.clk.now())
		lim := l.p.limit(pp, l.clk.now())
		if l.p.fixed > 0 && (lim == 0 || l.p.fixed < lim) {
			lim = l.p.fixed
		}
		bg := math.Max(linkBps-clientBps, 0)
		if lim > 0 && lim < bg {
			bg = lim
			pp.throttled = true
		}
		l.p.mu.Unlock()
		l.clk.advance(step)
		if endBG != nil {
			n := bg * step.Seconds()
			bgSent += n
			endBG(int(n))
		}
		if endCl != nil {
			endCl(int(clientBps * step.Seconds()))
		}
	}
	return bgSent
}

func TestPacerLimit(t *testing.T) {
	const link = 2.5e6 // bytes/s (20 Mbit/s)
	tests := []struct {
		name       string
		fixed      int64
		warm       bool          // run unloaded, queue busy, first (measures the link)
		clientBps  float64       // client traffic afterwards
		idleBefore time.Duration // time between the client traffic and the check
		wantLo     float64       // limit bounds, bytes/s (0,0 = no limit)
		wantHi     float64
	}{
		{name: "no clients, no cap: no limit", warm: true},
		{name: "no clients, fixed cap only: no adaptive limit", fixed: 1e6, warm: true},
		{name: "light clients: target share of measured link", warm: true, clientBps: 0.05 * link,
			wantLo: 0.75*link - 0.06*link, wantHi: 0.75*link - 0.04*link},
		{name: "heavy clients: minimum share", warm: true, clientBps: 0.9 * link, wantLo: 0.098 * link, wantHi: 0.1 * link},
		{name: "cap above the link: the measured link is the base", fixed: 5e6, warm: true, clientBps: 0.05 * link,
			wantLo: 0.75*link - 0.06*link, wantHi: 0.75*link - 0.04*link},
		{name: "cap always binding: the cap is the base", fixed: 1e6, warm: true, clientBps: 0.05 * link,
			wantLo: 0.75*1e6 - 0.06*link, wantHi: 0.75*1e6 - 0.04*link},
		{name: "clients gone for longer than the hold: no limit", warm: true, clientBps: 0.5 * link, idleBefore: paceHold + time.Second},
		{name: "nothing measured, no cap: no limit (yield instead)", clientBps: 0.1 * link},
		{name: "nothing measured: cap is the base", fixed: 2e6, clientBps: 0.1 * link,
			wantLo: 0.75*2e6 - 0.11*link, wantHi: 0.75*2e6 - 0.09*link},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			p := newPacer(tc.fixed, clk.now)
			l := fakeLink{p, clk}
			if tc.warm {
				l.run(20*time.Second, link, 0, true)
				if tc.fixed == 0 {
					if a := peerStatus(p).AvailableBps; math.Abs(a-link) > 0.05*link {
						t.Fatalf("available %.0f B/s measured on a %.0f B/s link", a, link)
					}
				}
			}
			if tc.clientBps > 0 {
				l.run(20*time.Second, link, tc.clientBps, true)
			}
			clk.advance(tc.idleBefore)
			got := peerStatus(p).LimitBps
			if tc.wantHi == 0 {
				if got != 0 {
					t.Fatalf("limit %.0f B/s, want none", got)
				}
				return
			}
			if got < tc.wantLo-1 || got > tc.wantHi+1 {
				t.Fatalf("limit %.0f B/s, want in [%.0f, %.0f]", got, tc.wantLo, tc.wantHi)
			}
		})
	}
}

// TestPacerUsesLinkWhenIdle checks the ≥ 80 % target on the fake link:
// unloaded, background traffic is not held back at all; with clients
// active it leaves them room, and it gets the link back once they stop.
func TestPacerUsesLinkWhenIdle(t *testing.T) {
	const link = 2.5e6
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p := newPacer(0, clk.now)
	l := fakeLink{p, clk}
	if sent := l.run(10*time.Second, link, 0, true); sent < 0.8*link*10 {
		t.Fatalf("unloaded: %.0f B in 10 s on a %.0f B/s link", sent, link)
	}
	loaded := l.run(10*time.Second, link, 0.1*link, true)
	if share := loaded / (10 * link); share > 0.75 || share < 0.1 {
		t.Fatalf("with clients, background used %.2f of the link", share)
	}
	clk.advance(paceHold)
	if sent := l.run(10*time.Second, link, 0, true); sent < 0.8*link*10 {
		t.Fatalf("after clients left: %.0f B in 10 s", sent)
	}
}

// TestPacerMeasuresOnlySaturatedWindows: windows where background work
// was idle part of the time, throttled, or shared with clients say
// nothing about the link, so they leave the estimate alone.
func TestPacerMeasuresOnlySaturatedWindows(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p := newPacer(0, clk.now)
	l := fakeLink{p, clk}
	l.run(10*time.Second, 2e6, 0, true)
	before := peerStatus(p).AvailableBps
	// Half-idle windows: one short transfer per window.
	for range 10 {
		end := p.background(testPeer)
		clk.advance(200 * time.Millisecond)
		end(1000)
		clk.advance(paceWindow)
	}
	l.run(10*time.Second, 2e6, 1e5, true)
	if after := peerStatus(p).AvailableBps; after != before {
		t.Fatalf("estimate moved from %.0f to %.0f on unsaturated or shared windows", before, after)
	}
}

func TestPacerWaitRespectsCap(t *testing.T) {
	p := newPacer(4<<20, nil)
	ctx := context.Background()
	start := time.Now()
	const blocks = 12
	for range blocks {
		end, err := p.begin(ctx, testPeer, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		end(1 << 20)
	}
	// 12 MiB at 4 MiB/s, less the burst of one block.
	if el, min := time.Since(start), time.Duration(float64(blocks-1)/4*0.9*float64(time.Second)); el < min {
		t.Fatalf("12 MiB in %v at a 4 MiB/s cap, want at least %v", el, min)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.begin(cctx, "other", 64<<20); err == nil {
		t.Fatal("wait with a cancelled context returned nil")
	}
}

// TestPacerRemoteClients: a peer whose put replies say its clients are
// active gets background traffic at the target share minus what its
// clients use, for paceHold after its last such reply; other peers do not.
func TestPacerRemoteClients(t *testing.T) {
	const link = 2.5e6
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p := newPacer(0, clk.now)
	l := fakeLink{p, clk}
	l.run(20*time.Second, link, 0, true)
	if got := peerStatus(p).LimitBps; got != 0 {
		t.Fatalf("limit %.0f before any client", got)
	}
	active, bps, err := decodePutReply(encodePutReply(true, 2e5))
	if err != nil {
		t.Fatal(err)
	}
	p.remote(testPeer, active, bps)
	st := peerStatus(p)
	if want := 0.75*st.AvailableBps - 2e5; !st.RemoteClients || math.Abs(st.LimitBps-want) > 1 {
		t.Fatalf("after a busy reply: %+v, want limit %.0f", st, want)
	}
	end := p.background("peer-b")
	clk.advance(time.Second)
	end(1000)
	for _, pp := range p.status().Peers {
		if pp.Peer == "peer-b" && pp.LimitBps != 0 {
			t.Fatalf("peer-b limited by peer-a's clients: %+v", pp)
		}
	}
	clk.advance(paceHold)
	if st := peerStatus(p); st.RemoteClients || st.LimitBps != 0 {
		t.Fatalf("still limited %v after the last busy reply: %+v", paceHold, st)
	}
	// An older node's bare reply says nothing.
	if active, _, err := decodePutReply([]byte{wireVersion}); err != nil || active {
		t.Fatalf("bare reply: %v %v", active, err)
	}
}

func TestDecodePutReply(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		ok     bool
		active bool
		bps    uint64
	}{
		{"older node", []byte{wireVersion}, true, false, 0},
		{"idle", encodePutReply(false, 0), true, false, 0},
		{"busy", encodePutReply(true, 123456), true, true, 123456},
		{"empty", nil, false, false, 0},
		{"wrong version", []byte{wireVersion + 1, 0, 0}, false, false, 0},
		{"unknown flag", []byte{wireVersion, 0x80, 0}, false, false, 0},
		{"truncated varint", []byte{wireVersion, 1, 0x80}, false, false, 0},
		{"trailing bytes", []byte{wireVersion, 1, 5, 9}, false, false, 0},
		{"flags without rate", []byte{wireVersion, 1}, false, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			active, bps, err := decodePutReply(tc.in)
			if (err == nil) != tc.ok || active != tc.active || bps != tc.bps {
				t.Fatalf("decode %x = %v %d %v", tc.in, active, bps, err)
			}
		})
	}
}

func FuzzDecodePutReply(f *testing.F) {
	f.Add([]byte{wireVersion})
	f.Add(encodePutReply(true, 1<<40))
	f.Add([]byte{wireVersion, 1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		active, bps, err := decodePutReply(b)
		if err != nil || len(b) == 1 {
			return
		}
		if again := encodePutReply(active, bps); string(again) != string(b) {
			// Uvarints have non-minimal encodings; the decoded values must
			// still survive a round trip.
			a2, b2, err := decodePutReply(again)
			if err != nil || a2 != active || b2 != bps {
				t.Fatalf("round trip of %x: %v %d %v", b, a2, b2, err)
			}
		}
	})
}

// TestPacerOneAtATimeWhileLimited: while a peer's traffic is limited, a
// second background transfer with it waits for the first to end; other
// peers and unlimited peers are not held.
func TestPacerOneAtATimeWhileLimited(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p := newPacer(1<<40, clk.now) // a cap far above anything: a base, never binding
	ctx := context.Background()
	end1, err := p.begin(ctx, "free", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.begin(ctx, "free", 1); err != nil { // not limited: no wait
		t.Fatal(err)
	}
	end1(1)
	p.remote(testPeer, true, 0)
	first, err := p.begin(ctx, testPeer, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		end, err := p.begin(ctx, testPeer, 1)
		if err == nil {
			end(1)
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second transfer with a limited peer started at once (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	first(1)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("second transfer still waiting after the first ended")
	}
}
