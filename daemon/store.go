package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entrepot/entrepot/daemon/config"
	"github.com/entrepot/entrepot/daemon/model"
	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/daemon/table"
)

// NodeKeyFile is the node's identity key in metadata_dir. Its libp2p peer id
// is the node id, so a single node keeps its id when it joins a cluster.
const NodeKeyFile = "node_key"

// nodeID loads or creates the node identity and returns its peer id.
func nodeID(metadataDir string) (string, error) {
	if err := os.MkdirAll(metadataDir, 0o700); err != nil {
		return "", fmt.Errorf("create metadata_dir: %w", err)
	}
	k, err := p2p.LoadOrCreateIdentity(filepath.Join(metadataDir, NodeKeyFile))
	if err != nil {
		return "", fmt.Errorf("node identity: %w", err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("node identity: %w", err)
	}
	return id.String(), nil
}

// openStore opens the storage layer with the config's values.
// repl is nil for a node running alone.
func openStore(ctx context.Context, cfg config.Config, opts Options, repl *table.Replicator) (*model.Store, error) {
	id, err := nodeID(cfg.MetadataDir)
	if err != nil {
		return nil, err
	}
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	inline := cfg.InlineThreshold
	if inline == 0 {
		inline = -1 // config: 0 = never inline; model: negative disables inlining
	}
	gcDelay := cfg.GCDelay.D()
	if gcDelay == 0 {
		gcDelay = time.Nanosecond // config: 0 = delete at once; model: 0 = its default
	}
	st, err := model.Open(ctx, model.Config{
		MetadataDir:      cfg.MetadataDir,
		DataDir:          cfg.DataDir,
		BlockSize:        int(cfg.BlockSize),
		CompressionLevel: cfg.CompressionLevel,
		InlineThreshold:  inline,
		GCDelay:          gcDelay,
		NoFsync:          !cfg.Fsync,
		NodeID:           id,
		Hostname:         host,
		Zone:             cfg.Zone,
		Capacity:         int64(cfg.Capacity),
		Version:          opts.Version,
		Replicator:       repl,
		Logger:           opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open storage (metadata_dir %s, data_dir %s): %w", cfg.MetadataDir, cfg.DataDir, err)
	}
	return st, nil
}
