package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var sizeCases = []struct {
	in      string
	want    int
	wantErr bool
}{
	{in: "4KiB", want: 4096},
	{in: "1MiB", want: 1 << 20},
	{in: "1GiB", want: 1 << 30},
	{in: "512B", want: 512},
	{in: "4k", want: 4096},
	{in: "1m", want: 1 << 20},
	{in: "4K", want: 4096},
	{in: " 100 ", want: 100},
	{in: "5GiB", want: 5 << 30},
	{in: "6GiB", wantErr: true},
	{in: "0", wantErr: true},
	{in: "-1KiB", wantErr: true},
	{in: "KiB", wantErr: true},
	{in: "1.5MiB", wantErr: true},
	{in: "", wantErr: true},
}

func TestParseSize(t *testing.T) {
	for _, tc := range sizeCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSize(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseSize(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadSize) {
				t.Fatalf("error %v does not wrap ErrBadSize", err)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, tc := range sizeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n <= 0 || n > 5<<30 {
			t.Fatalf("parseSize(%q) = %d out of range", s, n)
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Fatalf("formatSize(%d) = %q does not parse back: %d %v", n, formatSize(n), back, err)
		}
	})
}

func TestFormatSize(t *testing.T) {
	cases := map[int]string{4096: "4KiB", 1 << 20: "1MiB", 3 << 30: "3GiB", 1000: "1000B", 1536: "1536B"}
	for n, want := range cases {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{4 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	s := summarize("put", "PUT", 1<<20, 4, lat, 1, 4<<20, 2*time.Second)
	if s.Ops != 4 || s.Errors != 1 || s.OpsPerSec != 2 {
		t.Fatalf("ops %d errors %d ops/s %v", s.Ops, s.Errors, s.OpsPerSec)
	}
	if want := float64(4<<20) / 1e6 / 2; s.MBPerSec != want {
		t.Fatalf("MB/s %v, want %v (MB = 10^6 bytes)", s.MBPerSec, want)
	}
	if s.Mean != 2500*time.Microsecond || s.P50 != 2*time.Millisecond || s.P99 != 4*time.Millisecond || s.Max != 4*time.Millisecond {
		t.Fatalf("mean %v p50 %v p99 %v max %v", s.Mean, s.P50, s.P99, s.Max)
	}
	if lat[0] != 4*time.Millisecond {
		t.Fatal("summarize sorted the caller's slice")
	}
	if z := summarize("get", "GET", 1, 1, nil, 3, 0, 0); z.OpsPerSec != 0 || z.P50 != 0 || z.Errors != 3 {
		t.Fatalf("empty summary %+v", z)
	}
}

var statusCases = []struct {
	name, text, field string
	want              int64
	wantErr           bool
}{
	{name: "rss", text: "Name:\tentrepot\nVmHWM:\t  186468 kB\nVmRSS:\t   25300 kB\n", field: "VmRSS", want: 25300 * 1024},
	{name: "hwm", text: "Name:\tentrepot\nVmHWM:\t  186468 kB\nVmRSS:\t   25300 kB\n", field: "VmHWM", want: 186468 * 1024},
	{name: "absent", text: "Name:\tx\n", field: "VmRSS", wantErr: true},
	{name: "bad unit", text: "VmRSS:\t1 MB\n", field: "VmRSS", wantErr: true},
	{name: "not a number", text: "VmRSS:\tx kB\n", field: "VmRSS", wantErr: true},
}

func TestParseProcStatus(t *testing.T) {
	for _, tc := range statusCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStatus(tc.text, tc.field)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v; want %d, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseProcStatus(f *testing.F) {
	for _, tc := range statusCases {
		f.Add(tc.text, tc.field)
	}
	f.Fuzz(func(t *testing.T, text, field string) {
		if n, err := parseProcStatus(text, field); err == nil && n < 0 {
			t.Fatalf("negative %d", n)
		}
	})
}

var statCases = []struct {
	name, text string
	want       int64
	wantErr    bool
}{
	{name: "plain", text: "123 (entrepot) S 1 123 123 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 99 1 2", want: 325},
	{name: "spaces and parens in comm", text: "9 (a b) c)) R 1 9 9 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 5 1 2", want: 15},
	{name: "truncated", text: "9 (x) R 1 2", wantErr: true},
	{name: "no comm", text: "9 x R", wantErr: true},
}

func TestParseProcStatCPU(t *testing.T) {
	for _, tc := range statCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStatCPU(tc.text)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v; want %d, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseProcStatCPU(f *testing.F) {
	for _, tc := range statCases {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if n, err := parseProcStatCPU(text); err == nil && n < 0 {
			t.Fatalf("negative %d", n)
		}
	})
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "start dev", args: []string{"-start-dev"}},
		{name: "endpoint needs keys", args: []string{"-endpoint", "http://x"}, wantErr: "required"},
		{name: "full", args: []string{"-endpoint", "http://x", "-access-key", "a", "-secret-key", "b", "-sizes", "4KiB", "-ops", "put,get"}},
		{name: "bad op", args: []string{"-start-dev", "-ops", "put,fly"}, wantErr: "unknown phase"},
		{name: "bad size", args: []string{"-start-dev", "-sizes", "1MiB,huge"}, wantErr: "bad size"},
		{name: "bad signing", args: []string{"-start-dev", "-payload-signing", "md5"}, wantErr: "payload-signing"},
		{name: "zero workers", args: []string{"-start-dev", "-workers", "0"}, wantErr: "workers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseFlags(tc.args, &stderr)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSummaryJSON(t *testing.T) {
	s := summarize("put", "PUT", 4096, 2, []time.Duration{3 * time.Millisecond, time.Millisecond}, 1, 8192, time.Second)
	s.FirstErr = "boom"
	b, err := json.Marshal(s)
	want := `{"phase":"put","op":"PUT","size":4096,"workers":2,"ops":2,"errors":1,"bytes":8192,"elapsed_ns":1000000000,` +
		`"ops_per_sec":2,"mb_per_sec":0.008192,"mean_ns":2000000,"p50_ns":1000000,"p99_ns":3000000,"max_ns":3000000,"first_error":"boom"}`
	if err != nil || string(b) != want {
		t.Fatalf("JSON %s (%v), want %s", b, err, want)
	}
}
