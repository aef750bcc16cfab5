package daemon

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/entrepot/entrepot/daemon/p2p"
)

// peerInfoTimeout bounds the status query to each member.
const peerInfoTimeout = 2 * time.Second

var _ admin.Cluster = (*clusterAdmin)(nil)

// clusterAdmin serves the admin API's cluster endpoints.
type clusterAdmin struct {
	c *clusterNode
	// repl and blocks are the replication parts; nil when not wired.
	repl   tableReplication
	blocks blockReplication
}

// tableReplication is what the admin endpoints need from table replication.
type tableReplication interface {
	statusJSON() ([]byte, error)
	merkleRoots(table string) (map[uint8][32]byte, error)
	syncNow(ctx context.Context) error
}

// blockReplication is what the admin endpoints need from block replication.
type blockReplication interface {
	statusJSON() ([]byte, error)
	rebalance() admin.RebalanceStatus
	scrub(ctx context.Context) (admin.ScrubResult, error)
}

func (a *clusterAdmin) NodeID(context.Context) (admin.NodeIdentity, error) {
	return admin.NodeIdentity{ID: a.c.host.ID().String(), Addrs: a.c.host.Addrs()}, nil
}

func (a *clusterAdmin) ClusterStatus(ctx context.Context) (admin.ClusterStatus, error) {
	v := a.c.mgr.View()
	r, w := v.Quorums()
	st := admin.ClusterStatus{Self: v.Self, RF: v.RF, ReadQuorum: r, WriteQuorum: w, Ready: v.Ready(), LiveLayouts: []string{}}
	newest := newestOf(v)
	if v.Read != nil {
		st.LayoutVersion = v.Read.Version
		st.NewestLayout = newest.Version
		st.Synced = v.Read == newest
	}
	for _, l := range v.Layouts {
		st.LiveLayouts = append(st.LiveLayouts, l.ID())
	}
	peers := map[string]p2p.PeerStatus{}
	for _, ps := range a.c.host.Peers() {
		peers[ps.ID] = ps
	}
	ids := memberIDs(v, peers)
	counts := map[string]int{}
	if newest != nil {
		counts = newest.PartitionCount()
	}
	infos := a.peerInfos(ctx, ids, peers, v.Self)
	up := map[string]bool{}
	for _, id := range ids {
		m := admin.ClusterMember{ID: id, Self: id == v.Self, Partitions: counts[id], SyncedVersion: v.Acks[id]}
		if e, ok := v.Roles[id]; ok {
			m.Hostname, m.Zone, m.Capacity, m.Tags = e.Hostname, e.Role.Zone, e.Role.Capacity, e.Role.Tags
			m.Gateway, m.Retired, m.Replaces = e.Role.Gateway(), e.Retired, e.Replaces
		}
		for _, l := range v.Layouts {
			if l.Index(id) >= 0 {
				m.InLayout = true
			}
		}
		if m.Self {
			m.Up, m.Reachability, m.LastSeen = true, "self", time.Now()
			m.Addrs = a.c.host.Addrs()
		} else if ps, ok := peers[id]; ok {
			m.Up, m.RTT, m.LastSeen, m.Addrs = ps.Up, ps.RTT, ps.LastSeen, ps.Addrs
			switch {
			case ps.Via != "":
				m.Reachability = ps.Via
			case ps.Connected && ps.Relayed:
				m.Reachability = "relayed"
			case ps.Connected:
				m.Reachability = "direct"
			default:
				m.Reachability = "unreachable"
			}
		} else {
			m.Reachability = "unreachable"
		}
		if ni, ok := infos[id]; ok {
			if ni.Hostname != "" {
				m.Hostname = ni.Hostname
			}
			m.Version, m.DataAvail, m.DataTotal = ni.Version, ni.DataAvail, ni.DataTotal
		}
		up[id] = m.Up
		st.Nodes = append(st.Nodes, m)
	}
	st.Partitions = partitionHealth(v, up, w)
	if a.repl != nil {
		if b, err := a.repl.statusJSON(); err == nil {
			st.Tables = b
		}
	}
	if a.blocks != nil {
		if b, err := a.blocks.statusJSON(); err == nil {
			st.Blocks = b
		}
		st.Rebalance = a.blocks.rebalance()
	}
	return st, nil
}

// memberIDs is every node the cluster state or the host knows, sorted, self first.
func memberIDs(v cluster.View, peers map[string]p2p.PeerStatus) []string {
	set := map[string]bool{v.Self: true}
	for id := range v.Roles {
		set[id] = true
	}
	for _, l := range v.Layouts {
		for _, n := range l.Nodes {
			set[n.ID] = true
		}
	}
	for id := range peers {
		set[id] = true
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		if id != v.Self {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return append([]string{v.Self}, ids...)
}

// peerInfos asks every connected member for its info, in parallel, bounded.
func (a *clusterAdmin) peerInfos(ctx context.Context, ids []string, peers map[string]p2p.PeerStatus, self string) map[string]nodeInfo {
	out := map[string]nodeInfo{self: a.c.localInfo()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(ctx, peerInfoTimeout)
	defer cancel()
	for _, id := range ids {
		if id == self || !peers[id].Connected {
			continue
		}
		pid, err := peer.Decode(id)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ni, err := a.c.peerInfo(ctx, pid)
			if err != nil {
				return
			}
			mu.Lock()
			out[id] = ni
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// partitionHealth counts partitions with a write quorum up in every live
// layout, and partitions with every replica up.
func partitionHealth(v cluster.View, up map[string]bool, w int) admin.PartitionHealth {
	var h admin.PartitionHealth
	if len(v.Layouts) == 0 {
		return h
	}
	h.Total = layout.NumPartitions
	for p := range layout.NumPartitions {
		quorum, all := true, true
		for _, nodes := range v.WriteSets(uint8(p)) {
			n := 0
			for _, id := range nodes {
				if up[id] {
					n++
				} else {
					all = false
				}
			}
			if n < w {
				quorum = false
			}
		}
		if quorum {
			h.WithQuorum++
		}
		if all {
			h.AllUp++
		}
	}
	h.WithoutQuorum = h.Total - h.WithQuorum
	return h
}

func (a *clusterAdmin) Layout(context.Context) (admin.LayoutInfo, error) {
	v := a.c.mgr.View()
	info := admin.LayoutInfo{RF: v.RF, Versions: []admin.LayoutVersion{}}
	if v.Read != nil {
		info.ReadVersion = v.Read.Version
	}
	for _, l := range v.Layouts {
		lv := admin.LayoutVersion{Version: l.Version, ID: l.ID(), Synced: layoutSynced(v, l), Partitions: make([][]string, layout.NumPartitions)}
		counts := l.PartitionCount()
		for _, n := range l.Nodes {
			lv.Nodes = append(lv.Nodes, admin.LayoutNode{ID: n.ID, Zone: n.Role.Zone, Capacity: n.Role.Capacity,
				Tags: n.Role.Tags, Partitions: counts[n.ID], Acked: v.Acks[n.ID]})
		}
		for p := range layout.NumPartitions {
			lv.Partitions[p] = l.NodesOf(uint8(p))
		}
		info.Versions = append(info.Versions, lv)
	}
	if n := len(v.Layouts); n >= 2 {
		mv := layout.Diff(v.Layouts[n-2], v.Layouts[n-1])
		info.LastChange = &admin.LayoutChange{From: v.Layouts[n-2].Version, To: v.Layouts[n-1].Version, Moved: mv.Moved, Minimum: mv.Minimum}
	} else {
		a.c.mu.Lock()
		if lc := a.c.lastChange; lc != nil {
			info.LastChange = &admin.LayoutChange{From: lc.from, To: lc.to, Moved: lc.moves.Moved, Minimum: lc.moves.Minimum}
		}
		a.c.mu.Unlock()
	}
	return info, nil
}

// layoutSynced: reads may use l (it is the read layout or older), or every
// storage node of l acknowledged it.
func layoutSynced(v cluster.View, l *layout.Layout) bool {
	if v.Read != nil && l.Version <= v.Read.Version {
		return true
	}
	for _, n := range l.Nodes {
		if !n.Role.Gateway() && v.Acks[n.ID] < l.Version {
			return false
		}
	}
	return true
}

// RetireNode accepts a full node ID or a unique prefix of at least 8 characters.
func (a *clusterAdmin) RetireNode(_ context.Context, id string) error {
	v := a.c.mgr.View()
	full, err := resolveNode(v, id)
	if err != nil {
		return err
	}
	if err := a.c.mgr.Retire(full); err != nil {
		return fmt.Errorf("%w: %v", admin.ErrUnknownNode, err)
	}
	return nil
}

func resolveNode(v cluster.View, id string) (string, error) {
	if _, ok := v.Roles[id]; ok {
		return id, nil
	}
	if len(id) >= 8 {
		var match []string
		for k := range v.Roles {
			if strings.HasPrefix(k, id) {
				match = append(match, k)
			}
		}
		if len(match) == 1 {
			return match[0], nil
		}
		if len(match) > 1 {
			return "", fmt.Errorf("%w: %q matches %d nodes; give more characters", admin.ErrUnknownNode, id, len(match))
		}
	}
	return "", fmt.Errorf("%w: %q has declared no role in this cluster", admin.ErrUnknownNode, id)
}

func (a *clusterAdmin) MerkleRoots(_ context.Context, table string) (admin.MerkleRoots, error) {
	if a.repl == nil {
		return admin.MerkleRoots{}, fmt.Errorf("%w: table replication (daemon/table Replicator) is not wired", admin.ErrNotImplemented)
	}
	roots, err := a.repl.merkleRoots(table)
	if err != nil {
		return admin.MerkleRoots{}, err
	}
	out := admin.MerkleRoots{Table: table, Roots: map[string]string{}}
	for p, r := range roots {
		out.Roots[fmt.Sprint(p)] = fmt.Sprintf("%x", r)
	}
	return out, nil
}

func (a *clusterAdmin) SyncTables(ctx context.Context) error {
	if a.repl == nil {
		return fmt.Errorf("%w: table replication (daemon/table Replicator) is not wired", admin.ErrNotImplemented)
	}
	return a.repl.syncNow(ctx)
}

func (a *clusterAdmin) Scrub(ctx context.Context) (admin.ScrubResult, error) {
	if a.blocks == nil {
		return admin.ScrubResult{}, fmt.Errorf("%w: block replication (daemon/block EnableReplication) is not wired", admin.ErrNotImplemented)
	}
	return a.blocks.scrub(ctx)
}
