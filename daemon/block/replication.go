package block

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/db"
	"github.com/entrepot/entrepot/daemon/rpc"
	"github.com/entrepot/entrepot/daemon/table"
)

// Replication errors.
var (
	// ErrUnavailable: no layout yet, a write could not reach W replicas in
	// every live layout, or no replica answered a read. It is
	// table.ErrUnavailable, so model and S3 map both to 503.
	ErrUnavailable = table.ErrUnavailable
	// ErrNotOwner: a put reached a node that is no replica of the block in
	// any live layout.
	ErrNotOwner = errors.New("block: this node is no replica of the block")
	// ErrReplicationEnabled: EnableReplication was called twice.
	ErrReplicationEnabled = errors.New("block: replication already enabled")
)

// ReplicationConfig configures EnableReplication.
type ReplicationConfig struct {
	// RPC carries the block service (required).
	RPC *rpc.Node
	// View returns the current cluster view (required).
	View func() cluster.View
	// RTT is the measured round-trip time to a peer (0 = unknown); nil = unknown for all.
	RTT func(peerID string) time.Duration
	// ResyncWorkers process the resync queue and rebalance transfers in
	// parallel (default 2, at most 8): this also bounds concurrent rebalance transfers.
	ResyncWorkers int
	// ResyncRetry is the first retry delay of a failed resync; it doubles on
	// each failure up to 2^6 times (default 60 s).
	ResyncRetry time.Duration
	// MissingDelay is how long after a reference arrives for a block this
	// node lacks it is fetched (the write may still be in flight; default 10 s).
	MissingDelay time.Duration
	// BufferMax bounds the memory held by writes still sending to slow
	// replicas after their quorum answered; beyond it writes wait (default 64 MiB).
	BufferMax int64
	// Bandwidth caps resync and rebalance traffic in bytes/s (0 = no cap).
	// Client reads and writes are never capped; below the cap, background
	// traffic is paced by the bandwidth it measures and backs off while
	// clients are active (see "Rebalance pacing" in the package doc).
	Bandwidth int64
	// ScrubInterval is the base period of the full scrub (default 25 days,
	// negative disables); ScrubJitter adds a random delay up to it (default 10 days).
	ScrubInterval, ScrubJitter time.Duration
	// ScrubTranquility: the periodic scrub sleeps this many times the time it
	// worked (default 2; on-demand scrubs do not sleep).
	ScrubTranquility int
	// LayoutPoll is how often the view is checked for a layout change (default 2 s).
	LayoutPoll time.Duration
	// CallTimeout bounds one remote block call (default 30 s).
	CallTimeout time.Duration
	// Logger (nil = the store's logger); Registerer receives entrepot_block_* (nil = none).
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// repl is the replication state of a Store.
type repl struct {
	s    *Store
	cfg  ReplicationConfig
	log  *slog.Logger
	self string

	budget *budget
	pace   *pacer
	met    *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	bg     sync.WaitGroup // writes still sending after their quorum
	bgMu   sync.Mutex
	closed bool
	wake   chan struct{}

	queueLen atomic.Int64
	errored  atomic.Int64

	inflightMu sync.Mutex
	inflight   map[Hash]bool

	downMu sync.Mutex
	down   map[string]bool // peers whose last block call failed to reach them

	rebal rebalance
	scrub scrubState
	needs needCache
}

// Partition is the partition of block h: table.Partition of the block_ref
// table's partition key for h (the raw hash bytes), i.e. the first byte of
// SHA-256(h). A block and its references therefore live on the same nodes.
func Partition(h Hash) uint8 {
	x := sha256.Sum256(h[:])
	return x[0]
}

// EnableReplication turns the store into one replica of a cluster. Call it
// once, before serving; background work (resync queue, rebalance, scrub)
// runs until Close.
func (s *Store) EnableReplication(cfg ReplicationConfig) error {
	if cfg.RPC == nil || cfg.View == nil {
		return errors.New("enable block replication: RPC and View are required")
	}
	if cfg.ResyncWorkers <= 0 {
		cfg.ResyncWorkers = 2
	}
	cfg.ResyncWorkers = min(cfg.ResyncWorkers, 8)
	if cfg.ResyncRetry <= 0 {
		cfg.ResyncRetry = 60 * time.Second
	}
	if cfg.MissingDelay <= 0 {
		cfg.MissingDelay = 10 * time.Second
	}
	if cfg.BufferMax <= 0 {
		cfg.BufferMax = 64 << 20
	}
	if cfg.BufferMax < int64(s.cfg.BlockSize+HashSize+1) {
		cfg.BufferMax = int64(s.cfg.BlockSize + HashSize + 1)
	}
	if cfg.ScrubInterval == 0 {
		cfg.ScrubInterval = 25 * 24 * time.Hour
	}
	if cfg.ScrubJitter == 0 {
		cfg.ScrubJitter = 10 * 24 * time.Hour
	}
	if cfg.ScrubTranquility == 0 {
		cfg.ScrubTranquility = 2
	}
	if cfg.LayoutPoll <= 0 {
		cfg.LayoutPoll = 2 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = s.log
	}
	r := &repl{s: s, cfg: cfg, log: log.With("component", "block-repl"), self: cfg.RPC.Self().String(),
		budget: newBudget(cfg.BufferMax), pace: newPacer(cfg.Bandwidth, nil),
		wake: make(chan struct{}, 1), inflight: map[Hash]bool{}, down: map[string]bool{}}
	met, err := newMetrics(r, cfg.Registerer)
	if err != nil {
		return fmt.Errorf("enable block replication: %w", err)
	}
	r.met = met
	r.rebal.saveErr = func(err error) { r.log.Warn("save rebalance progress", "err", err) }
	if err := r.rebal.restore(filepath.Join(s.cfg.Dir, rebalanceProgressFile)); err != nil {
		r.log.Warn("rebalance progress not restored", "err", err)
	}
	if !s.repl.CompareAndSwap(nil, r) {
		return ErrReplicationEnabled
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.recount()
	cfg.RPC.Handle(Service, "put", r.handlePut)
	cfg.RPC.Handle(Service, "get", r.handleGet)
	cfg.RPC.Handle(Service, "need", r.handleNeed)
	r.wg.Add(3)
	go func() { defer r.wg.Done(); r.runQueue(r.ctx) }()
	go func() { defer r.wg.Done(); r.runLayoutWatch(r.ctx) }()
	go func() { defer r.wg.Done(); r.runScrub(r.ctx) }()
	return nil
}

func (r *repl) stop() {
	r.cancel()
	r.wg.Wait()
	r.rebal.flush()
	r.bgMu.Lock()
	r.closed = true
	r.bgMu.Unlock()
	r.bg.Wait()
	r.met.unregister()
}

// owners returns the replica sets of h's partition, one per live layout,
// and their union (sorted).
func owners(v cluster.View, h Hash) (sets [][]string, all []string) {
	sets = v.WriteSets(Partition(h))
	for _, set := range sets {
		for _, id := range set {
			if !slices.Contains(all, id) {
				all = append(all, id)
			}
		}
	}
	sort.Strings(all)
	return sets, all
}

func (r *repl) owns(v cluster.View, h Hash) bool {
	_, all := owners(v, h)
	return slices.Contains(all, r.self)
}

func (r *repl) call(ctx context.Context, id, method string, payload []byte) ([]byte, error) {
	p, err := peer.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("block %s to %s: %w", method, id, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	out, err := r.cfg.RPC.Call(ctx, p, Service, method, payload)
	var re *rpc.RemoteError
	if err != nil && !errors.As(err, &re) && ctx.Err() == nil {
		r.downMu.Lock()
		r.down[id] = true
		r.downMu.Unlock()
	}
	return out, err
}

// heard notes a call from peer id; a peer that failed our calls before is
// back, so blocks whose resync failed are retried now rather than after
// their backoff.
func (r *repl) heard(id peer.ID) {
	s := id.String()
	r.downMu.Lock()
	was := r.down[s]
	delete(r.down, s)
	r.downMu.Unlock()
	if !was {
		return
	}
	r.goBG(func() {
		if n := r.retryErrored(); n > 0 {
			r.log.Info("peer back: retrying errored blocks", "peer", shortID(s), "blocks", n)
		}
	})
}

// goBG runs f in the background unless the store is closing; Close waits for it.
func (r *repl) goBG(f func()) bool {
	r.bgMu.Lock()
	if r.closed {
		r.bgMu.Unlock()
		return false
	}
	r.bg.Add(1)
	r.bgMu.Unlock()
	go func() {
		defer r.bg.Done()
		f()
	}()
	return true
}

// probeDown asks every peer that failed a call whether it is back (an
// empty need); when one is, errored blocks are retried at once.
func (r *repl) probeDown(ctx context.Context) {
	r.downMu.Lock()
	ids := make([]string, 0, len(r.down))
	for id := range r.down {
		ids = append(ids, id)
	}
	r.downMu.Unlock()
	back := 0
	for _, id := range ids {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := r.need(pctx, id, nil)
		cancel()
		if err == nil {
			r.downMu.Lock()
			delete(r.down, id)
			r.downMu.Unlock()
			back++
		}
	}
	if back > 0 {
		if n := r.retryErrored(); n > 0 {
			r.log.Info("peers back: retrying errored blocks", "peers", back, "blocks", n)
		}
	}
}

// write stores data (hash h) on the replicas of its partition: it returns
// once W replicas of every live layout acknowledged. The others go on in
// the background, holding a copy of the block counted against BufferMax;
// those that fail are retried through the persistent resync queue.
func (r *repl) write(ctx context.Context, h Hash, data []byte) (bool, error) {
	v := r.cfg.View()
	if !v.Ready() {
		return false, fmt.Errorf("write block %s: no layout yet: %w", h, ErrUnavailable)
	}
	sets, all := owners(v, h)
	_, w := v.Quorums()
	size := int64(1 + HashSize + len(data))
	if err := r.budget.acquire(ctx, size); err != nil {
		return false, fmt.Errorf("write block %s: %w", h, err)
	}
	payload := encodePut(h, data) // the copy the background sends keep
	type result struct {
		id      string
		written bool
		err     error
	}
	ch := make(chan result, len(all))
	for _, id := range all {
		go func() {
			if id == r.self {
				written, err := r.s.storeReplica(h, payload[1+HashSize:])
				ch <- result{id, written, err}
				return
			}
			end := r.pace.clientXfer()
			out, err := r.call(r.ctx, id, "put", payload)
			if err == nil {
				r.met.bytesWritten.Add(float64(len(data)))
				end(len(payload))
				if active, bps, err := decodePutReply(out); err == nil {
					r.pace.remote(id, active, bps)
				}
			} else {
				end(0)
			}
			ch <- result{id: id, err: err}
		}()
	}
	acked := map[string]bool{}
	failed := map[string]error{}
	written := false
	done := 0
	need := func(set []string) int { return v.Need(set, w) }
	status := func() (ok, impossible bool) {
		ok = true
		for _, set := range sets {
			a, f := 0, 0
			for _, id := range set {
				if acked[id] {
					a++
				} else if failed[id] != nil {
					f++
				}
			}
			if a < need(set) {
				ok = false
			}
			if len(set)-f < need(set) {
				impossible = true
			}
		}
		return ok, impossible
	}
	finish := func(queueFailures bool) {
		// The rest finish in the background; once the write succeeded,
		// their failures go to the resync queue.
		rest := func() {
			defer r.budget.release(size)
			retry := false
			for ; done < len(all); done++ {
				res := <-ch
				if res.err != nil {
					retry = true
					r.log.Debug("block put failed, queued for resync", "hash", h.String(), "node", res.id, "err", res.err)
				}
			}
			if retry && queueFailures {
				r.enqueue(h, r.cfg.MissingDelay)
			}
		}
		if !r.goBG(rest) {
			rest()
		}
	}
	for done < len(all) {
		select {
		case res := <-ch:
			done++
			if res.err != nil {
				failed[res.id] = res.err
			} else {
				acked[res.id] = true
				written = written || res.written
			}
		case <-ctx.Done():
			finish(false)
			return false, fmt.Errorf("write block %s: %w", h, ctx.Err())
		}
		ok, impossible := status()
		if ok {
			if len(failed) > 0 {
				r.enqueue(h, r.cfg.MissingDelay)
			}
			finish(true)
			return written, nil
		}
		if impossible {
			finish(false)
			errs := []error{fmt.Errorf("write block %s: %d of %d replicas answered: %w", h, len(acked), len(all), ErrUnavailable)}
			for id, err := range failed {
				errs = append(errs, fmt.Errorf("%s: %w", shortID(id), err))
			}
			return false, errors.Join(errs...)
		}
	}
	finish(true)
	return written, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[len(id)-12:]
	}
	return id
}

// readOrder sorts the other replicas of h for reading: same zone first,
// then lowest RTT (unknown last), ties by ID.
func (r *repl) readOrder(v cluster.View, h Hash) []string {
	_, all := owners(v, h)
	return r.nearFirst(v, slices.DeleteFunc(all, func(id string) bool { return id == r.self }))
}

// fetchOrder is readOrder followed by the other storage nodes of the live
// layouts, nearest first: a node that left h's partition keeps its copy
// until the new owners have it, and may be the only holder meanwhile (the
// layout that named it may already be pruned).
func (r *repl) fetchOrder(v cluster.View, h Hash) []string {
	first := r.readOrder(v, h)
	var rest []string
	for _, l := range v.Layouts {
		for _, n := range l.Nodes {
			if n.ID != r.self && !n.Role.Gateway() && !slices.Contains(first, n.ID) && !slices.Contains(rest, n.ID) {
				rest = append(rest, n.ID)
			}
		}
	}
	slices.Sort(rest)
	return append(first, r.nearFirst(v, rest)...)
}

// nearFirst sorts node IDs: same zone as this node first, then lowest RTT.
func (r *repl) nearFirst(v cluster.View, cands []string) []string {
	zone := v.Roles[r.self].Role.Zone
	rtt := func(id string) time.Duration {
		if r.cfg.RTT == nil {
			return time.Hour
		}
		if d := r.cfg.RTT(id); d > 0 {
			return d
		}
		return time.Hour
	}
	sort.SliceStable(cands, func(i, j int) bool {
		zi, zj := v.Roles[cands[i]].Role.Zone == zone, v.Roles[cands[j]].Role.Zone == zone
		if zi != zj {
			return zi
		}
		return rtt(cands[i]) < rtt(cands[j])
	})
	return cands
}

// fetch reads h from the other replicas in read order, falling back on
// error, and returns its verified content in a pooled buffer. It fails
// with ErrNotFound when every replica answered that it lacks the block
// (or sent a corrupt copy), else with ErrUnavailable.
func (r *repl) fetch(ctx context.Context, h Hash, from []string) ([]byte, error) {
	if from == nil {
		from = r.fetchOrder(r.cfg.View(), h)
	}
	if len(from) == 0 {
		return nil, fmt.Errorf("fetch block %s: no other replica: %w", h, ErrNotFound)
	}
	var errs []error
	absent := true
	for _, id := range from {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, err := r.call(ctx, id, "get", encodeGet(h))
		var re *rpc.RemoteError
		if err != nil && !(errors.As(err, &re) && (re.Code == codeNotFound || re.Code == codeCorrupt)) {
			absent = false
		}
		if err == nil {
			var data []byte
			if data, err = decodeData(out, r.s.cfg.BlockSize); err == nil && Sum(data) != h {
				err = fmt.Errorf("hash mismatch: %w", ErrCorrupt)
			}
			if err == nil {
				buf := r.s.GetBuffer()[:len(data)]
				copy(buf, data)
				r.met.bytesRead.Add(float64(len(data)))
				return buf, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", shortID(id), err))
	}
	if absent {
		errs = append(errs, ErrNotFound)
	} else {
		errs = append(errs, ErrUnavailable)
	}
	return nil, fmt.Errorf("fetch block %s: %w", h, errors.Join(errs...))
}

// readRemote serves a client read this node cannot serve locally, and
// repairs the local copy when this node should hold it.
func (r *repl) readRemote(ctx context.Context, h Hash, localErr error) ([]byte, error) {
	v := r.cfg.View()
	if !v.Ready() {
		return nil, fmt.Errorf("read block %s (here: %v): no layout: %w", h, localErr, ErrUnavailable)
	}
	done := r.pace.clientXfer()
	data, err := r.fetch(ctx, h, r.fetchOrder(v, h))
	done(len(data))
	if err != nil {
		return nil, fmt.Errorf("read block %s (here: %v): %w", h, localErr, err)
	}
	if r.owns(v, h) {
		if errors.Is(localErr, ErrCorrupt) {
			r.s.removeFiles(h)
		}
		if _, err := r.s.storeReplica(h, data); err != nil {
			r.log.Warn("repair block on read", "hash", h.String(), "err", err)
		}
	}
	return data, nil
}

// storeReplica writes a block received for replication. A block with no
// reference count gets a deletion deadline GCDelay ahead, so one whose
// references never arrive goes away (the deadline is void once referenced).
func (s *Store) storeReplica(h Hash, data []byte) (bool, error) {
	if _, _, err := s.stat(h); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if err := s.writeFile(h, data); err != nil {
		return false, err
	}
	if _, ok, err := getRC(s.cfg.DB.Get, h); err == nil && !ok {
		b := s.cfg.DB.NewBatch()
		b.Put(db.BlockGCKey(time.Now().Add(s.cfg.GCDelay).UnixNano(), h[:]), db.WrapValue(nil))
		if err := s.cfg.DB.Write(b, false); err != nil {
			s.log.Warn("queue unreferenced replica for deletion", "hash", h.String(), "err", err)
		}
	}
	return true, nil
}

func (r *repl) handlePut(ctx context.Context, from peer.ID, payload []byte) ([]byte, error) {
	r.heard(from)
	h, data, err := decodePut(payload, r.s.cfg.BlockSize)
	if err != nil {
		return nil, coded(err)
	}
	if Sum(data) != h {
		return nil, coded(fmt.Errorf("put block %s: hash mismatch: %w", h, ErrCorrupt))
	}
	if !r.owns(r.cfg.View(), h) {
		return nil, coded(fmt.Errorf("put block %s: %w", h, ErrNotOwner))
	}
	if _, err := r.s.storeReplica(h, data); err != nil {
		return nil, err
	}
	r.met.bytesWritten.Add(float64(len(data)))
	return encodePutReply(r.pace.local()), nil
}

func (r *repl) handleGet(ctx context.Context, from peer.ID, payload []byte) ([]byte, error) {
	r.heard(from)
	h, err := decodeGet(payload)
	if err != nil {
		return nil, coded(err)
	}
	data, err := r.s.readLocal(ctx, h)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			r.enqueue(h, 0)
		}
		return nil, coded(err)
	}
	defer r.s.PutBuffer(data)
	out := make([]byte, 1+len(data))
	out[0] = wireVersion
	copy(out[1:], data)
	r.met.bytesRead.Add(float64(len(data)))
	return out, nil
}

func (r *repl) handleNeed(_ context.Context, from peer.ID, payload []byte) ([]byte, error) {
	r.heard(from)
	hs, err := decodeNeed(payload)
	if err != nil {
		return nil, coded(err)
	}
	flags := make([]byte, len(hs))
	for i, h := range hs {
		has, err := r.s.Has(h)
		if err != nil {
			return nil, err
		}
		if has {
			flags[i] |= NeedHas
			continue
		}
		if n, err := r.s.RefCount(h); err == nil && n > 0 {
			flags[i] |= NeedWanted
		}
	}
	return encodeNeedReply(flags), nil
}

// need asks node id which of hs it stores and which it wants.
func (r *repl) need(ctx context.Context, id string, hs []Hash) ([]byte, error) {
	out, err := r.call(ctx, id, "need", encodeNeed(hs))
	if err != nil {
		return nil, err
	}
	return decodeNeedReply(out, len(hs))
}

// budget is a byte semaphore bounding the memory of in-flight writes.
type budget struct {
	mu    sync.Mutex
	cond  chan struct{} // closed and replaced on every release
	max   int64
	inUse int64
}

func newBudget(max int64) *budget { return &budget{max: max, cond: make(chan struct{})} }

func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.inUse+n <= b.max || b.inUse == 0 {
			b.inUse += n
			b.mu.Unlock()
			return nil
		}
		c := b.cond
		b.mu.Unlock()
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.inUse -= n
	close(b.cond)
	b.cond = make(chan struct{})
	b.mu.Unlock()
}

func (b *budget) used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inUse
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// existsRemote checks that some replica of h stores it.
func (r *repl) existsRemote(ctx context.Context, h Hash) error {
	v := r.cfg.View()
	for _, id := range r.readOrder(v, h) {
		f, err := r.need(ctx, id, []Hash{h})
		if err == nil && f[0]&NeedHas != 0 {
			return nil
		}
	}
	return fmt.Errorf("block %s on no replica: %w", h, ErrNotFound)
}
