package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/config"
	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/daemon/rpc"
	"github.com/entrepot/entrepot/daemon/table"
	"github.com/entrepot/entrepot/natpunch"
)

// Files in metadata_dir owned by the cluster layer.
const (
	PeerListFile     = "peer_list"
	ClusterStateFile = "cluster_state"
)

// nodeService is the rpc service answering "info" for `entrepot status`.
const nodeService = "node"

// nodeInfoVersion is the first byte of an info answer.
const nodeInfoVersion = 1

// nodeInfo is what a member tells others about itself for status.
type nodeInfo struct {
	Hostname  string `json:"hostname"`
	Version   string `json:"version"`
	DataAvail int64  `json:"data_avail"`
	DataTotal int64  `json:"data_total"`
}

// clusterNode is the cluster layer of a daemon: the libp2p host, rpc and the
// membership/layout manager, plus the replication parts wired on top.
type clusterNode struct {
	log  *slog.Logger
	cfg  config.Config
	host *p2p.Host
	rpc  *rpc.Node
	mgr  *cluster.Manager
	repl *table.Replicator
	rtt  *rttCache

	version string
	started time.Time

	// ready latches once a layout exists (layouts never go away).
	ready atomic.Bool

	mu         sync.Mutex
	lastChange *layoutChange
	newest     *layout.Layout

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type layoutChange struct {
	from, to uint64
	moves    layout.Moves
}

// newClusterNode starts the host (its listener is open on return) and builds
// rpc and the cluster manager. Nothing runs in the background until start.
func newClusterNode(ctx context.Context, cfg config.Config, opts Options, reg prometheus.Registerer) (c *clusterNode, err error) {
	psk, err := p2p.ParseSecret(hex.EncodeToString(cfg.RPC.Secret))
	if err != nil {
		return nil, fmt.Errorf("rpc.secret_file: %w", err)
	}
	ping := cfg.RPC.PingInterval.D()
	natCfg, expose := natConfig(cfg, opts.Logger)
	host, err := p2p.New(ctx, p2p.Config{
		NAT:               natCfg,
		Expose:            expose,
		IdentityFile:      filepath.Join(cfg.MetadataDir, NodeKeyFile),
		Secret:            psk,
		ListenAddrs:       []string{cfg.RPC.Listen},
		AnnounceAddrs:     cfg.RPC.PublicAddrs,
		Bootstrap:         cfg.RPC.Bootstrap,
		PeerListFile:      filepath.Join(cfg.MetadataDir, PeerListFile),
		MDNS:              cfg.RPC.MDNS,
		PingInterval:      ping,
		ReconnectInterval: min(30*time.Second, 2*ping),
		Logger:            opts.Logger,
		Registerer:        reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start p2p host (rpc.listen %s): %w", cfg.RPC.Listen, err)
	}
	c = &clusterNode{log: opts.Logger.With("component", "cluster-node"), cfg: cfg, host: host, version: opts.Version, started: time.Now()}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	c.rpc, err = rpc.New(rpc.Config{Host: host.Libp2p(), Logger: opts.Logger})
	if err != nil {
		return c, fmt.Errorf("start rpc: %w", err)
	}
	role := layout.Role{Zone: cfg.Zone, Tags: cfg.Tags}
	if !cfg.Gateway {
		role.Capacity = int64(cfg.Capacity)
	}
	c.mgr, err = cluster.New(cluster.Config{
		RPC:            c.rpc,
		Peers:          c.connectedPeers,
		StateFile:      filepath.Join(cfg.MetadataDir, ClusterStateFile),
		RF:             cfg.ReplicationFactor,
		Role:           role,
		Hostname:       hostnameOf(cfg),
		Retire:         cfg.Decommission,
		Replaces:       cfg.Replaces,
		GossipInterval: cfg.RPC.GossipInterval.D(),
		Logger:         opts.Logger,
	})
	if err != nil {
		return c, fmt.Errorf("cluster state (%s): %w", filepath.Join(cfg.MetadataDir, ClusterStateFile), err)
	}
	c.newest = newestOf(c.mgr.View())
	c.rpc.Handle(nodeService, "info", c.handleInfo)
	c.repl, err = table.NewReplicator(table.ReplicatorConfig{
		RPC:        c.rpc,
		View:       c.mgr.View,
		MarkSynced: c.mgr.MarkSynced,
		Logger:     opts.Logger,
		Registerer: reg,
	})
	if err != nil {
		return c, fmt.Errorf("table replication: %w", err)
	}
	c.rtt = &rttCache{c: c}
	if role.Gateway() {
		c.log.Info("declared role: gateway (no capacity: stores nothing)", "zone", cfg.Zone)
	} else {
		c.log.Info("declared role", "zone", cfg.Zone, "capacity", cfg.Capacity.String(), "tags", cfg.Tags)
	}
	return c, nil
}

// natConfig turns [nat] into the p2p host's port mapping: the RPC port is
// always mapped when upnp is on; "s3" and "web" in expose map those listeners'
// configured ports (a port 0 listener cannot be mapped ahead and is skipped).
func natConfig(cfg config.Config, log *slog.Logger) (*natpunch.Config, []p2p.ExposedPort) {
	if !cfg.NAT.UPnP {
		return nil, nil
	}
	var expose []p2p.ExposedPort
	for _, e := range cfg.NAT.Expose {
		var listen string
		switch e {
		case "s3":
			listen = cfg.S3.Listen
		case "web":
			listen = cfg.Web.Listen
		default:
			continue // "rpc": the host maps its own listen ports
		}
		_, port, err := net.SplitHostPort(listen)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p <= 0 || p > 65535 {
			log.Warn("nat.expose: listener has no fixed port; not mapped", "service", e, "listen", listen)
			continue
		}
		expose = append(expose, p2p.ExposedPort{Service: e, Port: uint16(p)})
	}
	return &natpunch.Config{}, expose
}

func hostnameOf(cfg config.Config) string {
	if cfg.Hostname != "" {
		return cfg.Hostname
	}
	h, _ := os.Hostname()
	return h
}

func newestOf(v cluster.View) *layout.Layout {
	if len(v.Layouts) == 0 {
		return nil
	}
	return v.Layouts[len(v.Layouts)-1]
}

// connectedPeers are the members with an open connection (the private
// network key guarantees every connected peer is a member).
func (c *clusterNode) connectedPeers() []peer.ID {
	return c.host.Libp2p().Network().Peers()
}

// enableBlocks makes the store's blocks replicated; call it before serving.
func (c *clusterNode) enableBlocks(bs *block.Store, log *slog.Logger, reg prometheus.Registerer) error {
	err := bs.EnableReplication(block.ReplicationConfig{
		RPC:        c.rpc,
		View:       c.mgr.View,
		RTT:        c.rtt.rtt,
		LayoutPoll: min(2*time.Second, c.cfg.RPC.GossipInterval.D()),
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("block replication: %w", err)
	}
	return nil
}

// start runs discovery, liveness, gossip, table replication and the layout
// watcher until stop.
func (c *clusterNode) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	run := func(name string, f func(context.Context) error) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("cluster task stopped", "task", name, "err", err)
			}
		}()
	}
	run("p2p", c.host.Run)
	run("gossip", c.mgr.Run)
	run("tables", c.repl.Run)
	run("layout-watch", c.watchLayouts)
}

// watchLayouts remembers the last layout change for `entrepot layout show`.
func (c *clusterNode) watchLayouts(ctx context.Context) error {
	w := c.mgr.Watch()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w:
		}
		n := newestOf(c.mgr.View())
		c.mu.Lock()
		if n != nil && (c.newest == nil || n.ID() != c.newest.ID()) {
			if c.newest != nil && n.Version > c.newest.Version {
				c.lastChange = &layoutChange{from: c.newest.Version, to: n.Version, moves: layout.Diff(c.newest, n)}
			} else if c.newest == nil {
				c.lastChange = &layoutChange{to: n.Version, moves: layout.Diff(nil, n)}
			}
			c.newest = n
		}
		c.mu.Unlock()
	}
}

func (c *clusterNode) localInfo() nodeInfo {
	ni := nodeInfo{Hostname: hostnameOf(c.cfg), Version: c.version}
	var fs unix.Statfs_t
	if err := unix.Statfs(c.cfg.DataDir, &fs); err == nil {
		ni.DataAvail = int64(fs.Bavail) * int64(fs.Bsize)
		ni.DataTotal = int64(fs.Blocks) * int64(fs.Bsize)
	}
	return ni
}

func (c *clusterNode) handleInfo(context.Context, peer.ID, []byte) ([]byte, error) {
	b, err := json.Marshal(c.localInfo())
	if err != nil {
		return nil, err
	}
	return append([]byte{nodeInfoVersion}, b...), nil
}

// peerInfo asks a member for its info.
func (c *clusterNode) peerInfo(ctx context.Context, id peer.ID) (nodeInfo, error) {
	out, err := c.rpc.Call(ctx, id, nodeService, "info", nil)
	if err != nil {
		return nodeInfo{}, err
	}
	if len(out) < 1 || out[0] != nodeInfoVersion {
		return nodeInfo{}, errors.New("node info: unknown format")
	}
	var ni nodeInfo
	if err := json.Unmarshal(out[1:], &ni); err != nil {
		return nodeInfo{}, fmt.Errorf("node info: %w", err)
	}
	return ni, nil
}

// stop ends the background tasks (discovery, gossip, table replication):
// call it before closing the store they use.
func (c *clusterNode) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
}

// close stops the background tasks and closes the host.
func (c *clusterNode) close() error {
	c.stop()
	if c.host == nil {
		return nil
	}
	if err := c.host.Close(); err != nil {
		return fmt.Errorf("close p2p host: %w", err)
	}
	return nil
}

// serviceUnavailable wraps the S3 handler: while no layout exists, S3
// requests get 503 ServiceUnavailable (the node cannot place anything yet).
func (c *clusterNode) serviceUnavailable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.ready.Load() || c.mgr.View().Ready() {
			c.ready.Store(true)
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method == http.MethodHead {
			return
		}
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<Error><Code>ServiceUnavailable</Code><Message>The cluster has no layout yet: `+
			`fewer storage nodes than the replication factor have declared a role.</Message></Error>`)
	})
}
