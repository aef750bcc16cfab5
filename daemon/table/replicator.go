package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/db"
	"github.com/entrepot/entrepot/daemon/rpc"
)

// Service is the rpc service of table replication (/entrepot/table/1).
const Service = "table"

// ErrUnavailable is returned when no layout exists yet or a quorum of
// replicas cannot be reached. The S3 layer answers 503.
var ErrUnavailable = errors.New("table: replicas unavailable")

// ErrUnknownTable is returned for a table name or id that is not replicated here.
var ErrUnknownTable = errors.New("table: unknown table")

// Mode says where a table's entries live.
type Mode int

const (
	// Sharded: an entry lives on the RF replicas of Partition(pk).
	Sharded Mode = iota
	// FullCopy: every node (storage and gateway) holds every entry.
	FullCopy
)

func (m Mode) String() string {
	if m == FullCopy {
		return "full-copy"
	}
	return "sharded"
}

// TableName is the name of a table in status, metrics and the admin API.
func TableName(id db.TableID) string {
	switch id {
	case db.TableBucket:
		return "bucket"
	case db.TableBucketName:
		return "bucket_name"
	case db.TableAccessKey:
		return "key"
	case db.TableObject:
		return "object"
	case db.TableVersion:
		return "version"
	case db.TableBlockRef:
		return "block_ref"
	case db.TableUpload:
		return "upload"
	}
	return fmt.Sprintf("table%d", id)
}

// ReplicatorConfig configures a Replicator.
type ReplicatorConfig struct {
	// RPC carries replication (required).
	RPC *rpc.Node
	// View returns the current cluster view (required).
	View func() cluster.View
	// MarkSynced is called with version v once this node synced every
	// partition it holds in layout v, for every table (required).
	MarkSynced func(version uint64)
	// ShardedSyncInterval is the anti-entropy period of sharded tables
	// (default 10 min); a layout change starts a round at once.
	ShardedSyncInterval time.Duration
	// FullCopySyncInterval is the anti-entropy period of full-copy tables (default 10 s).
	FullCopySyncInterval time.Duration
	// TombstoneGCDelay: a tombstone is collected no sooner (default 24 h),
	// and only once every replica holds it.
	TombstoneGCDelay time.Duration
	// CallTimeout bounds one replica call (default 30 s). A write keeps
	// going to the remaining replicas in the background for this long.
	CallTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (nil = discard); Registerer for entrepot_table_* (nil = none).
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Replicator replicates the tables wrapped by Replicate over rpc.
type Replicator struct {
	cfg  ReplicatorConfig
	self string
	log  *slog.Logger
	met  *metrics

	mu     sync.Mutex
	tables map[db.TableID]*regTable
	order  []*regTable

	syncMu sync.Mutex // one anti-entropy round at a time

	stMu           sync.Mutex
	syncedVersion  uint64
	lastFullSync   time.Time
	syncing        bool
	progress       float64
	partsQuorum    int
	partsNoQuorum  int
	lastLayoutSig  string
	lastRoundError string
}

// regTable is one replicated table.
type regTable struct {
	name    string
	mode    Mode
	s       store
	started atomic.Bool
	// offloadPending: the last round left entries of partitions this node
	// no longer holds (unreachable replicas or entries changed meanwhile).
	offloadPending atomic.Bool

	sent, received, collected, dropped, repairs atomic.Int64

	mu       sync.Mutex
	lastSync time.Time
	lastErr  string
	held     int
}

// NewReplicator returns a Replicator and registers its rpc handlers.
func NewReplicator(cfg ReplicatorConfig) (*Replicator, error) {
	if cfg.RPC == nil || cfg.View == nil || cfg.MarkSynced == nil {
		return nil, errors.New("table replicator: RPC, View and MarkSynced are required")
	}
	if cfg.ShardedSyncInterval <= 0 {
		cfg.ShardedSyncInterval = 10 * time.Minute
	}
	if cfg.FullCopySyncInterval <= 0 {
		cfg.FullCopySyncInterval = 10 * time.Second
	}
	if cfg.TombstoneGCDelay <= 0 {
		cfg.TombstoneGCDelay = 24 * time.Hour
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Replicator{cfg: cfg, self: cfg.RPC.Self().String(), log: log.With("component", "table-replication"),
		met: met, tables: map[db.TableID]*regTable{}}
	r.cfg.RPC.Handle(Service, mInsert, r.hInsert)
	r.cfg.RPC.Handle(Service, mGet, r.hGet)
	r.cfg.RPC.Handle(Service, mRange, r.hRange)
	r.cfg.RPC.Handle(Service, mSummary, r.hRangeSummary)
	r.cfg.RPC.Handle(Service, mRoots, r.hRoots)
	r.cfg.RPC.Handle(Service, mChildren, r.hChildren)
	r.cfg.RPC.Handle(Service, mItems, r.hItems)
	r.cfg.RPC.Handle(Service, mGC, r.hGC)
	return r, nil
}

func (r *Replicator) register(s store, m Mode) *regTable {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tables[s.tableID()]; ok {
		return t
	}
	s.enableTracking()
	t := &regTable{name: TableName(s.tableID()), mode: m, s: s}
	r.tables[s.tableID()] = t
	r.order = append(r.order, t)
	return t
}

func (r *Replicator) table(id db.TableID) (*regTable, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tables[id]
	if !ok {
		return nil, coded{fmt.Errorf("%w: id %d", ErrUnknownTable, id), "unknown-table"}
	}
	return t, nil
}

func (r *Replicator) allTables() []*regTable {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*regTable(nil), r.order...)
}

// coded passes an error code to the calling node.
type coded struct {
	error
	code string
}

func (c coded) RPCCode() string { return c.code }
func (c coded) Unwrap() error   { return c.error }

func badMessage(err error) error {
	if errors.Is(err, ErrBadMessage) {
		return coded{err, "bad-message"}
	}
	return err
}

// Handlers. Entries arriving here go through Local.Insert like local
// writes, so a schema's Hook (block reference counts) runs on every replica.

func (r *Replicator) hInsert(ctx context.Context, _ peer.ID, p []byte) ([]byte, error) {
	id, want, es, err := decodeInsert(p)
	if err != nil {
		return nil, badMessage(err)
	}
	t, err := r.table(id)
	if err != nil {
		return nil, err
	}
	cs, err := t.s.insertRaw(ctx, es, want)
	if err != nil {
		return nil, badMessage(err)
	}
	if t.mode == Sharded && !t.offloadPending.Load() {
		// A coordinator with an older view, or a peer's anti-entropy, may
		// write here after this node lost the partition: offload it soon.
		if v := r.cfg.View(); v.Ready() {
			for _, e := range es {
				if !r.holds(v, Partition(e.PK)) {
					t.offloadPending.Store(true)
					break
				}
			}
		}
	}
	return encodeChanges(cs), nil
}

func (r *Replicator) hGet(ctx context.Context, _ peer.ID, p []byte) ([]byte, error) {
	id, keys, err := decodeGet(p)
	if err != nil {
		return nil, badMessage(err)
	}
	t, err := r.table(id)
	if err != nil {
		return nil, err
	}
	vs, err := t.s.getRaw(ctx, keys)
	if err != nil {
		return nil, err
	}
	return encodeValues(vs), nil
}

func (r *Replicator) hRange(ctx context.Context, _ peer.ID, p []byte) ([]byte, error) {
	return r.serveRange(ctx, p, false)
}

func (r *Replicator) hRangeSummary(ctx context.Context, _ peer.ID, p []byte) ([]byte, error) {
	return r.serveRange(ctx, p, true)
}

func (r *Replicator) serveRange(ctx context.Context, p []byte, summary bool) ([]byte, error) {
	id, pk, from, limit, err := decodeRange(p)
	if err != nil {
		return nil, badMessage(err)
	}
	t, err := r.table(id)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxWireItems {
		limit = maxWireItems
	}
	es, err := t.s.rangeRaw(ctx, pk, from, limit+1)
	if err != nil {
		return nil, err
	}
	more := len(es) > limit
	if more {
		es = es[:limit]
	}
	if summary {
		for i := range es {
			es[i].Value = t.s.summarize(es[i].Value)
		}
	}
	if cut := cutBytes(es, maxWireBytes); len(cut) < len(es) {
		es, more = cut, true
	}
	return encodeEntries(es, more), nil
}

// cutBytes keeps a prefix of es whose values total at most n bytes (at least one).
func cutBytes(es []rawEntry, n int) []rawEntry {
	total := 0
	for i, e := range es {
		total += len(e.PK) + len(e.SK) + len(e.Value) + 16
		if total > n && i > 0 {
			return es[:i]
		}
	}
	return es
}

func (r *Replicator) hRoots(ctx context.Context, _ peer.ID, p []byte) ([]byte, error) {
	id, err := decodeRootsReq(p)
	if err != nil {
		return nil, badMessage(err)
	}
	t, err := r.table(id)
	if err != nil {
		return nil, err
	}
	// A sync compares against this answer: it must cover every write
	// acknowledged so far, so fold pending changes in first.
	if err := flushMerkle(ctx, t); err != nil {
		return nil, err
	}
	rs, err := t.s.merkleRoots()
	if err != nil {
		return nil, err
	}
	return encodeRoots(rs), nil
}

func (r *Replicator) hChildren(_ context.Context, _ peer.ID, p []byte) ([]byte, error) {
	id, part, path, err := decodeChildrenReq(p)
	if err != nil {
		return nil, badMessage(err)
	}
	t, err := r.table(id)
	if err != nil {
		return nil, err
	}
	cs, err := t.s.merkleChildren(part, path)
	if err != nil {
		return nil, badMessage(err)
	}
	return encodeChildren(cs), nil
}

func (r *Replicator) hItems(_ context.Context, _ peer.ID, p []byte) ([]byte, error) {
	id, part, path, after, limit, err := decodeItemsReq(p)
	if err != nil {
		return nil, badMessage(err)
	}
	t, err := r.table(id)
	if err != nil {
		return nil, err
	}
	items, more, err := t.s.merkleItems(part, path, after, min(limit, maxItemsAnswer))
	if err != nil {
		return nil, err
	}
	return encodeItems(items, more), nil
}

func (r *Replicator) hGC(ctx context.Context, _ peer.ID, p []byte) ([]byte, error) {
	id, items, err := decodeGC(p)
	if err != nil {
		return nil, badMessage(err)
	}
	t, err := r.table(id)
	if err != nil {
		return nil, err
	}
	n, err := t.s.gcDelete(ctx, items)
	if err != nil {
		return nil, err
	}
	t.collected.Add(int64(n))
	r.met.collected.WithLabelValues(t.name).Add(float64(n))
	return encodeCount(n), nil
}

// maxItemsAnswer bounds the items of one answer (keys up to a few KiB each).
const maxItemsAnswer = 4096

// reply is one replica's answer.
type reply struct {
	node    string
	payload []byte
	err     error
}

// fanout calls method on every node in parallel. The calls are detached from
// ctx's cancellation (bounded by CallTimeout instead), so replicas not needed
// for the quorum still receive a write after the caller returned. The
// channel is buffered: nobody has to drain it.
func (r *Replicator) fanout(ctx context.Context, nodes []string, method string, payload func(node string) []byte) <-chan reply {
	ch := make(chan reply, len(nodes))
	bg := context.WithoutCancel(ctx)
	for _, n := range nodes {
		body := payload(n)
		go func() {
			cctx, cancel := context.WithTimeout(bg, r.cfg.CallTimeout)
			defer cancel()
			out, err := r.call(cctx, n, method, body)
			ch <- reply{node: n, payload: out, err: err}
		}()
	}
	return ch
}

func (r *Replicator) call(ctx context.Context, node, method string, body []byte) ([]byte, error) {
	id, err := peer.Decode(node)
	if err != nil {
		return nil, fmt.Errorf("node id %q: %w", node, err)
	}
	return r.cfg.RPC.Call(ctx, id, Service, method, body)
}

// placement is where an entry lives in one view.
type placement struct {
	sets [][]string // write sets, one per live layout
	need []int      // acknowledgements needed in each set
}

// writePlacement returns partition p's write sets.
func (r *Replicator) writePlacement(v cluster.View, m Mode, p uint8) placement {
	var pl placement
	_, w := v.Quorums()
	if m == FullCopy {
		for _, l := range v.Layouts {
			set := make([]string, 0, len(l.Nodes))
			for _, n := range l.Nodes {
				set = append(set, n.ID)
			}
			pl.sets = append(pl.sets, set)
			pl.need = append(pl.need, v.Need(set, len(set)/2+1))
		}
		return pl
	}
	for _, set := range v.WriteSets(p) {
		pl.sets = append(pl.sets, set)
		pl.need = append(pl.need, v.Need(set, w))
	}
	return pl
}

// readPlacement returns the nodes to read partition p from and how many must answer.
func (r *Replicator) readPlacement(v cluster.View, m Mode, p uint8) ([]string, int) {
	if v.Read == nil {
		return nil, 0
	}
	if m == FullCopy {
		nodes := make([]string, 0, len(v.Read.Nodes))
		for _, n := range v.Read.Nodes {
			nodes = append(nodes, n.ID)
		}
		return nodes, v.Need(nodes, len(nodes)/2+1)
	}
	rq, _ := v.Quorums()
	nodes := v.ReadNodes(p)
	return nodes, v.Need(nodes, rq)
}

func union(sets [][]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range sets {
		for _, n := range s {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

func layoutSig(v cluster.View) string {
	var b strings.Builder
	for _, l := range v.Layouts {
		b.WriteString(l.ID())
		b.WriteByte(' ')
	}
	return b.String()
}

// MerkleRoots returns this node's Merkle root of every partition of the
// named table (zero for an empty partition), after folding pending changes
// into the tree.
func (r *Replicator) MerkleRoots(name string) (map[uint8][32]byte, error) {
	for _, t := range r.allTables() {
		if t.name != name {
			continue
		}
		if err := flushMerkle(context.Background(), t); err != nil {
			return nil, err
		}
		rs, err := t.s.merkleRoots()
		if err != nil {
			return nil, err
		}
		out := make(map[uint8][32]byte, 256)
		for p, n := range rs {
			out[uint8(p)] = n.Hash
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownTable, name)
}

// flushMerkle folds every pending change of t into its tree (initialising
// the tree first if the table held entries before it was replicated).
func flushMerkle(ctx context.Context, t *regTable) error {
	if err := t.s.initMerkle(ctx); err != nil {
		return err
	}
	for range 10000 {
		n, err := t.s.updateMerkle(ctx, 1000)
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

// Run keeps the Merkle trees up to date and runs anti-entropy, offloading
// and tombstone GC until ctx ends. Wrap every table (Replicate) before.
func (r *Replicator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	startTables := func() {
		for _, t := range r.allTables() {
			if t.started.Swap(true) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.runMerkle(ctx, t)
			}()
		}
	}
	startTables()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastSharded, lastFull, lastGC, lastRetry time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		startTables()
		v := r.cfg.View()
		if !v.Ready() {
			continue
		}
		now := time.Now()
		sig := layoutSig(v)
		r.stMu.Lock()
		changed := sig != r.lastLayoutSig
		r.lastLayoutSig = sig
		behind := r.syncedVersion < v.Layouts[len(v.Layouts)-1].Version
		r.stMu.Unlock()
		for _, t := range r.allTables() {
			if t.offloadPending.Load() {
				behind = true
			}
		}
		switch {
		case changed, now.Sub(lastSharded) >= r.cfg.ShardedSyncInterval,
			behind && now.Sub(lastRetry) >= 5*time.Second:
			lastSharded, lastRetry, lastFull = now, now, now
			r.log.Debug("anti-entropy round", "layout_changed", changed, "behind", behind)
			if err := r.syncRound(ctx, true); err != nil && ctx.Err() == nil {
				r.log.Warn("anti-entropy round incomplete", "err", err)
			}
		case now.Sub(lastFull) >= r.cfg.FullCopySyncInterval:
			lastFull = now
			if err := r.syncRound(ctx, false); err != nil && ctx.Err() == nil {
				r.log.Debug("full-copy anti-entropy incomplete", "err", err)
			}
		case now.Sub(lastGC) >= time.Hour:
			lastGC = now
			before := uint64(r.cfg.Now().Add(-r.cfg.TombstoneGCDelay).UnixMilli())
			for _, t := range r.allTables() {
				if _, err := r.collect(ctx, t, before); err != nil && ctx.Err() == nil {
					r.log.Info("tombstone gc incomplete", "table", t.name, "err", err)
				}
			}
		}
	}
}

// runMerkle initialises t's tree, then folds changes in as they come.
func (r *Replicator) runMerkle(ctx context.Context, t *regTable) {
	for ctx.Err() == nil {
		if err := t.s.initMerkle(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			r.log.Error("merkle init", "table", t.name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
	kick := t.s.kickChan()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for {
			n, err := t.s.updateMerkle(ctx, 1000)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error("merkle update", "table", t.name, "err", err)
				}
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
	}
}

// ReplicationStatus is the table replication part of `entrepot status`.
type ReplicationStatus struct {
	// Ready is false until a layout exists.
	Ready bool `json:"ready"`
	// SyncedVersion is the newest layout version this node marked synced.
	SyncedVersion uint64 `json:"synced_version"`
	// NewestVersion is the newest live layout version.
	NewestVersion uint64 `json:"newest_version"`
	// Syncing is true during an anti-entropy round; Progress is its share done (0..1).
	Syncing  bool    `json:"syncing"`
	Progress float64 `json:"sync_progress"`
	// LastFullSync is the end of the last complete round over every table.
	LastFullSync time.Time `json:"last_full_sync"`
	// PartitionsWithQuorum counts the partitions this node holds whose last
	// sync reached a read quorum of every live replica set (sharded tables).
	PartitionsWithQuorum    int           `json:"partitions_with_quorum"`
	PartitionsWithoutQuorum int           `json:"partitions_without_quorum"`
	LastError               string        `json:"last_error,omitempty"`
	Tables                  []TableStatus `json:"tables"`
}

// TableStatus is one table's replication state on this node.
type TableStatus struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
	// Items is the number of entries (tombstones included) in the Merkle trees.
	Items int64 `json:"items"`
	// MerkleTodo is the number of changes not yet in the Merkle trees (capped at 100,000).
	MerkleTodo int `json:"merkle_todo"`
	// PartitionsHeld is how many partitions this node holds in a live layout.
	PartitionsHeld      int       `json:"partitions_held"`
	SyncItemsSent       int64     `json:"sync_items_sent"`
	SyncItemsReceived   int64     `json:"sync_items_received"`
	TombstonesCollected int64     `json:"tombstones_collected"`
	ItemsOffloaded      int64     `json:"items_offloaded"`
	ReadRepairs         int64     `json:"read_repairs"`
	LastSync            time.Time `json:"last_sync"`
	LastError           string    `json:"last_error,omitempty"`
}

// Status describes replication on this node.
func (r *Replicator) Status() ReplicationStatus {
	v := r.cfg.View()
	r.stMu.Lock()
	st := ReplicationStatus{Ready: v.Ready(), SyncedVersion: r.syncedVersion, Syncing: r.syncing, Progress: r.progress,
		LastFullSync: r.lastFullSync, PartitionsWithQuorum: r.partsQuorum, PartitionsWithoutQuorum: r.partsNoQuorum,
		LastError: r.lastRoundError, Tables: []TableStatus{}}
	r.stMu.Unlock()
	if n := len(v.Layouts); n > 0 {
		st.NewestVersion = v.Layouts[n-1].Version
	}
	for _, t := range r.allTables() {
		ts := TableStatus{Name: t.name, Mode: t.mode.String(), MerkleTodo: t.s.merkleTodo(100000),
			SyncItemsSent: t.sent.Load(), SyncItemsReceived: t.received.Load(), TombstonesCollected: t.collected.Load(),
			ItemsOffloaded: t.dropped.Load(), ReadRepairs: t.repairs.Load()}
		if rs, err := t.s.merkleRoots(); err == nil {
			for _, n := range rs {
				ts.Items += int64(n.Count)
			}
		}
		t.mu.Lock()
		ts.LastSync, ts.LastError, ts.PartitionsHeld = t.lastSync, t.lastErr, t.held
		t.mu.Unlock()
		r.met.items.WithLabelValues(t.name).Set(float64(ts.Items))
		r.met.todo.WithLabelValues(t.name).Set(float64(ts.MerkleTodo))
		st.Tables = append(st.Tables, ts)
	}
	return st
}

// metrics are the entrepot_table_* families.
type metrics struct {
	items, todo                        *prometheus.GaugeVec
	sent, received, collected, repairs *prometheus.CounterVec
	quorumFailures                     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		items: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "entrepot_table_items",
			Help: "Entries (tombstones included) in the table's Merkle trees on this node."}, []string{"table"}),
		todo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "entrepot_table_merkle_todo",
			Help: "Changes not yet folded into the Merkle trees."}, []string{"table"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "entrepot_table_sync_items_sent_total",
			Help: "Entries pushed to other replicas by anti-entropy."}, []string{"table"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "entrepot_table_sync_items_received_total",
			Help: "Entries pulled from other replicas by anti-entropy."}, []string{"table"}),
		collected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "entrepot_table_gc_tombstones_total",
			Help: "Tombstones deleted once every replica held them."}, []string{"table"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "entrepot_table_read_repairs_total",
			Help: "Stale replicas rewritten after a read."}, []string{"table"}),
		quorumFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "entrepot_table_quorum_failures_total",
			Help: "Operations that could not reach a quorum."}, []string{"table", "op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.items, m.todo, m.sent, m.received, m.collected, m.repairs, m.quorumFailures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register table metrics: %w", err)
			}
		}
	}
	return m, nil
}
