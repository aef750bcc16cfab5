package block

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// scrubStateFile holds the scrub schedule in the data directory.
const scrubStateFile = "scrub-state.json"

// ScrubReport is the outcome of one scrub.
type ScrubReport struct {
	Checked  int64 `json:"checked"`
	Missing  int64 `json:"missing"`
	Corrupt  int64 `json:"corrupt"`
	Repaired int64 `json:"repaired"`
	Bytes    int64 `json:"bytes"`
}

// ScrubStatus is the scrub schedule and the progress of a running one.
type ScrubStatus struct {
	Running  bool        `json:"running"`
	Checked  int64       `json:"checked"`
	Total    int64       `json:"total"`
	Progress float64     `json:"progress"`
	Last     ScrubReport `json:"last"`
	LastEnd  time.Time   `json:"last_end,omitzero"`
	Next     time.Time   `json:"next,omitzero"`
}

type scrubState struct {
	run sync.Mutex // one scrub at a time

	mu      sync.Mutex
	running bool
	checked int64
	total   int64
	saved   scrubFile
}

type scrubFile struct {
	Next    time.Time   `json:"next"`
	LastEnd time.Time   `json:"last_end"`
	Last    ScrubReport `json:"last"`
}

func (s *Store) loadScrubFile() scrubFile {
	var f scrubFile
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, scrubStateFile))
	if err == nil {
		_ = json.Unmarshal(b, &f)
	}
	return f
}

func (s *Store) saveScrubFile(f scrubFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	p := filepath.Join(s.cfg.Dir, scrubStateFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save scrub state: %w", err)
	}
	return os.Rename(tmp, p)
}

// Scrub re-hashes (SHA-256) every block this node references and repairs
// missing or corrupt ones from other replicas when replication is on.
// tranquility > 0 sleeps that many times the time spent on each block.
// Only one scrub runs at a time; a second call waits for the first.
func (s *Store) Scrub(ctx context.Context, tranquility int) (ScrubReport, error) {
	r := s.repl.Load()
	var st *scrubState
	if r != nil {
		st = &r.scrub
	} else {
		st = &s.localScrub
	}
	st.run.Lock()
	defer st.run.Unlock()
	var total int64
	if n, _, _, err := s.Stats(ctx); err == nil {
		total = n
	}
	st.mu.Lock()
	st.running, st.checked, st.total = true, 0, total
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		st.running = false
		st.mu.Unlock()
	}()
	var rep ScrubReport
	var last []byte
	for {
		page, next, err := s.rcPage(last, 256)
		if err != nil {
			return rep, err
		}
		for _, e := range page {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			start := time.Now()
			s.scrubOne(ctx, r, e, &rep)
			st.mu.Lock()
			st.checked++
			st.mu.Unlock()
			if tranquility > 0 {
				t := time.NewTimer(time.Since(start) * time.Duration(tranquility))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return rep, ctx.Err()
				}
			}
		}
		if next == nil {
			break
		}
		last = next
	}
	if rep.Corrupt > 0 || rep.Missing > 0 {
		s.log.Warn("scrub found damaged blocks", "checked", rep.Checked, "missing", rep.Missing, "corrupt", rep.Corrupt, "repaired", rep.Repaired)
	} else {
		s.log.Info("scrub done", "checked", rep.Checked, "bytes", rep.Bytes)
	}
	return rep, nil
}

func (s *Store) scrubOne(ctx context.Context, r *repl, e rcEntry, rep *ScrubReport) {
	h := e.h
	unpin := s.Pin(h)
	defer unpin()
	_, size, err := s.stat(h)
	if errors.Is(err, ErrNotFound) {
		if e.rc.count == 0 {
			return // unreferenced and already gone
		}
		if r != nil && !r.owns(r.cfg.View(), h) {
			return // not ours to hold
		}
		rep.Checked++
		rep.Missing++
	} else {
		rep.Checked++
		rep.Bytes += size
		err = s.Verify(ctx, h)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrCorrupt) {
			s.log.Warn("scrub block", "hash", h.String(), "err", err)
			return
		}
		rep.Corrupt++
		s.log.Warn("scrub: corrupt block", "hash", h.String())
		if r == nil {
			return // single node: keep the file for forensics
		}
		s.removeFiles(h)
	}
	if r == nil {
		return
	}
	data, err := r.fetch(ctx, h, nil)
	if err != nil {
		s.log.Warn("scrub: block not repaired", "hash", h.String(), "err", err)
		r.enqueue(h, r.cfg.ResyncRetry)
		return
	}
	defer s.PutBuffer(data)
	if _, err := s.storeReplica(h, data); err != nil {
		s.log.Warn("scrub: block not repaired", "hash", h.String(), "err", err)
		return
	}
	rep.Repaired++
}

// runScrub runs the periodic scrub: ScrubInterval plus up to ScrubJitter
// after the previous one (the schedule survives restarts).
func (r *repl) runScrub(ctx context.Context) {
	if r.cfg.ScrubInterval < 0 {
		return
	}
	f := r.s.loadScrubFile()
	r.scrub.mu.Lock()
	r.scrub.saved = f
	r.scrub.mu.Unlock()
	next := func() time.Time { return time.Now().Add(r.cfg.ScrubInterval + jitter(r.cfg.ScrubJitter)) }
	if f.Next.IsZero() {
		f.Next = next()
		r.saveScrub(f)
	}
	for {
		wait := time.Until(f.Next)
		if wait > time.Hour {
			wait = time.Hour
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if time.Now().Before(f.Next) {
			continue
		}
		rep, err := r.s.Scrub(ctx, r.cfg.ScrubTranquility)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Warn("scrub", "err", err)
		}
		f = scrubFile{Next: next(), LastEnd: time.Now(), Last: rep}
		r.saveScrub(f)
	}
}

func (r *repl) saveScrub(f scrubFile) {
	r.scrub.mu.Lock()
	r.scrub.saved = f
	r.scrub.mu.Unlock()
	if err := r.s.saveScrubFile(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("save scrub state", "err", err)
	}
}

func (st *scrubState) status() ScrubStatus {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := ScrubStatus{Running: st.running, Checked: st.checked, Total: st.total, Last: st.saved.Last, LastEnd: st.saved.LastEnd, Next: st.saved.Next}
	if st.total > 0 {
		out.Progress = min(float64(st.checked)/float64(st.total), 1)
	}
	return out
}
