package table

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/entrepot/entrepot/daemon/cluster"
)

// Replicated is a table whose entries live on the replicas the cluster
// layout assigns. It has the methods of Local that the model uses.
type Replicated[V any] struct {
	r  *Replicator
	l  *Local[V]
	t  *regTable
	md Mode
}

// Replicate wraps l so its entries are replicated in mode m. Call it for
// every table before Replicator.Run; entries arriving from other nodes are
// written through l (its Hook runs on every replica).
func Replicate[V any](r *Replicator, l *Local[V], m Mode) *Replicated[V] {
	t := r.register(l, m)
	return &Replicated[V]{r: r, l: l, t: t, md: m}
}

// Local is the wrapped single-node table.
func (t *Replicated[V]) Local() *Local[V] { return t.l }

func (t *Replicated[V]) unavailable(op, why string) error {
	t.r.met.quorumFailures.WithLabelValues(t.t.name, op).Inc()
	return fmt.Errorf("%w: %s %s: %s", ErrUnavailable, op, t.t.name, why)
}

func (t *Replicated[V]) partition(pk string) uint8 {
	if t.md == FullCopy {
		return 0
	}
	return Partition(pk)
}

// Insert merges the entries on the replicas of every live layout and
// returns once a write quorum of each replica set acknowledged; the other
// replicas finish in the background. The changes merge what the
// acknowledging replicas reported.
func (t *Replicated[V]) Insert(ctx context.Context, es ...Entry[V]) ([]Change[V], error) {
	if len(es) == 0 {
		return nil, ctx.Err()
	}
	v := t.r.cfg.View()
	if !v.Ready() {
		return nil, t.unavailable("insert", "no layout yet")
	}
	raw := make([]rawEntry, len(es))
	for i, e := range es {
		b, err := t.l.s.Encode(e.Value)
		if err != nil {
			return nil, fmt.Errorf("encode table %s value: %w", t.t.name, err)
		}
		raw[i] = rawEntry{PK: e.PK, SK: e.SK, Value: b}
	}
	// Group entries by partition; each node gets one call with every entry
	// of every partition it holds.
	type group struct {
		pl      placement
		idx     []int
		acks    []int
		failed  []int
		waiting bool
	}
	groups := map[uint8]*group{}
	var order []uint8
	perNode := map[string][]int{}
	for i, e := range raw {
		p := t.partition(e.PK)
		g, ok := groups[p]
		if !ok {
			g = &group{pl: t.r.writePlacement(v, t.md, p), waiting: true}
			g.acks = make([]int, len(g.pl.sets))
			g.failed = make([]int, len(g.pl.sets))
			groups[p] = g
			order = append(order, p)
			for _, n := range union(g.pl.sets) {
				perNode[n] = append(perNode[n], -1-int(p)) // marker: node holds p
			}
		}
		g.idx = append(g.idx, i)
	}
	nodes := make([]string, 0, len(perNode))
	nodeEntries := map[string][]int{}
	for n, marks := range perNode {
		nodes = append(nodes, n)
		for _, m := range marks {
			nodeEntries[n] = append(nodeEntries[n], groups[uint8(-1-m)].idx...)
		}
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		sort.Ints(nodeEntries[n])
	}
	ch := t.r.fanout(ctx, nodes, mInsert, func(n string) []byte {
		sub := make([]rawEntry, 0, len(nodeEntries[n]))
		for _, i := range nodeEntries[n] {
			sub = append(sub, raw[i])
		}
		return encodeInsert(t.l.s.Table(), true, sub)
	})
	changes := make([]Change[V], len(es))
	for i, e := range es {
		changes[i] = Change[V]{PK: e.PK, SK: e.SK}
	}
	have := make([]bool, len(es))
	pending := len(groups)
	var errs []error
	for range nodes {
		var rep reply
		select {
		case rep = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: insert %s: %w", ErrUnavailable, t.t.name, ctx.Err())
		}
		var cs []rawChange
		if rep.err == nil {
			var err error
			if cs, err = decodeChanges(rep.payload); err == nil && len(cs) != len(nodeEntries[rep.node]) {
				err = fmt.Errorf("%w: %d changes for %d entries", ErrBadMessage, len(cs), len(nodeEntries[rep.node]))
			}
			rep.err = err
		}
		if rep.err == nil {
			for j, i := range nodeEntries[rep.node] {
				if err := t.foldChange(&changes[i], &have[i], cs[j]); err != nil {
					rep.err = err
					break
				}
			}
		}
		if rep.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", short(rep.node), rep.err))
		}
		for _, p := range order {
			g := groups[p]
			if !g.waiting {
				continue
			}
			done := true
			for si, set := range g.pl.sets {
				if !contains(set, rep.node) {
					if g.acks[si] < g.pl.need[si] {
						done = false
					}
					continue
				}
				if rep.err == nil {
					g.acks[si]++
				} else {
					g.failed[si]++
					if len(set)-g.failed[si] < g.pl.need[si] {
						return nil, t.unavailable("insert", fmt.Sprintf("partition %d: %d of %d replicas failed, need %d: %v",
							p, g.failed[si], len(set), g.pl.need[si], errors.Join(errs...)))
					}
				}
				if g.acks[si] < g.pl.need[si] {
					done = false
				}
			}
			if done {
				g.waiting = false
				pending--
			}
		}
		if pending == 0 {
			for i := range changes {
				if !have[i] {
					// Every entry's partition reached quorum, so this cannot happen.
					return nil, t.unavailable("insert", "no replica reported an entry")
				}
			}
			return changes, nil
		}
	}
	return nil, t.unavailable("insert", fmt.Sprint(errors.Join(errs...)))
}

func (t *Replicated[V]) foldChange(c *Change[V], have *bool, rc rawChange) error {
	nv, err := t.l.s.Decode(rc.New)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	var ov V
	if rc.HadOld {
		if ov, err = t.l.s.Decode(rc.Old); err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
	}
	if !*have {
		c.New, c.Old, c.HadOld, c.Changed = nv, ov, rc.HadOld, rc.Changed
		*have = true
		return nil
	}
	c.New = t.l.s.Merge(c.New, nv)
	if rc.HadOld {
		if c.HadOld {
			c.Old = t.l.s.Merge(c.Old, ov)
		} else {
			c.Old, c.HadOld = ov, true
		}
	}
	c.Changed = c.Changed || rc.Changed
	return nil
}

func contains(set []string, n string) bool {
	for _, x := range set {
		if x == n {
			return true
		}
	}
	return false
}

func short(id string) string {
	if len(id) > 12 {
		return id[len(id)-8:]
	}
	return id
}

// InsertLazy is Insert: a quorum of replicas is the durability that counts.
func (t *Replicated[V]) InsertLazy(ctx context.Context, es ...Entry[V]) ([]Change[V], error) {
	return t.Insert(ctx, es...)
}

// Get reads (pk, sk) from a read quorum of the read layout's replicas and
// merges their values; replicas found stale are repaired in the background.
// A full-copy table is read locally, and from a majority only when the
// entry is absent here (so a bucket or key created through another node is
// found at once; later changes arrive within the anti-entropy period).
func (t *Replicated[V]) Get(ctx context.Context, pk, sk string) (V, bool, error) {
	var zero V
	if t.md == FullCopy {
		v, ok, err := t.l.Get(ctx, pk, sk)
		if err != nil || ok {
			return v, ok, err
		}
		if !t.r.cfg.View().Ready() {
			return zero, false, nil
		}
	}
	v := t.r.cfg.View()
	nodes, need := t.r.readPlacement(v, t.md, t.partition(pk))
	if need == 0 {
		return zero, false, t.unavailable("get", "no layout yet")
	}
	ch := t.r.fanout(ctx, nodes, mGet, func(string) []byte {
		return encodeGet(t.l.s.Table(), []rawKey{{PK: pk, SK: sk}})
	})
	var got []reply
	var vals []rawValue
	failed := 0
	var errs []error
	for range nodes {
		var rep reply
		select {
		case rep = <-ch:
		case <-ctx.Done():
			return zero, false, fmt.Errorf("%w: get %s: %w", ErrUnavailable, t.t.name, ctx.Err())
		}
		var rv rawValue
		if rep.err == nil {
			vs, err := decodeValues(rep.payload)
			if err == nil && len(vs) != 1 {
				err = fmt.Errorf("%w: %d values", ErrBadMessage, len(vs))
			}
			if err == nil {
				rv = vs[0]
			}
			rep.err = err
		}
		if rep.err != nil {
			errs = append(errs, rep.err)
			if failed++; len(nodes)-failed < need {
				return zero, false, t.unavailable("get", fmt.Sprint(errors.Join(errs...)))
			}
			continue
		}
		got = append(got, rep)
		vals = append(vals, rv)
		if len(got) >= need {
			break
		}
	}
	merged, ok, err := t.mergeValues(vals)
	if err != nil {
		return zero, false, err
	}
	rest := len(nodes) - len(got) - failed
	go t.repairGet(ctx, pk, sk, got, vals, ch, rest)
	return merged, ok, nil
}

// mergeValues merges the found values.
func (t *Replicated[V]) mergeValues(vals []rawValue) (V, bool, error) {
	var out V
	ok := false
	for _, rv := range vals {
		if !rv.Found {
			continue
		}
		v, err := t.l.s.Decode(rv.Value)
		if err != nil {
			return out, false, fmt.Errorf("decode table %s value from a replica: %w", t.t.name, err)
		}
		if !ok {
			out, ok = v, true
		} else {
			out = t.l.s.Merge(out, v)
		}
	}
	return out, ok, nil
}

// repairGet waits (bounded) for the replicas that had not answered, then
// writes the merged value to every replica whose copy differs.
func (t *Replicated[V]) repairGet(ctx context.Context, pk, sk string, got []reply, vals []rawValue, ch <-chan reply, rest int) {
	// Late answers are only worth a few seconds of waiting.
	timer := time.NewTimer(min(t.r.cfg.CallTimeout, 5*time.Second))
	defer timer.Stop()
	nodes := make([]string, 0, len(got)+rest)
	for _, g := range got {
		nodes = append(nodes, g.node)
	}
wait:
	for range rest {
		select {
		case rep := <-ch:
			if rep.err != nil {
				continue
			}
			vs, err := decodeValues(rep.payload)
			if err != nil || len(vs) != 1 {
				continue
			}
			nodes = append(nodes, rep.node)
			vals = append(vals, vs[0])
		case <-timer.C:
			break wait
		}
	}
	merged, ok, err := t.mergeValues(vals)
	if err != nil || !ok {
		return
	}
	enc, err := t.l.s.Encode(merged)
	if err != nil {
		return
	}
	var stale []string
	for i, rv := range vals {
		if !rv.Found || !bytes.Equal(rv.Value, enc) {
			stale = append(stale, nodes[i])
		}
	}
	if len(stale) == 0 {
		return
	}
	body := encodeInsert(t.l.s.Table(), false, []rawEntry{{PK: pk, SK: sk, Value: enc}})
	rch := t.r.fanout(ctx, stale, mInsert, func(string) []byte { return body })
	for range stale {
		if rep := <-rch; rep.err == nil {
			t.t.repairs.Add(1)
			t.r.met.repairs.WithLabelValues(t.t.name).Inc()
		}
	}
}

// Range returns up to limit entries of pk with sort key >= from, tombstones
// included, merged from a read quorum (full-copy tables: locally). Each
// replica returns its first limit entries; the merge is then cut to limit,
// which is exact: an entry among the first limit of the union is among the
// first limit of every replica holding it.
func (t *Replicated[V]) Range(ctx context.Context, pk, from string, limit int) ([]Entry[V], error) {
	return t.rangeQuorum(ctx, pk, from, limit, false)
}

// RangeSummary is Range with values summarized by the replicas (see
// Summarizer): for listings, which need no bulk. Summaries are never used to
// repair a replica.
func (t *Replicated[V]) RangeSummary(ctx context.Context, pk, from string, limit int) ([]Entry[V], error) {
	return t.rangeQuorum(ctx, pk, from, limit, true)
}

func (t *Replicated[V]) rangeQuorum(ctx context.Context, pk, from string, limit int, summary bool) ([]Entry[V], error) {
	if t.md == FullCopy {
		return t.l.Range(ctx, pk, from, limit)
	}
	v := t.r.cfg.View()
	nodes, need := t.r.readPlacement(v, t.md, t.partition(pk))
	if need == 0 {
		return nil, t.unavailable("range", "no layout yet")
	}
	body := encodeRange(t.l.s.Table(), pk, from, limit)
	method := mRange
	if summary {
		method = mSummary
	}
	ch := t.r.fanout(ctx, nodes, method, func(string) []byte { return body })
	var lists [][]rawEntry
	var who []string
	failed := 0
	var errs []error
	// A replica answering "more" is complete only up to its last entry:
	// nothing beyond the smallest such bound is known to be complete.
	bound, bounded := "", false
	for range nodes {
		var rep reply
		select {
		case rep = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: range %s: %w", ErrUnavailable, t.t.name, ctx.Err())
		}
		var es []rawEntry
		var more bool
		if rep.err == nil {
			es, more, rep.err = decodeEntries(rep.payload)
		}
		if rep.err != nil {
			errs = append(errs, rep.err)
			if failed++; len(nodes)-failed < need {
				return nil, t.unavailable("range", fmt.Sprint(errors.Join(errs...)))
			}
			continue
		}
		if more && len(es) > 0 {
			if last := es[len(es)-1].SK; !bounded || last < bound {
				bound, bounded = last, true
			}
		}
		lists = append(lists, es)
		who = append(who, rep.node)
		if len(lists) >= need {
			break
		}
	}
	type acc struct {
		v      V
		encs   map[int][]byte
		merged bool
	}
	bySK := map[string]*acc{}
	var sks []string
	for li, es := range lists {
		for _, e := range es {
			if bounded && e.SK > bound {
				break
			}
			val, err := t.l.s.Decode(e.Value)
			if err != nil {
				return nil, fmt.Errorf("decode table %s value from a replica: %w", t.t.name, err)
			}
			a, ok := bySK[e.SK]
			if !ok {
				a = &acc{v: val, encs: map[int][]byte{}}
				bySK[e.SK] = a
				sks = append(sks, e.SK)
			} else {
				a.v = t.l.s.Merge(a.v, val)
			}
			a.encs[li] = e.Value
		}
	}
	sort.Strings(sks)
	if limit > 0 && len(sks) > limit {
		sks = sks[:limit]
	}
	out := make([]Entry[V], 0, len(sks))
	var repair map[string][]rawEntry
	for _, sk := range sks {
		a := bySK[sk]
		out = append(out, Entry[V]{PK: pk, SK: sk, Value: a.v})
		if summary {
			continue
		}
		enc, err := t.l.s.Encode(a.v)
		if err != nil {
			continue
		}
		for li := range lists {
			if cur, ok := a.encs[li]; !ok || !bytes.Equal(cur, enc) {
				if repair == nil {
					repair = map[string][]rawEntry{}
				}
				repair[who[li]] = append(repair[who[li]], rawEntry{PK: pk, SK: sk, Value: enc})
			}
		}
	}
	if len(repair) > 0 {
		go t.repairRange(ctx, repair)
	}
	return out, nil
}

func (t *Replicated[V]) repairRange(ctx context.Context, repair map[string][]rawEntry) {
	nodes := make([]string, 0, len(repair))
	for n := range repair {
		nodes = append(nodes, n)
	}
	ch := t.r.fanout(ctx, nodes, mInsert, func(n string) []byte {
		return encodeInsert(t.l.s.Table(), false, repair[n])
	})
	for range nodes {
		if rep := <-ch; rep.err == nil {
			t.t.repairs.Add(int64(len(repair[rep.node])))
			t.r.met.repairs.WithLabelValues(t.t.name).Add(float64(len(repair[rep.node])))
		}
	}
}

// Scan visits the entries stored on this node (repair jobs).
func (t *Replicated[V]) Scan(ctx context.Context, fn func(Entry[V]) error) error {
	return t.l.Scan(ctx, fn)
}

// Delete writes a tombstone for (pk, sk) through Insert, timestamped after
// the newest value a read quorum knows.
func (t *Replicated[V]) Delete(ctx context.Context, pk, sk string) error {
	old, _, err := t.Get(ctx, pk, sk)
	if err != nil {
		return err
	}
	ts := NextTS(t.l.now(), t.l.s.Timestamp(old))
	_, err = t.Insert(ctx, Entry[V]{PK: pk, SK: sk, Value: t.l.s.Tombstone(old, ts)})
	return err
}

// PurgeTombstones collects tombstones older than before (ms) and older than
// the Replicator's TombstoneGCDelay, each only once every replica of every
// live layout holds it. It returns how many this node deleted.
func (t *Replicated[V]) PurgeTombstones(ctx context.Context, before uint64) (int, error) {
	limit := uint64(t.r.cfg.Now().Add(-t.r.cfg.TombstoneGCDelay).UnixMilli())
	return t.r.collect(ctx, t.t, min(before, limit))
}

// viewPlacementForGC: every node that may hold an entry of partition p.
func (r *Replicator) holders(v cluster.View, m Mode, p uint8) []string {
	return union(r.writePlacement(v, m, p).sets)
}
