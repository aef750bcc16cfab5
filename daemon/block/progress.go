package block

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Rebalance progress survives restarts in <dir>/rebalance-progress, a small
// JSON document with a format version, written atomically (temporary file,
// fsync, rename) when a rebalance starts, at most every progressSaveEvery
// while it moves data, and when the store closes.

// rebalanceProgressFile is the progress file's name in the block directory.
const rebalanceProgressFile = "rebalance-progress"

// progressVersion is the progress file's format version.
const progressVersion = 1

// progressSaveEvery bounds how often progress is written while data moves.
const progressSaveEvery = 5 * time.Second

// ErrBadProgress: the progress file is not a progress document this
// version understands.
var ErrBadProgress = errors.New("block: bad rebalance progress file")

// progress is the saved state of the current rebalance.
type progress struct {
	Version int       `json:"v"`
	Layouts string    `json:"layouts"`
	Started time.Time `json:"started"`
	Total   int64     `json:"bytes_total"`
	Blocks  int64     `json:"blocks"`
	Done    int64     `json:"bytes_done"`
	Rate    float64   `json:"rate_bytes_per_sec"`
	Saved   time.Time `json:"saved"`
}

// parseProgress decodes a progress file.
func parseProgress(b []byte) (progress, error) {
	var p progress
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("parse rebalance progress: %w: %v", ErrBadProgress, err)
	}
	if p.Version != progressVersion {
		return p, fmt.Errorf("parse rebalance progress: version %d: %w", p.Version, ErrBadProgress)
	}
	if p.Total < 0 || p.Blocks < 0 || p.Done < 0 || p.Rate < 0 || p.Rate != p.Rate {
		return p, fmt.Errorf("parse rebalance progress: negative figure: %w", ErrBadProgress)
	}
	return p, nil
}

// snapshotLocked returns the state to save and notes the save time; b.mu is held.
func (b *rebalance) snapshotLocked(now time.Time) *progress {
	if b.path == "" {
		return nil
	}
	b.saved = now
	return &progress{Version: progressVersion, Layouts: b.layouts, Started: b.started, Total: b.total,
		Blocks: b.blocks, Done: b.done, Rate: b.rate, Saved: now}
}

// save writes p atomically (nil: nothing to save).
func (b *rebalance) save(p *progress) {
	if p == nil {
		return
	}
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	if err := writeAtomic(b.path, p); err != nil && b.saveErr != nil {
		b.saveErr(err)
	}
}

func writeAtomic(path string, p *progress) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save rebalance progress: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("save rebalance progress: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save rebalance progress: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save rebalance progress: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save rebalance progress: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save rebalance progress: %w", err)
	}
	return nil
}

// flush saves the current state now (at close).
func (b *rebalance) flush() {
	b.mu.Lock()
	p := b.snapshotLocked(b.clock())
	b.mu.Unlock()
	b.save(p)
}

// restore loads the progress file at path, if any, and saves there from
// now on. A missing file is no error.
func (b *rebalance) restore(path string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.path = path
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load rebalance progress: %w", err)
	}
	p, err := parseProgress(data)
	if err != nil {
		return err
	}
	now := b.clock()
	b.layouts, b.started, b.total, b.blocks, b.done, b.rate = p.Layouts, p.Started, p.Total, p.Blocks, p.Done, p.Rate
	b.lastTick, b.tickDone, b.saved = now, 0, now
	return nil
}
