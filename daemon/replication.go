package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/table"
)

// tableRepl adapts the table replicator to the admin endpoints.
type tableRepl struct{ r *table.Replicator }

func (t tableRepl) statusJSON() ([]byte, error) { return json.Marshal(t.r.Status()) }

func (t tableRepl) merkleRoots(name string) (map[uint8][32]byte, error) {
	roots, err := t.r.MerkleRoots(name)
	if errors.Is(err, table.ErrUnknownTable) {
		return nil, fmt.Errorf("%w: %v", admin.ErrUnknownTable, err)
	}
	return roots, err
}

func (t tableRepl) syncNow(ctx context.Context) error {
	err := t.r.SyncNow(ctx)
	if errors.Is(err, table.ErrUnavailable) {
		return fmt.Errorf("%w: %v", admin.ErrUnavailable, err)
	}
	return err
}

// rttCache answers block reads' RTT lookups from the host's peer list,
// refreshed at most once a second.
type rttCache struct {
	c    *clusterNode
	mu   sync.Mutex
	at   time.Time
	rtts map[string]time.Duration
}

func (r *rttCache) rtt(id string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.at) > time.Second {
		r.rtts = map[string]time.Duration{}
		for _, p := range r.c.host.Peers() {
			if p.Up {
				r.rtts[p.ID] = p.RTT
			}
		}
		r.at = time.Now()
	}
	if d, ok := r.rtts[id]; ok {
		return d
	}
	return time.Hour
}

// blockRepl adapts the block store to the admin endpoints.
type blockRepl struct{ s *block.Store }

func (b blockRepl) statusJSON() ([]byte, error) { return json.Marshal(b.s.Status()) }

func (b blockRepl) rebalance() admin.RebalanceStatus {
	st := b.s.Status()
	return admin.RebalanceStatus{Active: st.Rebalance.Active, QueueLength: st.ResyncQueue, Errored: st.ErroredBlocks,
		Progress: st.Rebalance.Progress, BytesMoved: st.Rebalance.BytesDone, ETA: st.Rebalance.ETA}
}

func (b blockRepl) scrub(ctx context.Context) (admin.ScrubResult, error) {
	r, err := b.s.ScrubNow(ctx)
	if err != nil {
		return admin.ScrubResult{}, err
	}
	return admin.ScrubResult{Checked: r.Checked, Missing: r.Missing, Corrupt: r.Corrupt, Repaired: r.Repaired}, nil
}
