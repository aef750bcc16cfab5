package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSizes(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []int
		err  bool
	}{
		{name: "defaults", in: "1MiB,4KiB", want: []int{1 << 20, 4 << 10}},
		{name: "bytes", in: "4096", want: []int{4096}},
		{name: "spaces", in: " 2MiB , 1 ", want: []int{2 << 20, 1}},
		{name: "max", in: "64MiB", want: []int{64 << 20}},
		{name: "too big", in: "65MiB", err: true},
		{name: "too big bytes", in: "67108865", err: true},
		{name: "zero", in: "0", err: true},
		{name: "negative", in: "-1KiB", err: true},
		{name: "empty", in: "", err: true},
		{name: "empty item", in: "1KiB,", err: true},
		{name: "unit only", in: "MiB", err: true},
		{name: "unknown unit", in: "1GiB", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSizes(tc.in)
			if tc.err {
				if !errors.Is(err, errUsage) {
					t.Fatalf("parseSizes(%q) = %v, %v; want errUsage", tc.in, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("parseSizes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseSizes(f *testing.F) {
	for _, s := range []string{"1MiB,4KiB", "4096", " 2MiB , 1 ", "64MiB", "65MiB", "0", "-1KiB", "", "1KiB,", "MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSizes(s)
		if err != nil {
			if !errors.Is(err, errUsage) {
				t.Fatalf("error %v does not wrap errUsage", err)
			}
			return
		}
		if len(got) != strings.Count(s, ",")+1 {
			t.Fatalf("parseSizes(%q) = %v: one size per item", s, got)
		}
		for _, n := range got {
			if n <= 0 || n > 64<<20 {
				t.Fatalf("parseSizes(%q) gave %d", s, n)
			}
		}
	})
}

func TestParseFlags(t *testing.T) {
	base := []string{"-endpoint", "http://127.0.0.1:1", "-access-key", "k", "-secret-key", "s"}
	cases := []struct {
		name string
		args []string
		ok   bool
	}{
		{name: "minimal", args: base, ok: true},
		{name: "no endpoint", args: base[2:]},
		{name: "workers zero", args: append(slices.Clone(base), "-workers", "0")},
		{name: "duration zero", args: append(slices.Clone(base), "-duration", "0s")},
		{name: "stamp too small", args: append(slices.Clone(base), "-stamp-every", "8")},
		{name: "bad sizes", args: append(slices.Clone(base), "-sizes", "x")},
		{name: "max ops zero", args: append(slices.Clone(base), "-max-ops", "0")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if tc.ok != (err == nil) {
				t.Fatalf("parseFlags(%v) = %+v, %v; want ok=%v", tc.args, c, err, tc.ok)
			}
			if tc.ok && (c.workers != 16 || c.duration != 20*time.Second || len(c.sizes) != 2) {
				t.Fatalf("defaults not applied: %+v", c)
			}
		})
	}
}

// TestStampUnique checks that no two stampEvery chunks, of one body or of
// two, are equal (on a constant base, the worst case), which is what
// defeats block-level deduplication.
func TestStampUnique(t *testing.T) {
	cases := []struct {
		name         string
		size, every  int
		worker, seqs int
	}{
		{name: "1MiB in 64KiB chunks", size: 1 << 20, every: 64 << 10, worker: 3, seqs: 4},
		{name: "4KiB, one chunk", size: 4 << 10, every: 64 << 10, worker: 2, seqs: 3},
		{name: "uneven tail", size: 100_000, every: 30_000, worker: 2, seqs: 3},
		{name: "tiny body", size: 10, every: 20, worker: 2, seqs: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := bytes.Repeat([]byte{0xAB}, tc.size)
			seen := map[string]string{}
			for w := range tc.worker {
				body := slices.Clone(base)
				for s := range tc.seqs {
					stamp(body, tc.every, uint32(w), uint64(s), 7)
					if len(body) != tc.size {
						t.Fatalf("stamp changed the length to %d", len(body))
					}
					for off := 0; off < tc.size; off += tc.every {
						chunk := string(body[off:min(off+tc.every, tc.size)])
						id := string(rune('a'+w)) + string(rune('0'+s)) + "@" + strconv.Itoa(off)
						if prev, dup := seen[chunk]; dup {
							t.Fatalf("chunk at %d of body %s equals one of body %s", off, id, prev)
						}
						seen[chunk] = id
					}
				}
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name          string
		lat           []time.Duration
		elapsed       time.Duration
		p50, p99      time.Duration
		opsPerSec, mb float64
	}{
		{name: "none", elapsed: time.Second},
		{name: "one", lat: []time.Duration{5 * ms}, elapsed: time.Second, p50: 5 * ms, p99: 5 * ms, opsPerSec: 1, mb: 1e6 / 1e6},
		{name: "hundred", lat: func() []time.Duration {
			var v []time.Duration
			for i := 100; i >= 1; i-- {
				v = append(v, time.Duration(i)*ms)
			}
			return v
		}(), elapsed: 2 * time.Second, p50: 50 * ms, p99: 99 * ms, opsPerSec: 50, mb: 100 * 1e6 / 1e6 / 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := summarize("put", "PUT", 1_000_000, 4, tc.lat, 1, tc.elapsed)
			if s.P50 != tc.p50 || s.P99 != tc.p99 || s.OpsPerSec != tc.opsPerSec || s.MBPerSec != tc.mb || s.Errors != 1 || s.Ops != len(tc.lat) {
				t.Fatalf("summarize = %+v; want p50 %v p99 %v ops/s %v MB/s %v", s, tc.p50, tc.p99, tc.opsPerSec, tc.mb)
			}
		})
	}
}

// TestRunAgainstDev runs both phases briefly against a real entrepot dev
// server and checks that every PUT stored a distinct object.
func TestRunAgainstDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a real entrepot server")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := os.Getenv("ENTREPOT_BIN") // a prebuilt binary, else build one
	if bin == "" {
		bin = filepath.Join(dir, "entrepot")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/entrepot/entrepot/cli/entrepot")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build entrepot: %v\n%s", err, out)
		}
	}
	port := freePort(t)
	data := filepath.Join(dir, "data")
	srv := exec.CommandContext(ctx, bin, "server", "--dev", "--data-dir", data,
		"--s3-listen", "127.0.0.1:"+port, "--admin-listen", "127.0.0.1:"+freePort(t))
	srv.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var creds struct {
		Endpoint        string `json:"endpoint"`
		Region          string `json:"region"`
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(data, "dev-credentials.json"))
		if err == nil && json.Unmarshal(b, &creds) == nil && creds.SecretAccessKey != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dev credentials after 30 s; server output:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := parseFlags([]string{"-endpoint", creds.Endpoint, "-region", creds.Region, "-access-key", creds.AccessKeyID,
		"-secret-key", creds.SecretAccessKey, "-workers", "2", "-duration", "300ms", "-sizes", "128KiB,4KiB", "-stamp-every", "4096"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := run(ctx, c, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s\nserver:\n%s", err, out.String(), log.String())
	}
	if len(res) != 4 {
		t.Fatalf("got %d results, want 4:\n%s", len(res), out.String())
	}
	for _, s := range res {
		if s.Ops == 0 || s.Errors != 0 || s.P50 <= 0 || s.P99 < s.P50 {
			t.Errorf("%s %d: %+v", s.Op, s.Size, s)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

func TestSummaryJSON(t *testing.T) {
	s := summarize("put", "PUT", 4096, 2, []time.Duration{3 * time.Millisecond, time.Millisecond}, 1, time.Second)
	s.FirstErr = "boom"
	b, err := json.Marshal(s)
	want := `{"phase":"put","op":"PUT","size":4096,"workers":2,"ops":2,"errors":1,"bytes":8192,"elapsed_ns":1000000000,` +
		`"ops_per_sec":2,"mb_per_sec":0.008192,"mean_ns":2000000,"p50_ns":1000000,"p99_ns":3000000,"first_error":"boom"}`
	if err != nil || string(b) != want {
		t.Fatalf("JSON %s (%v), want %s", b, err, want)
	}
}
