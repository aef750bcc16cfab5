package block

import "context"

// Status is the block store's part of `entrepot status`.
type Status struct {
	Replicating bool `json:"replicating"`
	// ResyncQueue counts persistent resync entries; ErroredBlocks those whose last try failed.
	ResyncQueue   int64 `json:"resync_queue_length"`
	ErroredBlocks int64 `json:"errored_blocks"`
	// BufferUsed / BufferMax: memory of writes still sending to slow replicas.
	BufferUsed int64           `json:"buffer_used_bytes"`
	BufferMax  int64           `json:"buffer_max_bytes"`
	Rebalance  RebalanceStatus `json:"rebalance"`
	// Pace is the adaptive pacing of resync and rebalance transfers.
	Pace  PaceStatus  `json:"pace"`
	Scrub ScrubStatus `json:"scrub"`
}

// Status reports replication, rebalance and scrub progress.
func (s *Store) Status() Status {
	r := s.repl.Load()
	if r == nil {
		return Status{Scrub: s.localScrub.status()}
	}
	q := r.queueLen.Load()
	return Status{
		Replicating: true, ResyncQueue: q, ErroredBlocks: r.errored.Load(),
		BufferUsed: r.budget.used(), BufferMax: r.cfg.BufferMax,
		Rebalance: r.rebal.status(q), Pace: r.pace.status(), Scrub: r.scrub.status(),
	}
}

// ScrubNow runs a full scrub at once, without tranquility (admin
// `repair blocks`); it returns when done.
func (s *Store) ScrubNow(ctx context.Context) (ScrubReport, error) {
	return s.Scrub(ctx, 0)
}
