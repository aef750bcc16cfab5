package layout

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// NumPartitions is the number of partitions of the key space. Fixed: changing it
// would move every entry.
const NumPartitions = 256

// Errors returned by Compute.
var (
	ErrNoStorageNodes  = errors.New("layout: no storage node declared")
	ErrNotEnoughNodes  = errors.New("layout: fewer storage nodes than the replication factor")
	ErrBadRF           = errors.New("layout: replication factor must be between 1 and 7")
	ErrInfeasible      = errors.New("layout: no assignment satisfies the constraints")
	ErrInvalidEncoding = errors.New("layout: invalid encoding")
)

// Role is what a node declares about itself in its own configuration.
type Role struct {
	Zone     string   `json:"zone"`
	Capacity int64    `json:"capacity"` // bytes; 0 means gateway: serves requests, stores nothing
	Tags     []string `json:"tags,omitempty"`
}

// Gateway reports whether the role stores nothing.
func (r Role) Gateway() bool { return r.Capacity <= 0 }

func (r Role) equal(o Role) bool {
	return r.Zone == o.Zone && r.Capacity == o.Capacity && slices.Equal(r.Tags, o.Tags)
}

// NodeEntry is one member of a layout.
type NodeEntry struct {
	ID   string `json:"id"`
	Role Role   `json:"role"`
}

// Layout is one version of the assignment of partitions to nodes.
type Layout struct {
	Version uint64
	RF      int
	// Nodes holds every member (storage nodes and gateways), sorted by ID.
	Nodes []NodeEntry
	// Replicas[p] lists the indices into Nodes of partition p's replicas.
	Replicas [NumPartitions][]uint16
	// Digest is the SHA-256 of the canonical encoding of everything above.
	Digest [32]byte
}

// ID is the identity of a layout: its counter and the start of its digest.
func (l *Layout) ID() string { return fmt.Sprintf("v%d-%x", l.Version, l.Digest[:4]) }

// Compare orders layouts by (Version, Digest). Any two nodes agree on the order,
// so concurrent layouts with the same counter resolve to one winner everywhere.
func Compare(a, b *Layout) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	case a.Version != b.Version:
		if a.Version < b.Version {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.Digest[:], b.Digest[:])
}

// PartitionOf returns the partition of a hashed key (its first byte).
func PartitionOf(hash []byte) uint8 {
	if len(hash) == 0 {
		return 0
	}
	return hash[0]
}

// NodesOf returns the IDs of partition p's replicas.
func (l *Layout) NodesOf(p uint8) []string {
	out := make([]string, 0, len(l.Replicas[p]))
	for _, i := range l.Replicas[p] {
		out = append(out, l.Nodes[i].ID)
	}
	return out
}

// Index returns the index of node id in Nodes, or -1.
func (l *Layout) Index(id string) int {
	i := sort.Search(len(l.Nodes), func(i int) bool { return l.Nodes[i].ID >= id })
	if i < len(l.Nodes) && l.Nodes[i].ID == id {
		return i
	}
	return -1
}

// PartitionCount returns how many partitions each node holds, by node ID.
func (l *Layout) PartitionCount() map[string]int {
	out := make(map[string]int, len(l.Nodes))
	for _, n := range l.Nodes {
		out[n.ID] = 0
	}
	for p := range l.Replicas {
		for _, i := range l.Replicas[p] {
			out[l.Nodes[i].ID]++
		}
	}
	return out
}

// Roles returns the roles this layout was computed from.
func (l *Layout) Roles() map[string]Role {
	out := make(map[string]Role, len(l.Nodes))
	for _, n := range l.Nodes {
		out[n.ID] = n.Role
	}
	return out
}

// SameRoles reports whether roles and rf are exactly what l was computed from.
func (l *Layout) SameRoles(roles map[string]Role, rf int) bool {
	if l == nil || l.RF != rf || len(l.Nodes) != len(roles) {
		return false
	}
	for _, n := range l.Nodes {
		r, ok := roles[n.ID]
		if !ok || !r.equal(n.Role) {
			return false
		}
	}
	return true
}

// Compute derives the layout for the declared roles, moving as little as possible
// from prev (nil for the first layout). When roles and rf are unchanged and prev is
// valid, prev itself is returned: no new version.
func Compute(prev *Layout, roles map[string]Role, rf int) (*Layout, error) {
	if rf < 1 || rf > 7 {
		return nil, fmt.Errorf("%w: %d", ErrBadRF, rf)
	}
	if prev != nil && prev.SameRoles(roles, rf) && prev.Validate() == nil {
		return prev, nil
	}
	l := &Layout{RF: rf, Version: 1}
	if prev != nil {
		l.Version = prev.Version + 1
	}
	ids := make([]string, 0, len(roles))
	for id := range roles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var storage []int
	for i, id := range ids {
		r := roles[id]
		r.Tags = slices.Clone(r.Tags)
		l.Nodes = append(l.Nodes, NodeEntry{ID: id, Role: r})
		if !r.Gateway() {
			storage = append(storage, i)
		}
	}
	if len(storage) == 0 {
		return nil, ErrNoStorageNodes
	}
	if len(storage) < rf {
		return nil, fmt.Errorf("%w: %d storage nodes, replication factor %d", ErrNotEnoughNodes, len(storage), rf)
	}
	if err := assign(l, prev, storage); err != nil {
		return nil, err
	}
	l.Digest = sha256.Sum256(l.encodeBody())
	return l, nil
}

// zonesOf groups storage node indices by zone, zones sorted by name.
func zonesOf(l *Layout, storage []int) (names []string, members map[string][]int) {
	members = map[string][]int{}
	for _, i := range storage {
		z := l.Nodes[i].Role.Zone
		if _, ok := members[z]; !ok {
			names = append(names, z)
		}
		members[z] = append(members[z], i)
	}
	sort.Strings(names)
	return names, members
}

// zoneMax is how many replicas of one partition a zone may hold.
func zoneMax(rf, zones int) int {
	if zones >= rf {
		return 1
	}
	return (rf + zones - 1) / zones
}

// waterFill splits total units among items proportionally to weight, each
// capped at caps[i], as integers summing to min(total, sum(caps)). Ties in
// rounding go to the lower index, so the result is deterministic.
func waterFill(total int, weight []int64, caps []int) []int {
	n := len(weight)
	share := make([]float64, n)
	fixed := make([]bool, n)
	remaining := float64(total)
	for {
		var w float64
		for i := range n {
			if !fixed[i] {
				w += float64(weight[i])
			}
		}
		if w == 0 {
			break
		}
		changed := false
		for i := range n {
			if fixed[i] {
				continue
			}
			s := remaining * float64(weight[i]) / w
			if s >= float64(caps[i]) {
				share[i] = float64(caps[i])
				fixed[i] = true
				remaining -= float64(caps[i])
				changed = true
			}
		}
		if !changed {
			for i := range n {
				if !fixed[i] {
					share[i] = remaining * float64(weight[i]) / w
				}
			}
			break
		}
	}
	out := make([]int, n)
	sum := 0
	for i := range n {
		out[i] = int(share[i])
		sum += out[i]
	}
	want := min(total, sumInts(caps))
	for sum < want {
		best, bestFrac := -1, -1.0
		for i := range n {
			if out[i] >= caps[i] {
				continue
			}
			if f := share[i] - float64(out[i]); f > bestFrac {
				best, bestFrac = i, f
			}
		}
		if best < 0 {
			break
		}
		out[best]++
		sum++
	}
	return out
}

func sumInts(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

// quotas returns each storage node's target number of partitions.
func quotas(l *Layout, storage []int) map[int]int {
	names, members := zonesOf(l, storage)
	zm := zoneMax(l.RF, len(names))
	zw := make([]int64, len(names))
	zc := make([]int, len(names))
	for zi, z := range names {
		for _, i := range members[z] {
			zw[zi] += l.Nodes[i].Role.Capacity
		}
		zc[zi] = NumPartitions * min(zm, len(members[z]))
	}
	zq := waterFill(NumPartitions*l.RF, zw, zc)
	q := map[int]int{}
	for zi, z := range names {
		m := members[z]
		w := make([]int64, len(m))
		c := make([]int, len(m))
		for k, i := range m {
			w[k] = l.Nodes[i].Role.Capacity
			c[k] = NumPartitions
		}
		for k, v := range waterFill(zq[zi], w, c) {
			q[m[k]] = v
		}
	}
	return q
}

// assign fills l.Replicas by max-flow, keeping prev's replicas where possible.
func assign(l *Layout, prev *Layout, storage []int) error {
	names, members := zonesOf(l, storage)
	zm := zoneMax(l.RF, len(names))
	q := quotas(l, storage)

	g := &flowGraph{}
	src := g.addVertex()
	sink := g.addVertex()
	nodeV := map[int]int{}
	nodeSink := map[int]int{} // storage node -> edge index of node->sink
	for _, i := range storage {
		v := g.addVertex()
		nodeV[i] = v
		nodeSink[i] = g.addEdge(v, sink, q[i], 0)
	}
	// prevHas[p] is the set of node IDs that held p before.
	prevHas := make([]map[string]bool, NumPartitions)
	if prev != nil {
		for p := range NumPartitions {
			prevHas[p] = map[string]bool{}
			for _, ni := range prev.Replicas[p] {
				if int(ni) < len(prev.Nodes) {
					prevHas[p][prev.Nodes[ni].ID] = true
				}
			}
		}
	}
	type slotEdge struct{ edge, node int }
	slots := make([][]slotEdge, NumPartitions)
	for p := range NumPartitions {
		pv := g.addVertex()
		g.addEdge(src, pv, l.RF, 0)
		for _, z := range names {
			zv := g.addVertex()
			g.addEdge(pv, zv, zm, 0)
			for _, i := range members[z] {
				// A replica that stays where it was costs nothing; a new one costs a move.
				cost := 1
				if prevHas[p] != nil && prevHas[p][l.Nodes[i].ID] {
					cost = 0
				}
				e := g.addEdge(zv, nodeV[i], 1, cost)
				slots[p] = append(slots[p], slotEdge{e, i})
			}
		}
	}
	need := NumPartitions * l.RF
	flow := g.maxFlow(src, sink)
	// Rounding can leave quotas one short of a feasible assignment: relax them.
	for extra := 0; flow < need && extra < NumPartitions; extra++ {
		for _, i := range storage {
			if g.edges[nodeSink[i]].cap < NumPartitions {
				g.edges[nodeSink[i]].cap++
			}
		}
		flow += g.maxFlow(src, sink)
	}
	if flow < need {
		return fmt.Errorf("%w: placed %d of %d replicas", ErrInfeasible, flow, need)
	}
	for p := range NumPartitions {
		var kept, fresh []uint16
		for _, s := range slots[p] {
			if g.edges[s.edge].flow != 1 {
				continue
			}
			if prevHas[p] != nil && prevHas[p][l.Nodes[s.node].ID] {
				kept = append(kept, uint16(s.node))
			} else {
				fresh = append(fresh, uint16(s.node))
			}
		}
		// Keep the previous order for kept replicas, so "first replica" is stable.
		if prev != nil {
			order := map[string]int{}
			for k, ni := range prev.Replicas[p] {
				if int(ni) < len(prev.Nodes) {
					order[prev.Nodes[ni].ID] = k
				}
			}
			sort.SliceStable(kept, func(a, b int) bool {
				return order[l.Nodes[kept[a]].ID] < order[l.Nodes[kept[b]].ID]
			})
		}
		l.Replicas[p] = append(kept, fresh...)
	}
	return nil
}

// Validate checks the structural invariants of a layout: RF distinct replicas per
// partition, all storage nodes, distinct zones when there are enough zones.
func (l *Layout) Validate() error {
	if l.RF < 1 || l.RF > 7 {
		return fmt.Errorf("%w: rf %d", ErrBadRF, l.RF)
	}
	zones := map[string]bool{}
	for k, n := range l.Nodes {
		if k > 0 && l.Nodes[k-1].ID >= n.ID {
			return fmt.Errorf("%w: nodes not sorted/unique", ErrInvalidEncoding)
		}
		if !n.Role.Gateway() {
			zones[n.Role.Zone] = true
		}
	}
	zm := zoneMax(l.RF, len(zones))
	for p := range NumPartitions {
		r := l.Replicas[p]
		if len(r) != l.RF {
			return fmt.Errorf("%w: partition %d has %d replicas, want %d", ErrInfeasible, p, len(r), l.RF)
		}
		seen := map[uint16]bool{}
		perZone := map[string]int{}
		for _, i := range r {
			if int(i) >= len(l.Nodes) || seen[i] || l.Nodes[i].Role.Gateway() {
				return fmt.Errorf("%w: partition %d has a bad replica %d", ErrInfeasible, p, i)
			}
			seen[i] = true
			perZone[l.Nodes[i].Role.Zone]++
			if perZone[l.Nodes[i].Role.Zone] > zm {
				return fmt.Errorf("%w: partition %d has %d replicas in zone %q", ErrInfeasible, p, perZone[l.Nodes[i].Role.Zone], l.Nodes[i].Role.Zone)
			}
		}
	}
	return nil
}

// Moves describes how much data a layout change moves.
type Moves struct {
	// Moved is the number of (partition, node) replicas in next that were not in prev.
	Moved int
	// Minimum is the least any assignment with next's per-node counts could move:
	// the sum over nodes of how many partitions they gained.
	Minimum int
}

// Diff counts the replicas next adds relative to prev.
func Diff(prev, next *Layout) Moves {
	var m Moves
	if next == nil {
		return m
	}
	before := map[string]int{}
	if prev != nil {
		before = prev.PartitionCount()
	}
	for id, c := range next.PartitionCount() {
		if c > before[id] {
			m.Minimum += c - before[id]
		}
	}
	for p := range NumPartitions {
		had := map[string]bool{}
		if prev != nil {
			for _, id := range prev.NodesOf(uint8(p)) {
				had[id] = true
			}
		}
		for _, id := range next.NodesOf(uint8(p)) {
			if !had[id] {
				m.Moved++
			}
		}
	}
	return m
}

// encodeBody is the canonical encoding of everything but the digest.
func (l *Layout) encodeBody() []byte {
	var b []byte
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, l.Version)
	b = binary.AppendUvarint(b, uint64(l.RF))
	b = binary.AppendUvarint(b, uint64(len(l.Nodes)))
	for _, n := range l.Nodes {
		b = appendString(b, n.ID)
		b = appendString(b, n.Role.Zone)
		b = binary.AppendVarint(b, n.Role.Capacity)
		b = binary.AppendUvarint(b, uint64(len(n.Role.Tags)))
		for _, t := range n.Role.Tags {
			b = appendString(b, t)
		}
	}
	for p := range NumPartitions {
		b = binary.AppendUvarint(b, uint64(len(l.Replicas[p])))
		for _, i := range l.Replicas[p] {
			b = binary.AppendUvarint(b, uint64(i))
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
