package block

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/db"
)

// maxRetryShift caps the resync backoff at ResyncRetry × 2^6.
const maxRetryShift = 6

// probeInterval is how often peers that failed a call are probed.
const probeInterval = 5 * time.Second

// enqueue persists a resync of h due after delay.
func (r *repl) enqueue(h Hash, delay time.Duration) {
	b := r.s.cfg.DB.NewBatch()
	b.Put(db.BlockResyncKey(time.Now().Add(delay).UnixNano(), h[:]), db.WrapValue(nil))
	if err := r.s.cfg.DB.Write(b, false); err != nil {
		r.log.Warn("queue block resync", "hash", h.String(), "err", err)
		return
	}
	r.queueLen.Add(1)
	if delay <= 0 {
		r.kick()
	}
}

func (r *repl) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// recount sets the queue and error gauges from the database.
func (r *repl) recount() {
	count := func(p []byte) int64 {
		var n int64
		it := r.s.cfg.DB.IteratePrefix(p)
		for it.Next() {
			n++
		}
		_ = it.Close()
		return n
	}
	r.queueLen.Store(count(db.BlockResyncPrefix()))
	r.errored.Store(count(db.BlockErrorPrefix()))
}

type queued struct {
	key []byte
	h   Hash
}

// runQueue feeds due queue entries to ResyncWorkers workers until ctx ends.
func (r *repl) runQueue(ctx context.Context) {
	jobs := make(chan queued)
	var wg sync.WaitGroup
	for range r.cfg.ResyncWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r.work(ctx, j)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	// A start is a good moment to retry what failed before (peers that
	// were down may be back), whatever their backoff says.
	r.retryErrored()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastCount, lastProbe := time.Now(), time.Now()
	for {
		if time.Since(lastCount) > 10*time.Second {
			r.recount()
			lastCount = time.Now()
		}
		if time.Since(lastProbe) > probeInterval {
			r.probeDown(ctx)
			lastProbe = time.Now()
		}
		jobs2 := r.due(64)
		if len(jobs2) > 1 {
			r.prefetchNeed(ctx, jobs2)
		}
		for _, j := range jobs2 {
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// due lists up to n due entries not already being worked on, marking them in flight.
func (r *repl) due(n int) []queued {
	var out []queued
	it := r.s.cfg.DB.Iterate(db.BlockResyncPrefix(), db.BlockResyncKey(time.Now().UnixNano()+1, nil))
	r.inflightMu.Lock()
	for it.Next() && len(out) < n {
		_, hb, err := db.DecodeBlockResyncKey(it.Key())
		if err != nil {
			continue
		}
		h, err := HashFromBytes(hb)
		if err != nil || r.inflight[h] {
			continue
		}
		r.inflight[h] = true
		out = append(out, queued{append([]byte(nil), it.Key()...), h})
	}
	r.inflightMu.Unlock()
	_ = it.Close()
	return out
}

// work resyncs one block, then drops its queue entry or requeues it with backoff.
func (r *repl) work(ctx context.Context, j queued) {
	defer func() {
		r.inflightMu.Lock()
		delete(r.inflight, j.h)
		r.inflightMu.Unlock()
	}()
	err := r.resyncOne(ctx, j.h)
	if ctx.Err() != nil {
		return // entry stays queued for the next start
	}
	b := r.s.cfg.DB.NewBatch()
	b.Delete(j.key)
	ek := db.BlockErrorKey(j.h[:])
	rec, hadErr := r.errorRecord(ek)
	prev := rec.count
	if err == nil {
		if hadErr {
			b.Delete(ek)
			r.errored.Add(-1)
		}
		r.queueLen.Add(-1)
	} else {
		shift := min(prev, maxRetryShift)
		delay := r.cfg.ResyncRetry << shift
		due := time.Now().Add(delay).UnixNano()
		b.Put(db.BlockResyncKey(due, j.h[:]), db.WrapValue(nil))
		b.Put(ek, blockError{last: time.Now().Unix(), count: prev + 1, due: due}.encode())
		if !hadErr {
			r.errored.Add(1)
		}
		r.log.Info("block resync failed", "hash", j.h.String(), "errors", prev+1, "retry_in", delay, "err", err)
	}
	if werr := r.s.cfg.DB.Write(b, false); werr != nil {
		r.log.Warn("update block resync queue", "err", werr)
	}
}

// blockError is the record of a block whose resync failed: when it last
// failed, how many times in a row, and when its retry is due.
type blockError struct {
	last  int64 // unix s
	count int
	due   int64 // unix ns of the queued retry
}

func (e blockError) encode() []byte {
	p := binary.AppendVarint(nil, e.last)
	p = binary.AppendUvarint(p, uint64(e.count))
	p = binary.AppendVarint(p, e.due)
	return db.WrapValue(p)
}

func decodeBlockError(v []byte) (blockError, error) {
	var e blockError
	p, err := db.UnwrapValue(v)
	if err != nil {
		return e, err
	}
	var n int
	if e.last, n = binary.Varint(p); n <= 0 {
		return e, fmt.Errorf("decode block error: %w", db.ErrBadValue)
	}
	p = p[n:]
	c, n := binary.Uvarint(p)
	if n <= 0 {
		return e, fmt.Errorf("decode block error: %w", db.ErrBadValue)
	}
	e.count = int(min(c, 1<<16))
	p = p[n:]
	if e.due, n = binary.Varint(p); n <= 0 {
		return e, fmt.Errorf("decode block error: %w", db.ErrBadValue)
	}
	return e, nil
}

// errorRecord returns the failure record of a block, if any.
func (r *repl) errorRecord(key []byte) (blockError, bool) {
	v, err := r.s.cfg.DB.Get(key)
	if err != nil {
		return blockError{}, false
	}
	e, _ := decodeBlockError(v)
	return e, true
}

// resyncOne makes h's placement right, as seen from this node:
//   - a replica that references h (refcount > 0) and lacks it fetches it;
//   - replicas that lack it get it from this node (or through it);
//   - a node that is no replica deletes its copy once every replica of
//     every live layout confirmed it has the block.
func (r *repl) resyncOne(ctx context.Context, h Hash) error {
	v := r.cfg.View()
	if !v.Ready() {
		return fmt.Errorf("resync block %s: no layout: %w", h, ErrUnavailable)
	}
	_, all := owners(v, h)
	mine := slices.Contains(all, r.self)
	has, err := r.s.Has(h)
	if err != nil {
		return err
	}
	rc, err := r.s.RefCount(h)
	if err != nil {
		return err
	}
	others := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == r.self })
	var data []byte
	defer func() {
		if data != nil {
			r.s.PutBuffer(data)
		}
	}()
	if mine && !has && rc > 0 {
		from := r.fetchOrder(v, h)
		src := ""
		if len(from) > 0 {
			src = from[0] // paced as traffic with the nearest holder
		}
		done, err := r.pace.begin(ctx, src, r.s.cfg.BlockSize)
		if err != nil {
			return err
		}
		data, err = r.fetch(ctx, h, from)
		done(len(data))
		if err != nil {
			return err
		}
		if _, err := r.s.storeReplica(h, data); err != nil {
			return err
		}
		has = true
		r.rebal.add(int64(len(data)))
	}
	if len(others) == 0 {
		return nil
	}
	flags := make(map[string]byte, len(others))
	asked := make(map[string]time.Time, len(others)) // when each answer was given
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range others {
		if f, at, ok := r.needs.take(h, id); ok {
			flags[id], asked[id] = f, at
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := r.need(ctx, id, []Hash{h})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", shortID(id), err))
				return
			}
			flags[id], asked[id] = f[0], time.Now()
		}()
	}
	wg.Wait()
	var lacking, holders []string
	for _, id := range others {
		f, ok := flags[id]
		switch {
		case !ok:
		case f&NeedHas != 0:
			holders = append(holders, id)
		default:
			lacking = append(lacking, id)
		}
	}
	if len(lacking) > 0 && !has && !mine && rc == 0 && len(holders) == 0 {
		return errors.Join(append(errs, fmt.Errorf("resync block %s: no copy reachable: %w", h, ErrNotFound))...)
	}
	if len(lacking) > 0 && (has || len(holders) > 0) {
		if data == nil {
			if has {
				data, err = r.s.readLocal(ctx, h)
			} else {
				data, err = r.fetch(ctx, h, holders)
			}
			if err != nil {
				return err
			}
		}
		payload := encodePut(h, data)
		for _, id := range lacking {
			done, err := r.pace.begin(ctx, id, len(payload))
			if err != nil {
				return err
			}
			if time.Since(asked[id]) > needFresh && r.gotMeanwhile(ctx, id, h) {
				// It got the block since it was asked (its own fetch, or
				// another holder's push): do not send it again.
				done(0)
				holders = append(holders, id)
				continue
			}
			out, err := r.call(ctx, id, "put", payload)
			if err != nil {
				done(0)
				errs = append(errs, fmt.Errorf("put to %s: %w", shortID(id), err))
				continue
			}
			done(len(payload))
			if active, bps, err := decodePutReply(out); err == nil {
				r.pace.remote(id, active, bps)
			}
			r.met.rebalanceBytes.Add(float64(len(data)))
			r.met.bytesWritten.Add(float64(len(data)))
			r.rebal.add(int64(len(data)))
			holders = append(holders, id)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("resync block %s: %w", h, errors.Join(errs...))
	}
	if !mine && has && len(holders) == len(others) {
		// Every replica of every live layout has it: drop the local copy.
		r.s.mu.Lock()
		pinned := r.s.pins[h] > 0
		if !pinned {
			r.s.removeFiles(h)
		}
		r.s.mu.Unlock()
		if pinned {
			return fmt.Errorf("resync block %s: in use, not deleted yet", h)
		}
		r.log.Debug("offloaded block", "hash", h.String())
	}
	return nil
}

// runLayoutWatch starts a rebalance scan whenever the set of live layouts
// changes (and once at start, once a layout exists).
func (r *repl) runLayoutWatch(ctx context.Context) {
	t := time.NewTicker(r.cfg.LayoutPoll)
	defer t.Stop()
	// The last scanned layouts are kept across restarts: a restart alone
	// does not rescan every block.
	marker := filepath.Join(r.s.cfg.Dir, rebalanceStateFile)
	b, _ := os.ReadFile(marker)
	last := string(b)
	for {
		v := r.cfg.View()
		if id := layoutsID(v); v.Ready() && id != last {
			if err := r.scan(ctx, v); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.log.Warn("block rebalance scan", "err", err)
			} else {
				last = id
				if err := os.WriteFile(marker, []byte(id), 0o644); err != nil {
					r.log.Warn("save rebalance state", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rebalanceStateFile holds the live layouts of the latest rebalance scan.
const rebalanceStateFile = "rebalance-state"

func layoutsID(v cluster.View) string {
	var b strings.Builder
	for _, l := range v.Layouts {
		b.WriteString(l.ID())
		b.WriteByte(' ')
	}
	return b.String()
}

// scan queues every local block whose placement the live layouts changed:
// blocks this node holds but no longer owns (offload), blocks it owns and
// references but lacks (fetch), and blocks of partitions that gained
// replicas, pushed by one deterministic holder (the lowest ID among the
// replicas in both the previous and newest layouts).
func (r *repl) scan(ctx context.Context, v cluster.View) error {
	var prevSets, newSets func(p uint8) []string
	if n := len(v.Layouts); n >= 2 {
		prevSets, newSets = v.Layouts[n-2].NodesOf, v.Layouts[n-1].NodesOf
	}
	var total, blocks int64
	var last []byte
	for {
		batch, next, err := r.s.rcPage(last, 1024)
		if err != nil {
			return err
		}
		b := r.s.cfg.DB.NewBatch()
		queued := 0
		for _, e := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			h := e.h
			_, all := owners(v, h)
			mine := slices.Contains(all, r.self)
			_, size, serr := r.s.stat(h)
			has := serr == nil
			size = max(size-headerLen, 0) // data bytes (compressed blocks count their stored size)
			push := false
			switch {
			case !mine && has && e.rc.count > 0:
				push = true // unreferenced copies are left to GC
			case mine && !has && e.rc.count > 0:
				push, size = true, e.rc.size
			case mine && has && prevSets != nil:
				p := Partition(h)
				old, cur := prevSets(p), newSets(p)
				if gained := slices.ContainsFunc(cur, func(id string) bool { return !slices.Contains(old, id) }); gained {
					both := slices.DeleteFunc(slices.Clone(old), func(id string) bool { return !slices.Contains(cur, id) })
					slices.Sort(both)
					push = len(both) > 0 && both[0] == r.self
				}
			}
			if push {
				b.Put(db.BlockResyncKey(time.Now().UnixNano(), h[:]), db.WrapValue(nil))
				queued++
				total += size
				blocks++
			}
		}
		if queued > 0 {
			if err := r.s.cfg.DB.Write(b, false); err != nil {
				return fmt.Errorf("queue rebalance: %w", err)
			}
			r.queueLen.Add(int64(queued))
			r.kick()
		}
		if next == nil {
			break
		}
		last = next
	}
	r.rebal.start(layoutsID(v), total, blocks)
	if blocks > 0 {
		r.log.Info("block rebalance queued", "layouts", layoutsID(v), "blocks", blocks, "bytes", total)
	}
	return nil
}

type rcEntry struct {
	h  Hash
	rc refCount
}

// rcPage returns up to n reference counts after key after (nil = from the
// start) and the key to continue from (nil at the end).
func (s *Store) rcPage(after []byte, n int) ([]rcEntry, []byte, error) {
	start := db.BlockRCPrefix()
	if after != nil {
		start = append(append([]byte(nil), after...), 0)
	}
	it := s.cfg.DB.Iterate(start, db.PrefixEnd(db.BlockRCPrefix()))
	var out []rcEntry
	var lastKey []byte
	for it.Next() {
		if len(out) == n {
			break
		}
		hb, err := db.DecodeBlockRCKey(it.Key())
		if err != nil {
			continue
		}
		h, err := HashFromBytes(hb)
		if err != nil {
			continue
		}
		rc, err := decodeRefCount(it.Value())
		if err != nil {
			continue
		}
		out = append(out, rcEntry{h, rc})
		lastKey = append(lastKey[:0], it.Key()...)
	}
	if err := it.Close(); err != nil {
		return nil, nil, fmt.Errorf("list block refcounts: %w", err)
	}
	if len(out) < n {
		return out, nil, nil
	}
	return out, lastKey, nil
}

// rebalance tracks the transfers after the latest layout change. Its
// state is saved to a file (see progress.go) so a restart keeps it.
type rebalance struct {
	mu       sync.Mutex
	now      func() time.Time
	layouts  string
	started  time.Time
	total    int64
	blocks   int64
	done     int64
	rate     float64 // bytes/s, exponentially averaged
	lastTick time.Time
	tickDone int64

	path    string    // progress file ("" = not saved)
	saved   time.Time // last save
	saveMu  sync.Mutex
	saveErr func(error)
}

func (b *rebalance) clock() time.Time {
	if b.now == nil {
		return time.Now()
	}
	return b.now()
}

func (b *rebalance) start(layouts string, total, blocks int64) {
	b.mu.Lock()
	now := b.clock()
	b.layouts, b.started, b.total, b.blocks, b.done = layouts, now, total, blocks, 0
	b.lastTick, b.tickDone, b.rate = now, 0, 0
	p := b.snapshotLocked(now)
	b.mu.Unlock()
	b.save(p)
}

func (b *rebalance) add(n int64) {
	b.mu.Lock()
	now := b.clock()
	b.done += n
	b.tickDone += n
	if el := now.Sub(b.lastTick); el >= time.Second {
		cur := float64(b.tickDone) / el.Seconds()
		if b.rate == 0 {
			b.rate = cur
		} else {
			b.rate = 0.7*b.rate + 0.3*cur
		}
		b.lastTick, b.tickDone = now, 0
	}
	var p *progress
	if b.path != "" && now.Sub(b.saved) >= progressSaveEvery {
		p = b.snapshotLocked(now)
	}
	b.mu.Unlock()
	if p != nil {
		b.save(p)
	}
}

// RebalanceStatus is block movement after the latest layout change.
type RebalanceStatus struct {
	// Active while transfers queued by the latest layout change remain.
	Active  bool   `json:"active"`
	Layouts string `json:"layouts,omitempty"`
	// Blocks and BytesTotal were queued by the scan; BytesDone were moved since.
	Blocks     int64         `json:"blocks"`
	BytesTotal int64         `json:"bytes_total"`
	BytesDone  int64         `json:"bytes_done"`
	Progress   float64       `json:"progress"` // 0..1
	RateBps    float64       `json:"rate_bytes_per_sec"`
	ETA        time.Duration `json:"eta_ns"`
	Started    time.Time     `json:"started,omitzero"`
}

func (b *rebalance) status(queue int64) RebalanceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock()
	st := RebalanceStatus{Layouts: b.layouts, Blocks: b.blocks, BytesTotal: b.total, BytesDone: min(b.done, max(b.total, b.done)), Started: b.started}
	rate := b.rate
	if rate == 0 && b.done > 0 {
		if el := now.Sub(b.started).Seconds(); el > 0 {
			rate = float64(b.done) / el
		}
	}
	st.RateBps = rate
	st.Progress = 1
	if b.total > 0 && queue > 0 {
		st.Progress = min(float64(b.done)/float64(b.total), 1)
	}
	st.Active = b.blocks > 0 && queue > 0 && st.Progress < 1
	if st.Active && rate > 0 {
		st.ETA = time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
	}
	return st
}

// unsafeToDrop returns the hashes among hs that this node holds for a
// partition it owns in no live layout and that some owner wants (references
// but lacks) or could not be asked: deleting them could lose the last copy.
// Those are queued for a push.
func (r *repl) unsafeToDrop(ctx context.Context, hs []Hash) map[Hash]bool {
	v := r.cfg.View()
	keep := map[Hash]bool{}
	perOwner := map[string][]Hash{}
	for _, h := range hs {
		if ok, err := r.s.Has(h); err != nil || !ok {
			continue
		}
		if !v.Ready() {
			keep[h] = true
			continue
		}
		_, all := owners(v, h)
		if slices.Contains(all, r.self) {
			continue
		}
		for _, id := range all {
			perOwner[id] = append(perOwner[id], h)
		}
	}
	for id, list := range perOwner {
		for len(list) > 0 {
			n := min(len(list), MaxNeedBatch)
			flags, err := r.need(ctx, id, list[:n])
			for i, h := range list[:n] {
				if err != nil || flags[i]&NeedWanted != 0 {
					keep[h] = true
				}
			}
			list = list[n:]
		}
	}
	for h := range keep {
		r.enqueue(h, 0)
	}
	return keep
}

// retryErrored moves the pending retry of every errored block (at most
// 4,096 per call) to now and returns how many it moved.
func (r *repl) retryErrored() int {
	now := time.Now().UnixNano()
	b := r.s.cfg.DB.NewBatch()
	n := 0
	it := r.s.cfg.DB.IteratePrefix(db.BlockErrorPrefix())
	for it.Next() && n < 4096 {
		e, err := decodeBlockError(it.Value())
		if err != nil || e.due <= now {
			continue
		}
		h := it.Key()[1:]
		b.Delete(db.BlockResyncKey(e.due, h))
		b.Put(db.BlockResyncKey(now, h), db.WrapValue(nil))
		e.due = now
		b.Put(append([]byte(nil), it.Key()...), e.encode())
		n++
	}
	_ = it.Close()
	if n == 0 {
		return 0
	}
	if err := r.s.cfg.DB.Write(b, false); err != nil {
		r.log.Warn("queue errored blocks", "err", err)
		return 0
	}
	r.kick()
	return n
}

// needCache holds recent answers of batched need calls, so a worker does
// not spend a round trip per block and owner asking what a batch already told.
type needCache struct {
	mu sync.Mutex
	m  map[needKey]needVal
}

type needKey struct {
	h  Hash
	id string
}

type needVal struct {
	f  byte
	at time.Time
}

// needTTL bounds the age of a cached answer.
const needTTL = 10 * time.Second

// needFresh: a "lacks it" answer older than this is checked again right
// before a push (one small round trip against a block's transfer), since
// the node may have fetched the block itself, or received it from another
// holder, meanwhile.
const needFresh = time.Second

// gotMeanwhile asks node id again whether it stores h.
func (r *repl) gotMeanwhile(ctx context.Context, id string, h Hash) bool {
	f, err := r.need(ctx, id, []Hash{h})
	return err == nil && f[0]&NeedHas != 0
}

func (c *needCache) put(h Hash, id string, f byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[needKey]needVal{}
	}
	if len(c.m) > 4*MaxNeedBatch { // stale leftovers: start over
		clear(c.m)
	}
	c.m[needKey{h, id}] = needVal{f, time.Now()}
}

// take returns and forgets a fresh answer and when it was given.
func (c *needCache) take(h Hash, id string) (byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[needKey{h, id}]
	if ok {
		delete(c.m, needKey{h, id})
	}
	return v.f, v.at, ok && time.Since(v.at) < needTTL
}

// prefetchNeed asks each owner concerned, in one need call, about the
// blocks of a batch of queue entries.
func (r *repl) prefetchNeed(ctx context.Context, js []queued) {
	v := r.cfg.View()
	if !v.Ready() {
		return
	}
	per := map[string][]Hash{}
	for _, j := range js {
		_, all := owners(v, j.h)
		for _, id := range all {
			if id != r.self {
				per[id] = append(per[id], j.h)
			}
		}
	}
	var wg sync.WaitGroup
	for id, hs := range per {
		if len(hs) < 2 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			flags, err := r.need(ctx, id, hs)
			if err != nil {
				return
			}
			for i, h := range hs {
				r.needs.put(h, id, flags[i])
			}
		}()
	}
	wg.Wait()
}
