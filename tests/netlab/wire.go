package netlab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LinkConfig shapes a home's access link. Each setting applies to both
// directions separately (uplink and downlink), so the RTT between two
// homes A and B grows by 2*(A.Delay + B.Delay).
type LinkConfig struct {
	// Delay is the one-way propagation delay added in each direction.
	Delay time.Duration
	// Jitter spreads each packet's delay uniformly in [Delay-Jitter,
	// Delay+Jitter] without reordering (release times never go backwards).
	Jitter time.Duration
	// Rate is the bandwidth in bit/s in each direction (0: unlimited).
	Rate int64
	// DownRate, if set, is the downlink (internet to home) bandwidth in
	// bit/s, Rate then being the uplink: an asymmetric line.
	DownRate int64
	// QueueLimit is the longest queueing delay the rate limiter buffers
	// before dropping (drop-tail, like a router's buffer). Default 100 ms.
	QueueLimit time.Duration
	// Loss is the probability in [0, 1) of dropping a frame, per
	// direction (a GSO super-frame counts as one frame).
	Loss float64
}

// dirParams is one direction's share of a LinkConfig.
type dirParams struct {
	delay, jitter, queueLimit time.Duration
	rate                      int64
	loss                      float64
}

func (c LinkConfig) params(up bool) *dirParams {
	p := &dirParams{delay: c.Delay, jitter: c.Jitter, queueLimit: c.QueueLimit, rate: c.Rate, loss: c.Loss}
	if !up && c.DownRate > 0 {
		p.rate = c.DownRate
	}
	if p.queueLimit == 0 {
		p.queueLimit = 100 * time.Millisecond
	}
	return p
}

// minProcs is the GOMAXPROCS New ensures for a lab with shaped links:
// each of a link's four shaper threads may hold a P while it blocks in the
// kernel, and the rest of the test process must still run.
func minProcs(shapedLinks int) int { return 4 + 4*shapedLinks }

func (c LinkConfig) shaped() bool {
	return c.Delay > 0 || c.Jitter > 0 || c.Rate > 0 || c.DownRate > 0 || c.Loss > 0
}

func (c LinkConfig) validate() error {
	switch {
	case c.Delay < 0, c.Jitter < 0, c.Rate < 0, c.DownRate < 0, c.QueueLimit < 0:
		return fmt.Errorf("negative link setting %+v", c)
	case c.Jitter > c.Delay:
		return fmt.Errorf("jitter %v larger than delay %v", c.Jitter, c.Delay)
	case c.Delay > 10*time.Second:
		return fmt.Errorf("delay %v too large", c.Delay)
	case c.Rate > 0 && c.Rate < 8000, c.DownRate > 0 && c.DownRate < 8000:
		return fmt.Errorf("rate %d/%d bit/s too small", c.Rate, c.DownRate)
	case !(c.Loss >= 0 && c.Loss < 1):
		return fmt.Errorf("loss %v not in [0, 1)", c.Loss)
	}
	return nil
}

// LinkStats counts a shaped link's frames.
type LinkStats struct {
	UpFrames, DownFrames   uint64
	UpBytes, DownBytes     uint64
	UpDropped, DownDropped uint64 // queue overflow (rate limit)
	UpLost, DownLost       uint64 // random loss (LinkConfig.Loss)
	SendErrors, RecvErrors uint64
	MaxLateness            time.Duration // worst release later than planned
	LateFrames             uint64        // frames released > 2 ms late
}

// vnetHdrLen is sizeof(struct virtio_net_hdr): with PACKET_VNET_HDR the
// kernel prefixes it to received frames and accepts it on sends, so GSO
// super-frames and partial checksums cross the userspace hop intact.
const vnetHdrLen = 10

// wire is the userspace access-link emulator: a packet socket on each of
// two interfaces of the internet namespace (the router-facing veth end
// and a veth whose peer is the bridge port) and, per direction, a reader
// that stamps each frame with a release time and a writer that sends it
// then. It replaces netem (absent from this kernel) and needs no
// iptables: NFT_QUEUE is not built and the NFQUEUE xt target would need
// the iptables binary.
type wire struct {
	fdA, fdB int // A: router side, B: bridge side
	up, down *direction
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

type frame struct {
	data    []byte
	release time.Time
}

type direction struct {
	in, out  int
	params   atomic.Pointer[dirParams]
	rng      *rand.Rand
	q        chan frame
	prev     time.Time
	linkFree time.Time

	frames, bytes, dropped, lost, sendErr, recvErr, late atomic.Uint64
	maxLate                                              atomic.Int64
}

func newDirection(in, out int, cfg LinkConfig, up bool, seed uint64) *direction {
	d := &direction{in: in, out: out, rng: rand.New(rand.NewPCG(seed, uint64(in))), q: make(chan frame, 8192)}
	d.params.Store(cfg.params(up))
	return d
}

func startWire(ns *Host, ifA, ifB string, cfg LinkConfig) (*wire, error) {
	w := &wire{fdA: -1, fdB: -1, stop: make(chan struct{})}
	err := ns.Do(func() error {
		var err error
		if w.fdA, err = packetSocket(ifA); err != nil {
			return err
		}
		w.fdB, err = packetSocket(ifB)
		return err
	})
	if err != nil {
		w.closeFDs()
		return nil, err
	}
	seed := uint64(time.Now().UnixNano())
	w.up = newDirection(w.fdA, w.fdB, cfg, true, seed)
	w.down = newDirection(w.fdB, w.fdA, cfg, false, seed+1)
	for _, d := range []*direction{w.up, w.down} {
		w.wg.Add(2)
		go func() { defer w.wg.Done(); d.read(w.stop) }()
		go func() { defer w.wg.Done(); d.write() }()
	}
	return w, nil
}

func packetSocket(ifname string) (int, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, fmt.Errorf("interface %s: %w", ifname, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket on %s: %s: %w", ifname, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		return fail("SO_RCVBUFFORCE", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20); err != nil {
		return fail("SO_SNDBUFFORCE", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifc.Index}); err != nil {
		return fail("bind", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// verdict is plan's decision for a frame.
type verdict int

const (
	pass      verdict = iota
	queueFull         // rate limiter backlog above QueueLimit
	lost              // random loss
)

// plan computes a frame's release time: serialisation at the rate after
// the previous frame (dropping when the backlog exceeds QueueLimit), plus
// Delay ± Jitter, never earlier than the previous release (FIFO).
func (d *direction) plan(now time.Time, size int) (time.Time, verdict) {
	p := d.params.Load()
	if p.loss > 0 && d.rng.Float64() < p.loss {
		return time.Time{}, lost
	}
	release := now
	if p.rate > 0 {
		start := now
		if d.linkFree.After(start) {
			start = d.linkFree
		}
		if start.Sub(now) > p.queueLimit {
			return time.Time{}, queueFull
		}
		d.linkFree = start.Add(time.Duration(int64(size) * 8 * int64(time.Second) / p.rate))
		release = d.linkFree
	}
	delay := p.delay
	if p.jitter > 0 {
		delay += time.Duration(d.rng.Int64N(int64(2*p.jitter)+1)) - p.jitter
	}
	release = release.Add(delay)
	if release.Before(d.prev) {
		release = d.prev
	}
	d.prev = release
	return release, pass
}

// realtimeThread locks the calling goroutine to its OS thread and asks
// for SCHED_FIFO, so a shaper writer keeps its timing while other jobs
// load the CPUs. Such a thread blocks in the kernel and may hold a Go P
// meanwhile, which is why New raises GOMAXPROCS (see minProcs). The goroutine must never unlock: the runtime then destroys the
// thread when the goroutine exits, so no other code inherits the priority.
// Without the privilege (EPERM) it silently stays a normal thread.
func realtimeThread() bool {
	runtime.LockOSThread()
	err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 10}, 0)
	return err == nil
}

func (d *direction) read(stop <-chan struct{}) {
	defer close(d.q)
	// A blocking receive on a real-time thread: under CPU load a normal
	// goroutine (or the netpoller) can wake tens of ms late, longer than
	// the delay budget, even though arrival is the kernel timestamp.
	realtimeThread()
	buf := make([]byte, 256<<10)
	oob := make([]byte, 128)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(d.in, buf, oob, 0)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ENETDOWN) {
				d.recvErr.Add(1)
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		if n <= vnetHdrLen {
			continue
		}
		release, v := d.plan(rxTime(oob[:oobn]), n-vnetHdrLen)
		switch v {
		case queueFull:
			d.dropped.Add(1)
			continue
		case lost:
			d.lost.Add(1)
			continue
		}
		f := frame{data: append([]byte(nil), buf[:n]...), release: release}
		select {
		case d.q <- f:
			d.frames.Add(1)
			d.bytes.Add(uint64(n - vnetHdrLen))
		default:
			d.dropped.Add(1)
		}
	}
}

// rxTime is the kernel's receive timestamp (SO_TIMESTAMPNS), so a late
// wakeup of the reader does not add to the delay; now if absent. The
// timestamp is CLOCK_REALTIME, converted onto the monotonic clock.
func rxTime(oob []byte) time.Time {
	now := time.Now()
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return now
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			age := now.Sub(time.Unix(ts.Sec, ts.Nsec))
			if age < 0 || age > time.Second {
				return now // clock step: ignore
			}
			return now.Add(-age)
		}
	}
	return now
}

func (d *direction) write() {
	realtimeThread()
	for f := range d.q {
		// Sleep in the kernel on this (real-time) thread: hrtimer
		// precision instead of the Go netpoller's millisecond timers.
		for {
			wait := time.Until(f.release)
			if wait <= 20*time.Microsecond {
				break
			}
			ts := unix.NsecToTimespec(int64(wait))
			if err := unix.Nanosleep(&ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
				time.Sleep(wait)
			}
		}
		late := time.Since(f.release)
		if late > time.Duration(d.maxLate.Load()) {
			d.maxLate.Store(int64(late))
		}
		if late > 2*time.Millisecond {
			d.late.Add(1)
		}
		if _, err := unix.Write(d.out, f.data); err != nil {
			d.sendErr.Add(1)
		}
	}
}

func (w *wire) stats() LinkStats {
	late := max(w.up.maxLate.Load(), w.down.maxLate.Load())
	return LinkStats{
		UpFrames: w.up.frames.Load(), DownFrames: w.down.frames.Load(),
		UpBytes: w.up.bytes.Load(), DownBytes: w.down.bytes.Load(),
		UpDropped: w.up.dropped.Load(), DownDropped: w.down.dropped.Load(),
		UpLost: w.up.lost.Load(), DownLost: w.down.lost.Load(),
		SendErrors:  w.up.sendErr.Load() + w.down.sendErr.Load(),
		RecvErrors:  w.up.recvErr.Load() + w.down.recvErr.Load(),
		MaxLateness: time.Duration(late),
		LateFrames:  w.up.late.Load() + w.down.late.Load(),
	}
}

func (w *wire) set(cfg LinkConfig) {
	w.up.params.Store(cfg.params(true))
	w.down.params.Store(cfg.params(false))
}

func (w *wire) close() {
	w.once.Do(func() {
		close(w.stop)
		w.wg.Wait()
		w.closeFDs()
	})
}

func (w *wire) closeFDs() {
	for _, fd := range []int{w.fdA, w.fdB} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
