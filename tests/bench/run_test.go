package main

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/harness"
)

// TestRunStartDev runs every phase briefly against a real dev server, so
// the tool keeps working as the server changes.
func TestRunStartDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real entrepot server")
	}
	cfg, err := parseFlags([]string{"-start-dev", "-bin", harness.Bin(t), "-duration", "400ms", "-workers", "2",
		"-sizes", "64KiB,4KiB", "-latency-samples", "5"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg, &out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := map[string]bool{
		"put/PUT/65536": false, "get/GET/65536": false, "put/PUT/4096": false, "get/GET/4096": false,
		"mixed/PUT/4096": false, "mixed/GET/4096": false,
		"latency/PUT/4096": false, "latency/GET/4096": false, "latency/DELETE/4096": false, "latency/LIST/4096": false, "latency/ListBuckets/4096": false,
	}
	for _, s := range rep.Results {
		key := s.Phase + "/" + s.Op + "/" + strconv.Itoa(s.Size)
		if _, ok := want[key]; !ok {
			t.Errorf("unexpected result %s", key)
			continue
		}
		want[key] = true
		if s.Ops == 0 || s.Errors != 0 || s.P50 <= 0 || s.P99 < s.P50 {
			t.Errorf("%s: ops %d errors %d (%s) p50 %v p99 %v", key, s.Ops, s.Errors, s.FirstErr, s.P50, s.P99)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no result for %s", k)
		}
	}
	srv := rep.Server
	if srv == nil || srv.IdleRSS <= 0 || srv.PeakRSS < srv.IdleRSS || srv.StartToFirstRequest <= 0 || len(srv.Phases) != 6 {
		t.Fatalf("server stats %+v", srv)
	}
	if !strings.Contains(out.String(), "start to first served request") {
		t.Errorf("report lacks the start-up time:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}
