package table

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/cluster"
)

// Anti-entropy. A round, per table: fold pending changes into the Merkle
// trees; ask every peer sharing partitions with this node for its 256 roots
// (one call); for each shared partition whose roots differ, descend the
// trees (children, then item lists) and pull and push only the differing
// entries. A partition this node holds counts as synced when the round
// reached a read quorum of every live replica set for it (itself included),
// which intersects every acknowledged write; once every held partition of
// every table is synced, MarkSynced(newest version) lets reads move on.
// Partitions this node holds in no live layout are offloaded (pushed to a
// write quorum of every set) and then deleted.

// syncConcurrency bounds the peers synced in parallel.
const syncConcurrency = 4

// itemPage is how many Merkle items one call lists.
const itemPage = 1000

// bulkItems: below this many items in a subtree, compare item lists instead of descending.
const bulkItems = 512

// SyncNow runs one full anti-entropy round over every table (then marks the
// newest layout synced if every held partition reached a quorum).
func (r *Replicator) SyncNow(ctx context.Context) error {
	return r.syncRound(ctx, true)
}

// syncRound syncs every table (all = true) or only the full-copy ones.
func (r *Replicator) syncRound(ctx context.Context, all bool) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	v := r.cfg.View()
	if !v.Ready() {
		return fmt.Errorf("%w: no layout yet", ErrUnavailable)
	}
	newest := v.Layouts[len(v.Layouts)-1]
	var tables []*regTable
	for _, t := range r.allTables() {
		if all || t.mode == FullCopy {
			tables = append(tables, t)
		}
	}
	if all {
		r.setProgress(true, 0)
		defer r.setProgress(false, 1)
	}
	complete := true
	quorum, noQuorum := map[uint8]bool{}, map[uint8]bool{}
	var errs []error
	for i, t := range tables {
		res, err := r.syncTable(ctx, v, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("table %s: %w", t.name, err))
			if res == nil {
				complete = false // nothing known about this table's partitions
			}
			// Otherwise a peer that is down (a dead node being retired, say)
			// only matters where it leaves a partition without a read quorum,
			// which res says below: quorums intersect every acknowledged write.
		}
		if t.mode == Sharded {
			for p, ok := range res {
				if ok {
					quorum[p] = true
				} else {
					noQuorum[p] = true
					complete = false
				}
			}
		} else {
			for _, ok := range res {
				if !ok {
					complete = false
				}
			}
		}
		if all {
			r.setProgress(true, float64(i+1)/float64(len(tables)))
		}
	}
	err := errors.Join(errs...)
	if !all {
		return err
	}
	r.stMu.Lock()
	r.partsQuorum, r.partsNoQuorum = 0, len(noQuorum)
	for p := range quorum {
		if !noQuorum[p] {
			r.partsQuorum++
		}
	}
	r.lastRoundError = ""
	if err != nil {
		r.lastRoundError = err.Error()
	}
	if complete {
		r.lastFullSync = r.cfg.Now()
		if newest.Version > r.syncedVersion {
			r.syncedVersion = newest.Version
		}
	}
	r.stMu.Unlock()
	if complete {
		r.cfg.MarkSynced(newest.Version)
		return nil
	}
	if err == nil {
		return fmt.Errorf("%w: %d partitions without a read quorum of replicas", ErrUnavailable, len(noQuorum))
	}
	return fmt.Errorf("%w: round incomplete: %w", ErrUnavailable, err)
}

func (r *Replicator) setProgress(syncing bool, p float64) {
	r.stMu.Lock()
	r.syncing, r.progress = syncing, p
	r.stMu.Unlock()
}

// syncTable runs one round on t and reports, per partition this node holds,
// whether it reached a read quorum of every live replica set.
func (r *Replicator) syncTable(ctx context.Context, v cluster.View, t *regTable) (map[uint8]bool, error) {
	if err := flushMerkle(ctx, t); err != nil {
		return nil, err
	}
	local, err := t.s.merkleRoots()
	if err != nil {
		return nil, err
	}
	// Which partitions to sync with which peer; which partitions to offload.
	held := map[uint8][]placementSet{}
	peerParts := map[string][]uint8{}
	var offload []uint8
	for p := range 256 {
		pp := uint8(p)
		pl := r.writePlacement(v, t.mode, pp)
		all := union(pl.sets)
		if !contains(all, r.self) {
			if local[p].Count > 0 {
				offload = append(offload, pp)
				for _, n := range all {
					peerParts[n] = append(peerParts[n], pp)
				}
			}
			continue
		}
		for i, set := range pl.sets {
			held[pp] = append(held[pp], placementSet{nodes: set, need: min(r.readNeed(v, t.mode, len(set), pl.need[i]), v.Need(set, len(set)))})
		}
		for _, n := range all {
			if n != r.self {
				peerParts[n] = append(peerParts[n], pp)
			}
		}
	}
	offloadSet := map[uint8]bool{}
	for _, p := range offload {
		offloadSet[p] = true
	}
	// Offloaded partitions: snapshot the items before syncing, delete
	// them afterwards only if unchanged (a late write is kept for the next round).
	snap := map[uint8][]itemRef{}
	for _, p := range offload {
		items, err := r.allItems(t, p)
		if err != nil {
			return nil, err
		}
		snap[p] = items
	}
	// Roots of every peer in parallel (this also finds the peers that are
	// down), then the descents one peer after the other, so an entry missing
	// here is pulled once, not from every replica.
	peers := make([]string, 0, len(peerParts))
	for id := range peerParts {
		peers = append(peers, id)
	}
	sort.Strings(peers)
	remote := make([]*[256]mnode, len(peers))
	var errs []error
	var mu sync.Mutex
	sem := make(chan struct{}, syncConcurrency)
	var wg sync.WaitGroup
	for i, peerID := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rs, err := r.remoteRoots(ctx, t, peerID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("with %s: %w", short(peerID), err))
				return
			}
			remote[i] = &rs
		}()
	}
	wg.Wait()
	synced := map[uint8]map[string]bool{}
	for i, peerID := range peers {
		if remote[i] == nil {
			continue
		}
		if err := flushMerkle(ctx, t); err != nil {
			return nil, err
		}
		local, err := t.s.merkleRoots()
		if err != nil {
			return nil, err
		}
		ok, err := r.syncPeer(ctx, t, peerID, peerParts[peerID], offloadSet, local, *remote[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("with %s: %w", short(peerID), err))
		}
		for _, p := range ok {
			if synced[p] == nil {
				synced[p] = map[string]bool{}
			}
			synced[p][peerID] = true
		}
	}
	res := map[uint8]bool{}
	for p, sets := range held {
		ok := true
		for _, s := range sets {
			n := 0
			for _, id := range s.nodes {
				if id == r.self || synced[p][id] {
					n++
				}
			}
			if n < s.need {
				ok = false
			}
		}
		res[p] = ok
	}
	remaining := 0
	for _, p := range offload {
		pl := r.writePlacement(v, t.mode, p)
		ok := true
		for i, set := range pl.sets {
			n := 0
			for _, id := range set {
				if synced[p][id] {
					n++
				}
			}
			if n < pl.need[i] {
				ok = false
			}
		}
		if !ok {
			r.log.Debug("offload waits for a write quorum of the new replicas", "table", t.name, "partition", p)
			remaining++
			continue
		}
		n, err := t.s.dropItems(ctx, snap[p])
		t.dropped.Add(int64(n))
		if n < len(snap[p]) {
			remaining++ // changed since the snapshot: offloaded next round
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("offload partition %d: %w", p, err))
		} else if n > 0 {
			r.log.Info("offloaded partition", "table", t.name, "partition", p, "items", n)
		}
	}
	if remaining == 0 && t.mode == Sharded {
		// Entries may have arrived meanwhile for partitions this node no
		// longer holds (a peer's round or a write still using an older view).
		remaining = r.strayPartitions(ctx, t)
	}
	t.offloadPending.Store(remaining > 0)
	if rs, err := t.s.merkleRoots(); err == nil {
		var items uint64
		for _, n := range rs {
			items += n.Count
		}
		r.met.items.WithLabelValues(t.name).Set(float64(items))
		r.met.todo.WithLabelValues(t.name).Set(float64(t.s.merkleTodo(100000)))
	}
	t.mu.Lock()
	t.held = len(held)
	if t.mode == FullCopy {
		t.held = 0
		if len(held) > 0 {
			t.held = 256
		}
	}
	t.lastSync = r.cfg.Now()
	t.lastErr = ""
	err = errors.Join(errs...)
	if err != nil {
		t.lastErr = err.Error()
	}
	t.mu.Unlock()
	return res, err
}

// strayPartitions counts the partitions with local entries that this node
// holds in no live layout of the current view.
func (r *Replicator) strayPartitions(ctx context.Context, t *regTable) int {
	v := r.cfg.View()
	if !v.Ready() || flushMerkle(ctx, t) != nil {
		return 0
	}
	rs, err := t.s.merkleRoots()
	if err != nil {
		return 0
	}
	n := 0
	for p, root := range rs {
		if root.Count > 0 && !r.holds(v, uint8(p)) {
			n++
		}
	}
	return n
}

// holds reports whether this node is a replica of sharded partition p in a live layout.
func (r *Replicator) holds(v cluster.View, p uint8) bool {
	for _, set := range v.WriteSets(p) {
		if contains(set, r.self) {
			return true
		}
	}
	return false
}

// placementSet is one live replica set and how many of its nodes a synced
// partition must have reached.
type placementSet struct {
	nodes []string
	need  int
}

// readNeed is the read quorum of a set: R for sharded tables, a majority for full-copy ones.
func (r *Replicator) readNeed(v cluster.View, m Mode, size, writeNeed int) int {
	if m == FullCopy {
		return writeNeed
	}
	rq, _ := v.Quorums()
	return min(rq, size)
}

// allItems lists every Merkle item of partition p.
func (r *Replicator) allItems(t *regTable, p uint8) ([]itemRef, error) {
	var out []itemRef
	var after []byte
	for {
		items, more, err := t.s.merkleItems(p, nil, after, itemPage)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if !more || len(items) == 0 {
			return out, nil
		}
		after = items[len(items)-1].Cursor
	}
}

func (r *Replicator) remoteRoots(ctx context.Context, t *regTable, peerID string) ([256]mnode, error) {
	out, err := r.call(ctx, peerID, mRoots, encodeRootsReq(t.s.tableID()))
	if err != nil {
		return [256]mnode{}, err
	}
	return decodeRoots(out)
}

// syncPeer syncs partitions parts of t with one peer and returns the ones
// now in sync (or that were already).
// Partitions in pushOnly are being offloaded: nothing is pulled into them.
func (r *Replicator) syncPeer(ctx context.Context, t *regTable, peerID string, parts []uint8, pushOnly map[uint8]bool, local, remote [256]mnode) ([]uint8, error) {
	var ok []uint8
	var errs []error
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return ok, err
		}
		if remote[p] == local[p] {
			ok = append(ok, p)
			continue
		}
		if err := r.syncNode(ctx, t, peerID, p, nil, local[p], remote[p], pushOnly[p]); err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
			continue
		}
		ok = append(ok, p)
	}
	return ok, errors.Join(errs...)
}

// syncNode reconciles the subtree at path of partition p with peer.
func (r *Replicator) syncNode(ctx context.Context, t *regTable, peerID string, p uint8, path []byte, ln, rn mnode, pushOnly bool) error {
	if ln == rn || (pushOnly && ln.Count == 0) {
		return nil
	}
	if len(path) == merkleDepth || ln.Count == 0 || rn.Count == 0 || ln.Count+rn.Count <= bulkItems {
		return r.syncItems(ctx, t, peerID, p, path, pushOnly)
	}
	out, err := r.call(ctx, peerID, mChildren, encodeChildrenReq(t.s.tableID(), p, path))
	if err != nil {
		return err
	}
	rc, err := decodeChildren(out)
	if err != nil {
		return err
	}
	lc, err := t.s.merkleChildren(p, path)
	if err != nil {
		return err
	}
	var lm, rm [256]mnode
	var present [256]bool
	for _, c := range lc {
		lm[c.B], present[c.B] = c.Node, true
	}
	for _, c := range rc {
		rm[c.B], present[c.B] = c.Node, true
	}
	for b := range 256 {
		if !present[b] || lm[b] == rm[b] {
			continue
		}
		sub := append(append([]byte(nil), path...), byte(b))
		if err := r.syncNode(ctx, t, peerID, p, sub, lm[b], rm[b], pushOnly); err != nil {
			return err
		}
	}
	return nil
}

// syncItems compares the item lists of a subtree page by page, pulls the
// entries the peer has newer or only, and pushes the ones this node has.
func (r *Replicator) syncItems(ctx context.Context, t *regTable, peerID string, p uint8, path []byte, pushOnly bool) error {
	id := t.s.tableID()
	var after, localAfter []byte
	for {
		out, err := r.call(ctx, peerID, mItems, encodeItemsReq(id, p, path, after, itemPage))
		if err != nil {
			return err
		}
		remote, more, err := decodeItems(out)
		if err != nil {
			return err
		}
		var bound []byte // inclusive upper cursor of this page; nil = to the end
		if more && len(remote) > 0 {
			bound = remote[len(remote)-1].Cursor
		}
		// Local items in (localAfter, bound].
		var local []itemRef
		for {
			items, lmore, err := t.s.merkleItems(p, path, localAfter, itemPage)
			if err != nil {
				return err
			}
			stop := !lmore
			for _, it := range items {
				if bound != nil && bytes.Compare(it.Cursor, bound) > 0 {
					stop = true
					break
				}
				local = append(local, it)
				localAfter = it.Cursor
			}
			if stop || len(items) == 0 {
				break
			}
		}
		if bound != nil {
			localAfter = bound
		}
		var pull []rawKey
		var push []rawKey
		i, j := 0, 0
		for i < len(local) || j < len(remote) {
			switch {
			case j == len(remote) || (i < len(local) && bytes.Compare(local[i].Cursor, remote[j].Cursor) < 0):
				push = append(push, rawKey{local[i].PK, local[i].SK})
				i++
			case i == len(local) || bytes.Compare(local[i].Cursor, remote[j].Cursor) > 0:
				pull = append(pull, rawKey{remote[j].PK, remote[j].SK})
				j++
			default:
				if local[i].Hash != remote[j].Hash {
					pull = append(pull, rawKey{remote[j].PK, remote[j].SK})
					push = append(push, rawKey{local[i].PK, local[i].SK})
				}
				i++
				j++
			}
		}
		if pushOnly {
			pull = nil
		}
		if err := r.pull(ctx, t, peerID, pull); err != nil {
			return err
		}
		if err := r.push(ctx, t, peerID, push); err != nil {
			return err
		}
		if !more || len(remote) == 0 {
			return nil
		}
		after = remote[len(remote)-1].Cursor
	}
}

// pull fetches keys from peer and merges them here.
func (r *Replicator) pull(ctx context.Context, t *regTable, peerID string, keys []rawKey) error {
	id := t.s.tableID()
	for len(keys) > 0 {
		n := min(len(keys), itemPage)
		batch := keys[:n]
		keys = keys[n:]
		out, err := r.call(ctx, peerID, mGet, encodeGet(id, batch))
		if err != nil {
			return err
		}
		vals, err := decodeValues(out)
		if err != nil {
			return err
		}
		if len(vals) != len(batch) {
			return fmt.Errorf("%w: %d values for %d keys", ErrBadMessage, len(vals), len(batch))
		}
		var es []rawEntry
		for i, v := range vals {
			if v.Found {
				es = append(es, rawEntry{PK: batch[i].PK, SK: batch[i].SK, Value: v.Value})
			}
		}
		if len(es) == 0 {
			continue
		}
		if _, err := t.s.insertRaw(ctx, es, false); err != nil {
			return err
		}
		t.received.Add(int64(len(es)))
		r.met.received.WithLabelValues(t.name).Add(float64(len(es)))
	}
	return nil
}

// push sends this node's values of keys to peer, in batches of bounded size.
func (r *Replicator) push(ctx context.Context, t *regTable, peerID string, keys []rawKey) error {
	for len(keys) > 0 {
		n := min(len(keys), itemPage)
		vals, err := t.s.getRaw(ctx, keys[:n])
		if err != nil {
			return err
		}
		var es []rawEntry
		size := 0
		for i, v := range vals {
			if v.Found {
				es = append(es, rawEntry{PK: keys[i].PK, SK: keys[i].SK, Value: v.Value})
				size += len(v.Value) + len(keys[i].PK) + len(keys[i].SK)
			}
			if size >= batchBytes || i == n-1 {
				if err := r.send(ctx, t, peerID, es); err != nil {
					return err
				}
				es, size = es[:0], 0
			}
		}
		keys = keys[n:]
	}
	return nil
}

func (r *Replicator) send(ctx context.Context, t *regTable, peerID string, es []rawEntry) error {
	if len(es) == 0 {
		return nil
	}
	if _, err := r.call(ctx, peerID, mInsert, encodeInsert(t.s.tableID(), false, es)); err != nil {
		return err
	}
	t.sent.Add(int64(len(es)))
	r.met.sent.WithLabelValues(t.name).Add(float64(len(es)))
	return nil
}

// collect deletes t's tombstones older than before (ms) that every replica
// of every live layout holds: the tombstone is first written to all of them
// (all must acknowledge), then each deletes it if its copy is still that
// tombstone. A replica that missed the second step keeps its tombstone and
// collects it in a later round. It returns how many this node deleted.
func (r *Replicator) collect(ctx context.Context, t *regTable, before uint64) (int, error) {
	v := r.cfg.View()
	if !v.Ready() {
		return 0, fmt.Errorf("%w: no layout yet", ErrUnavailable)
	}
	deadline := time.Now().Add(10 * time.Minute)
	total := 0
	var errs []error
	skip := map[string]bool{}
	for range 100 {
		if time.Now().After(deadline) {
			break
		}
		items, err := t.s.tombstones(ctx, before, itemPage)
		if err != nil {
			return total, err
		}
		groups := map[string][]gcItem{}
		var fresh int
		for _, g := range items {
			if skip[g.PK+"\x00"+g.SK] {
				continue
			}
			fresh++
			key := ""
			if t.mode == Sharded {
				key = string([]byte{Partition(g.PK)})
			}
			groups[key] = append(groups[key], g)
		}
		if fresh == 0 {
			break
		}
		for key, gs := range groups {
			var p uint8
			if key != "" {
				p = key[0]
			}
			nodes := r.holders(v, t.mode, p)
			n, err := r.collectGroup(ctx, t, nodes, gs)
			total += n
			if err != nil {
				errs = append(errs, err)
				for _, g := range gs {
					skip[g.PK+"\x00"+g.SK] = true
				}
			}
		}
	}
	return total, errors.Join(errs...)
}

func (r *Replicator) collectGroup(ctx context.Context, t *regTable, nodes []string, gs []gcItem) (int, error) {
	id := t.s.tableID()
	keys := make([]rawKey, len(gs))
	for i, g := range gs {
		keys[i] = rawKey{g.PK, g.SK}
	}
	vals, err := t.s.getRaw(ctx, keys)
	if err != nil {
		return 0, err
	}
	var es []rawEntry
	for i, v := range vals {
		if v.Found {
			es = append(es, rawEntry{PK: keys[i].PK, SK: keys[i].SK, Value: v.Value})
		}
	}
	body := encodeInsert(id, false, es)
	ch := r.fanout(ctx, nodes, mInsert, func(string) []byte { return body })
	for range nodes {
		if rep := <-ch; rep.err != nil {
			return 0, fmt.Errorf("tombstone gc: replica %s did not take the tombstones: %w", short(rep.node), rep.err)
		}
	}
	gcBody := encodeGC(id, gs)
	ch = r.fanout(ctx, nodes, mGC, func(string) []byte { return gcBody })
	var errs []error
	mine := 0
	for range nodes {
		rep := <-ch
		if rep.err != nil {
			errs = append(errs, rep.err)
			continue
		}
		if rep.node == r.self {
			mine, _ = decodeCount(rep.payload)
		}
	}
	return mine, errors.Join(errs...)
}
