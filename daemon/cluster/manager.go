package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/entrepot/entrepot/daemon/rpc"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Service is the rpc service name of cluster gossip.
const Service = "cluster"

// ErrRFMismatch is returned when a member runs with another replication factor.
var ErrRFMismatch = errors.New("cluster: replication_factor differs between members")

// Config configures a Manager.
type Config struct {
	// RPC carries gossip (required).
	RPC *rpc.Node
	// Peers lists the members currently connected (required).
	Peers func() []peer.ID
	// StateFile persists the state (required; written 0600, atomically).
	StateFile string
	// RF is the replication factor; it must be the same on every member (required).
	RF int
	// Role is this node's declared role; Hostname is shown in status.
	Role     layout.Role
	Hostname string
	// Retire asks to remove this node from the layout (decommission).
	Retire bool
	// Replaces is the ID of a node this one replaces (re-installed with a new identity).
	Replaces string
	// GossipInterval is the push-pull period (default 10 s).
	GossipInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (nil = discard).
	Logger *slog.Logger
}

// Manager owns this node's copy of the cluster state.
type Manager struct {
	cfg  Config
	self string
	log  *slog.Logger

	mu      sync.Mutex
	st      *State
	watches []chan struct{}
	kick    chan struct{}
}

// New loads the persisted state (if any), declares this node's role and registers gossip handlers.
func New(cfg Config) (*Manager, error) {
	if cfg.RPC == nil || cfg.Peers == nil || cfg.StateFile == "" {
		return nil, errors.New("cluster: RPC, Peers and StateFile are required")
	}
	if cfg.RF < 1 {
		return nil, fmt.Errorf("cluster: replication factor %d", cfg.RF)
	}
	if cfg.GossipInterval <= 0 {
		cfg.GossipInterval = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Manager{cfg: cfg, self: cfg.RPC.Self().String(), log: log.With("component", "cluster"), kick: make(chan struct{}, 1)}
	st, err := m.load()
	if err != nil {
		return nil, err
	}
	if st.RF != cfg.RF {
		return nil, fmt.Errorf("%w: state file says %d, configuration says %d", ErrRFMismatch, st.RF, cfg.RF)
	}
	m.st = st
	m.declare()
	cfg.RPC.Handle(Service, "gossip", m.handleGossip)
	return m, nil
}

func (m *Manager) load() (*State, error) {
	b, err := os.ReadFile(m.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(m.cfg.RF), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	return DecodeState(b)
}

func (m *Manager) persistLocked() error {
	b, err := m.st.Encode()
	if err != nil {
		return err
	}
	dir := filepath.Dir(m.cfg.StateFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".cluster-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), m.cfg.StateFile)
}

// declare writes this node's own role entry when it differs from the stored one.
func (m *Manager) declare() {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := RoleEntry{Role: m.cfg.Role, Retired: m.cfg.Retire, Replaces: m.cfg.Replaces, Hostname: m.cfg.Hostname}
	cur, ok := m.st.Roles[m.self]
	if ok && cur.RetiredByOperator {
		// An operator's `node retire` is final for this identity: restarting
		// the node (say, an old disk plugged back in) must not pull it back
		// into the layout and move data again.
		want.Retired, want.RetiredByOperator = true, true
		m.log.Warn("this node was retired with `entrepot node retire` and stays out of the layout; to bring the machine back, start it with a new identity (it joins as a new node)")
	}
	if ok && cur.Role.Zone == want.Role.Zone && cur.Role.Capacity == want.Role.Capacity &&
		fmt.Sprint(cur.Role.Tags) == fmt.Sprint(want.Role.Tags) && cur.Retired == want.Retired &&
		cur.RetiredByOperator == want.RetiredByOperator && cur.Replaces == want.Replaces && cur.Hostname == want.Hostname {
		return
	}
	want.Timestamp = nextTS(m.cfg.Now(), cur.Timestamp)
	m.st.Roles[m.self] = want
	m.changedLocked()
}

// Retire marks node id as decommissioned: it leaves the next layout.
func (m *Manager) Retire(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.st.Roles[id]
	if !ok {
		return fmt.Errorf("cluster: unknown node %s", id)
	}
	cur.Retired, cur.RetiredByOperator = true, true
	cur.Timestamp = nextTS(m.cfg.Now(), cur.Timestamp)
	m.st.Roles[id] = cur
	m.changedLocked()
	return nil
}

// MarkSynced records that this node finished syncing every partition it holds in version v.
func (m *Manager) MarkSynced(v uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.Acks[m.self] >= v {
		return
	}
	m.st.Acks[m.self] = v
	m.st.prune()
	m.changedLocked()
}

// changedLocked advances the layout if roles changed, persists, wakes watchers and gossip.
func (m *Manager) changedLocked() {
	if l, err := m.st.Advance(); err != nil {
		if !errors.Is(err, layout.ErrNotEnoughNodes) && !errors.Is(err, layout.ErrNoStorageNodes) {
			m.log.Error("layout not computed", "err", err)
		}
	} else if l != nil {
		mv := layout.Diff(m.prevOf(l), l)
		m.log.Info("new layout", "layout", l.ID(), "nodes", len(l.Nodes), "moved_replicas", mv.Moved, "minimum", mv.Minimum)
	}
	if err := m.persistLocked(); err != nil {
		m.log.Error("cluster state not persisted", "err", err)
	}
	for _, w := range m.watches {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Manager) prevOf(l *layout.Layout) *layout.Layout {
	for i, x := range m.st.Layouts {
		if x == l && i > 0 {
			return m.st.Layouts[i-1]
		}
	}
	return nil
}

// Watch returns a channel that receives (coalesced) after every state change.
func (m *Manager) Watch() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(chan struct{}, 1)
	m.watches = append(m.watches, c)
	return c
}

// View is an immutable snapshot for request routing.
type View struct {
	Self    string
	RF      int
	Layouts []*layout.Layout // live versions, oldest first
	Read    *layout.Layout   // the version reads use
	Roles   map[string]RoleEntry
	Acks    map[string]uint64
}

// View returns the current snapshot. Layouts is empty until enough storage nodes declared roles.
func (m *Manager) View() View {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := View{Self: m.self, RF: m.st.RF, Layouts: append([]*layout.Layout{}, m.st.Layouts...), Roles: map[string]RoleEntry{}, Acks: map[string]uint64{}}
	for k, e := range m.st.Roles {
		v.Roles[k] = e
	}
	for k, a := range m.st.Acks {
		v.Acks[k] = a
	}
	if len(m.st.Layouts) > 0 {
		v.Read = m.st.Layouts[m.st.ReadIndex()]
	}
	return v
}

// Gone reports whether the operator declared node id gone for good: retired
// (decommission, `entrepot node retire`) or replaced by a re-installed node.
// Its copies cannot be waited for, so quorums over a replica set that still
// lists it (an older live layout) count only the other nodes.
func (v View) Gone(id string) bool {
	if e, ok := v.Roles[id]; ok && e.Retired {
		return true
	}
	for _, e := range v.Roles {
		if e.Replaces == id && !e.Retired {
			return true
		}
	}
	return false
}

// Need is how many acknowledgements quorum q asks of set: q, but never more
// than the set's nodes that are not Gone.
func (v View) Need(set []string, q int) int {
	alive := 0
	for _, id := range set {
		if !v.Gone(id) {
			alive++
		}
	}
	return max(0, min(q, alive))
}

// Ready reports whether a layout exists.
func (v View) Ready() bool { return v.Read != nil }

// Quorums returns R = ceil(RF/2) and W = RF + 1 − R.
func (v View) Quorums() (r, w int) {
	r = (v.RF + 1) / 2
	return r, v.RF + 1 - r
}

// ReadNodes are partition p's replicas in the read layout.
func (v View) ReadNodes(p uint8) []string {
	if v.Read == nil {
		return nil
	}
	return v.Read.NodesOf(p)
}

// WriteSets are partition p's replica sets, one per live layout: a write must
// reach a quorum in each.
func (v View) WriteSets(p uint8) [][]string {
	out := make([][]string, 0, len(v.Layouts))
	for _, l := range v.Layouts {
		out = append(out, l.NodesOf(p))
	}
	return out
}

// Run gossips until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.GossipInterval)
	defer t.Stop()
	for {
		m.gossipOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.kick:
		}
	}
}

func (m *Manager) gossipOnce(ctx context.Context) {
	m.mu.Lock()
	b, err := m.st.Encode()
	m.mu.Unlock()
	if err != nil {
		m.log.Error("encode state", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, p := range m.cfg.Peers() {
		wg.Add(1)
		go func(p peer.ID) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			out, err := m.cfg.RPC.Call(cctx, p, Service, "gossip", b)
			if err != nil {
				m.log.Debug("gossip failed", "peer", p.ShortString(), "err", err)
				return
			}
			if err := m.mergeEncoded(out); err != nil {
				m.log.Warn("gossip reply refused", "peer", p.ShortString(), "err", err)
			}
		}(p)
	}
	wg.Wait()
}

type codedErr struct{ error }

func (codedErr) RPCCode() string { return "rf-mismatch" }

func (m *Manager) handleGossip(ctx context.Context, from peer.ID, payload []byte) ([]byte, error) {
	if err := m.mergeEncoded(payload); err != nil {
		if errors.Is(err, ErrRFMismatch) {
			return nil, codedErr{err}
		}
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Encode()
}

func (m *Manager) mergeEncoded(b []byte) error {
	o, err := DecodeState(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o.RF != m.st.RF {
		return fmt.Errorf("%w: peer has %d, this node %d", ErrRFMismatch, o.RF, m.st.RF)
	}
	if m.st.Merge(o) {
		m.changedLocked()
	} else if l, err := m.st.Advance(); err == nil && l != nil {
		m.changedLocked()
	}
	return nil
}

// nextTS is max(now in ms, last+1).
func nextTS(now time.Time, last uint64) uint64 {
	ms := uint64(now.UnixMilli())
	if ms > last {
		return ms
	}
	return last + 1
}
