package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrNotClustered is returned by cluster endpoints on a node that runs alone
// (no rpc.secret_file).
var ErrNotClustered = errors.New("this node is not part of a cluster (no rpc.secret_file configured)")

// ErrUnknownNode is returned when a node ID names no member.
var ErrUnknownNode = errors.New("unknown node")

// ErrUnknownTable is returned when a table name is not replicated.
var ErrUnknownTable = errors.New("unknown table")

// ErrUnavailable is returned when the operation needs peers that do not answer.
var ErrUnavailable = errors.New("cluster unavailable")

// ErrNotImplemented is returned when this build lacks the part an endpoint needs.
var ErrNotImplemented = errors.New("not implemented in this build")

// Cluster is what the cluster endpoints need from the daemon. Every method
// may return ErrNotClustered.
type Cluster interface {
	// NodeID returns this node's identity and bootstrap addresses.
	NodeID(ctx context.Context) (NodeIdentity, error)
	// ClusterStatus describes members, reachability, layout and sync.
	ClusterStatus(ctx context.Context) (ClusterStatus, error)
	// Layout describes the live layout versions.
	Layout(ctx context.Context) (LayoutInfo, error)
	// RetireNode decommissions a member (ErrUnknownNode when it is not one).
	RetireNode(ctx context.Context, id string) error
	// MerkleRoots returns the Merkle root per partition of a replicated table held by this node.
	MerkleRoots(ctx context.Context, table string) (MerkleRoots, error)
	// SyncTables runs one full anti-entropy round of the tables.
	SyncTables(ctx context.Context) error
	// Scrub verifies every local block now and repairs what it can.
	Scrub(ctx context.Context) (ScrubResult, error)
}

// NodeIdentity is the answer of /v1/node/id.
type NodeIdentity struct {
	// ID is the node ID (libp2p peer ID).
	ID string `json:"id"`
	// Addrs are multiaddrs ending in /p2p/<ID>, usable in rpc.bootstrap.
	Addrs []string `json:"addrs"`
}

// ClusterStatus is the answer of /v1/cluster/status.
type ClusterStatus struct {
	Self        string `json:"self"`
	RF          int    `json:"replication_factor"`
	ReadQuorum  int    `json:"read_quorum"`
	WriteQuorum int    `json:"write_quorum"`
	// Ready is false until a layout exists (S3 answers 503 meanwhile).
	Ready bool `json:"ready"`
	// LayoutVersion is the version reads use; NewestLayout the newest live one.
	LayoutVersion uint64 `json:"layout_version"`
	NewestLayout  uint64 `json:"newest_layout_version"`
	// Synced is true when reads use the newest layout (no transition running).
	Synced bool `json:"synced"`
	// LiveLayouts are the IDs of the live layout versions, oldest first.
	LiveLayouts []string        `json:"live_layouts"`
	Nodes       []ClusterMember `json:"nodes"`
	Partitions  PartitionHealth `json:"partitions"`
	// Tables and Blocks are the replication subsystems' own status documents.
	Tables json.RawMessage `json:"tables,omitempty"`
	Blocks json.RawMessage `json:"blocks,omitempty"`
	// Rebalance summarises block movement after a layout change.
	Rebalance RebalanceStatus `json:"rebalance"`
}

// ClusterMember is one node as seen from this one.
type ClusterMember struct {
	ID       string   `json:"id"`
	Hostname string   `json:"hostname,omitempty"`
	Addrs    []string `json:"addrs,omitempty"`
	Zone     string   `json:"zone,omitempty"`
	Capacity int64    `json:"capacity_bytes"`
	Gateway  bool     `json:"gateway"`
	Tags     []string `json:"tags,omitempty"`
	Retired  bool     `json:"retired,omitempty"`
	Replaces string   `json:"replaces,omitempty"`
	Self     bool     `json:"self,omitempty"`
	// InLayout is true when the node holds partitions in a live layout (or is a gateway in it).
	InLayout bool `json:"in_layout"`
	// Partitions is how many partitions the node holds in the newest layout.
	Partitions int  `json:"partitions"`
	Up         bool `json:"up"`
	// Reachability is "self", "direct", "hole-punched", "relayed" or "unreachable".
	Reachability string        `json:"reachability"`
	RTT          time.Duration `json:"rtt_ns"`
	LastSeen     time.Time     `json:"last_seen"`
	// SyncedVersion is the highest layout version the node acknowledged.
	SyncedVersion uint64 `json:"synced_version"`
	// DataAvail and DataTotal are the node's data disk, when it answered.
	DataAvail int64  `json:"data_avail_bytes"`
	DataTotal int64  `json:"data_total_bytes"`
	Version   string `json:"version,omitempty"`
}

// PartitionHealth counts partitions by how many of their replicas are up.
type PartitionHealth struct {
	Total int `json:"total"`
	// WithQuorum partitions can be read and written (a quorum is up in every live layout).
	WithQuorum    int `json:"with_quorum"`
	WithoutQuorum int `json:"without_quorum"`
	// AllUp partitions have every replica up.
	AllUp int `json:"all_up"`
}

// RebalanceStatus is the block movement after a layout change.
type RebalanceStatus struct {
	Active      bool          `json:"active"`
	QueueLength int64         `json:"queue_length"`
	Errored     int64         `json:"errored"`
	Progress    float64       `json:"progress"` // 0..1
	BytesMoved  int64         `json:"bytes_moved"`
	ETA         time.Duration `json:"eta_ns"`
}

// LayoutInfo is the answer of /v1/layout.
type LayoutInfo struct {
	RF int `json:"replication_factor"`
	// ReadVersion is the version reads use.
	ReadVersion uint64          `json:"read_version"`
	Versions    []LayoutVersion `json:"versions"`
	// LastChange is the latest layout change this node saw, if any.
	LastChange *LayoutChange `json:"last_change,omitempty"`
}

// LayoutVersion is one live layout.
type LayoutVersion struct {
	Version uint64       `json:"version"`
	ID      string       `json:"id"`
	Synced  bool         `json:"synced"`
	Nodes   []LayoutNode `json:"nodes"`
	// Partitions[p] lists partition p's replica node IDs.
	Partitions [][]string `json:"partitions"`
}

// LayoutNode is one member of a layout version.
type LayoutNode struct {
	ID         string   `json:"id"`
	Zone       string   `json:"zone"`
	Capacity   int64    `json:"capacity_bytes"`
	Tags       []string `json:"tags,omitempty"`
	Partitions int      `json:"partitions"`
	// Acked is the highest layout version this node has synced.
	Acked uint64 `json:"acked"`
}

// LayoutChange is the difference between two consecutive layouts, in
// partition replicas: Moved were assigned to a node that did not hold them;
// Minimum is the least any assignment with the same per-node counts moves.
type LayoutChange struct {
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
	Moved   int    `json:"moved"`
	Minimum int    `json:"minimum"`
}

// NodeRef names a node by ID.
type NodeRef struct {
	Node string `json:"node"`
}

// MerkleRoots is the answer of /v1/cluster/merkle: partition (decimal) → root (hex).
type MerkleRoots struct {
	Table string            `json:"table"`
	Roots map[string]string `json:"roots"`
}

// ScrubResult is the answer of /v1/cluster/scrub.
type ScrubResult struct {
	Checked  int64 `json:"checked"`
	Missing  int64 `json:"missing"`
	Corrupt  int64 `json:"corrupt"`
	Repaired int64 `json:"repaired"`
}

func (a *API) clusterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/node/id", handle(a, clusterCall(a, "node id", Cluster.NodeID)))
	mux.HandleFunc("POST /v1/node/retire", handleJSON(a, a.nodeRetire))
	mux.HandleFunc("GET /v1/cluster/status", handle(a, clusterCall(a, "cluster status", Cluster.ClusterStatus)))
	mux.HandleFunc("GET /v1/layout", handle(a, clusterCall(a, "layout", Cluster.Layout)))
	mux.HandleFunc("GET /v1/cluster/merkle", handle(a, a.merkle))
	mux.HandleFunc("POST /v1/cluster/sync", handle(a, clusterCall(a, "sync tables", syncTables)))
	mux.HandleFunc("POST /v1/cluster/scrub", handle(a, clusterCall(a, "scrub", Cluster.Scrub)))
}

// cluster returns the configured Cluster, or ErrNotClustered.
func (a *API) cluster() (Cluster, error) {
	if a.cfg.Cluster == nil {
		return nil, ErrNotClustered
	}
	return a.cfg.Cluster, nil
}

// clusterCall is the endpoint that answers with call's result: ErrNotClustered
// on a node running alone, call's error wrapped as "what: err".
func clusterCall[Resp any](a *API, what string, call func(Cluster, context.Context) (Resp, error)) func(http.ResponseWriter, *http.Request) (Resp, error) {
	return func(w http.ResponseWriter, r *http.Request) (Resp, error) {
		var zero Resp
		c, err := a.cluster()
		if err != nil {
			return zero, err
		}
		v, err := call(c, r.Context())
		if err != nil {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		return v, nil
	}
}

// syncTables runs Cluster.SyncTables; its answer is {}.
func syncTables(c Cluster, ctx context.Context) (struct{}, error) {
	return struct{}{}, c.SyncTables(ctx)
}

func (a *API) nodeRetire(w http.ResponseWriter, r *http.Request, req *NodeRef) (struct{}, error) {
	if err := required("node", req.Node); err != nil {
		return struct{}{}, err
	}
	c, err := a.cluster()
	if err != nil {
		return struct{}{}, err
	}
	if err := c.RetireNode(r.Context(), req.Node); err != nil {
		return struct{}{}, fmt.Errorf("retire %s: %w", req.Node, err)
	}
	a.log.InfoContext(r.Context(), "node retired", "node", req.Node, "request_id", requestID(w))
	return struct{}{}, nil
}

func (a *API) merkle(w http.ResponseWriter, r *http.Request) (MerkleRoots, error) {
	name := r.URL.Query().Get("table")
	if err := required("table", name); err != nil {
		return MerkleRoots{}, err
	}
	c, err := a.cluster()
	if err != nil {
		return MerkleRoots{}, err
	}
	m, err := c.MerkleRoots(r.Context(), name)
	if err != nil {
		return MerkleRoots{}, fmt.Errorf("merkle roots: %w", err)
	}
	return m, nil
}
