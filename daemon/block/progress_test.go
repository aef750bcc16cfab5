package block

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseProgress(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", `{"v":1,"layouts":"a ","started":"2026-11-27T09:00:00Z","bytes_total":100,"blocks":2,"bytes_done":40,"rate_bytes_per_sec":5}`, true},
		{"future version", `{"v":2,"bytes_total":100}`, false},
		{"no version", `{"bytes_total":100}`, false},
		{"negative done", `{"v":1,"bytes_done":-1}`, false},
		{"negative rate", `{"v":1,"rate_bytes_per_sec":-3}`, false},
		{"not json", `v1 100 40`, false},
		{"empty", ``, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseProgress([]byte(tc.in))
			if tc.ok != (err == nil) {
				t.Fatalf("parse %q: %v", tc.in, err)
			}
			if err != nil && !errors.Is(err, ErrBadProgress) {
				t.Fatalf("error %v is not ErrBadProgress", err)
			}
			if tc.ok && (p.Total != 100 || p.Done != 40 || p.Blocks != 2) {
				t.Fatalf("parsed %+v", p)
			}
		})
	}
}

func FuzzParseProgress(f *testing.F) {
	f.Add([]byte(`{"v":1,"layouts":"a ","started":"2026-11-27T09:00:00Z","bytes_total":100,"blocks":2,"bytes_done":40}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"bytes_done":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseProgress(b)
		if err != nil {
			return
		}
		if p.Version != progressVersion || p.Total < 0 || p.Done < 0 || p.Blocks < 0 || p.Rate < 0 {
			t.Fatalf("accepted %+v", p)
		}
	})
}

// TestProgressSavedPeriodically: progress reaches the file on start, at
// most every progressSaveEvery while data moves, and at flush; a reload
// (a restart) restores it with its rate, so the ETA is known at once.
func TestProgressSavedPeriodically(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	path := filepath.Join(t.TempDir(), rebalanceProgressFile)
	b := &rebalance{now: clk.now}
	if err := b.restore(path); err != nil {
		t.Fatal(err)
	}
	b.saveErr = func(err error) { t.Error(err) }
	b.start("L1 L2 ", 100<<20, 100)
	read := func() progress {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseProgress(data)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := read(); p.Total != 100<<20 || p.Done != 0 || p.Layouts != "L1 L2 " {
		t.Fatalf("after start: %+v", p)
	}
	for range 4 { // 4 MiB in 4 s: no save yet
		clk.advance(time.Second)
		b.add(1 << 20)
	}
	if p := read(); p.Done != 0 {
		t.Fatalf("saved %d done before %v passed", p.Done, progressSaveEvery)
	}
	clk.advance(time.Second)
	b.add(1 << 20)
	if p := read(); p.Done != 5<<20 || p.Rate < 0.9*(1<<20) || p.Rate > 1.1*(1<<20) {
		t.Fatalf("after 5 s: %+v", p)
	}
	b.add(1 << 20)
	b.flush()
	clk.advance(time.Hour) // down for an hour
	b2 := &rebalance{now: clk.now}
	if err := b2.restore(path); err != nil {
		t.Fatal(err)
	}
	st := b2.status(10)
	want := b.status(10)
	if st.BytesDone != 6<<20 || st.BytesTotal != 100<<20 || !st.Started.Equal(want.Started) || !st.Active {
		t.Fatalf("restored %+v, want %+v", st, want)
	}
	// The ETA uses the rate measured before the restart, not the hour down.
	if st.ETA < 80*time.Second || st.ETA > 110*time.Second {
		t.Fatalf("ETA after restart %v, want about 94 MiB at 1 MiB/s", st.ETA)
	}
}

func TestProgressRestoreBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), rebalanceProgressFile)
	if err := os.WriteFile(path, []byte(`{"v":99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &rebalance{}
	if err := b.restore(path); !errors.Is(err, ErrBadProgress) {
		t.Fatalf("restore of a future version: %v", err)
	}
	if st := b.status(1); st.BytesTotal != 0 || st.Active {
		t.Fatalf("state after a bad file: %+v", st)
	}
}

// TestRebalanceProgressSurvivesRestart stops a sender in the middle of a
// capped rebalance and reopens its store: Status shows the same progress,
// an ETA, and the rebalance then completes.
func TestRebalanceProgressSurvivesRestart(t *testing.T) {
	c := newSim(1)
	capped := func(cfg *ReplicationConfig) { cfg.Bandwidth = 2 << 20 }
	a := c.addTweaked(t, "z0", capped)
	c.relayout(t, false)
	var hs []Hash
	for range 24 {
		h := write(t, a, randBlock(t, 256<<10))
		ref(t, a, h)
		hs = append(hs, h)
	}
	b := c.addTweaked(t, "z1", capped)
	c.relayout(t, true)
	c.prune()
	var before RebalanceStatus
	eventually(t, 20*time.Second, "rebalance under way", func() bool {
		before = a.st.Status().Rebalance
		return before.Active && before.BytesDone >= 512<<10
	})
	a.stop()
	a.start(t)
	c.link()
	after := a.st.Status().Rebalance
	if after.BytesTotal != before.BytesTotal || after.BytesDone < before.BytesDone || !after.Started.Equal(before.Started) ||
		after.Layouts != before.Layouts {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	if after.Active && after.ETA <= 0 {
		t.Fatalf("active rebalance after restart without an ETA: %+v", after)
	}
	t.Logf("before stop: %s; after restart: %s", showRebal(before), showRebal(after))
	eventually(t, 60*time.Second, "rebalance done after restart", func() bool {
		for _, h := range hs {
			if _, own := owners(c.view(b.id), h); len(own) == 1 && own[0] == b.id && !has(t, b, h) {
				return false
			}
		}
		return !a.st.Status().Rebalance.Active
	})
	if done := a.st.Status().Rebalance.BytesDone; done <= after.BytesDone {
		t.Fatalf("done %d after completion, %d at restart", done, after.BytesDone)
	}
}

func showRebal(s RebalanceStatus) string {
	return fmt.Sprintf("%d/%d B, %.0f B/s, ETA %v", s.BytesDone, s.BytesTotal, s.RateBps, s.ETA.Round(time.Second))
}
