package benchstat_test

import (
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/bench/benchstat"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	cases := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{name: "empty", in: nil, p: 50, want: 0},
		{name: "single", in: []time.Duration{7}, p: 99, want: 7},
		{name: "p50 of 1..100", in: lat, p: 50, want: 50 * time.Millisecond},
		{name: "p99 of 1..100", in: lat, p: 99, want: 99 * time.Millisecond},
		{name: "p100 of 1..100", in: lat, p: 100, want: 100 * time.Millisecond},
		{name: "p1 of 1..100", in: lat, p: 1, want: 1 * time.Millisecond},
		{name: "p50 of two", in: []time.Duration{1, 2}, p: 50, want: 1},
		{name: "p99 of two", in: []time.Duration{1, 2}, p: 99, want: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := benchstat.Percentile(tc.in, tc.p); got != tc.want {
				t.Fatalf("percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestLatencies(t *testing.T) {
	const ms = time.Millisecond
	cases := []struct {
		name string
		in   []time.Duration
		want benchstat.Latency
	}{
		{name: "none", in: nil, want: benchstat.Latency{}},
		{name: "one", in: []time.Duration{5 * ms}, want: benchstat.Latency{Mean: 5 * ms, P50: 5 * ms, P99: 5 * ms, Max: 5 * ms}},
		{name: "unsorted four", in: []time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms},
			want: benchstat.Latency{Mean: 2500 * time.Microsecond, P50: 2 * ms, P99: 4 * ms, Max: 4 * ms}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var first time.Duration
			if len(tc.in) > 0 {
				first = tc.in[0]
			}
			if got := benchstat.Latencies(tc.in); got != tc.want {
				t.Fatalf("Latencies = %+v, want %+v", got, tc.want)
			}
			if len(tc.in) > 0 && tc.in[0] != first {
				t.Fatal("Latencies sorted the caller's slice")
			}
		})
	}
}

func TestRates(t *testing.T) {
	type want struct{ ops, mb float64 }
	cases := map[string]struct {
		ops     int
		bytes   int64
		elapsed time.Duration
		want    want
	}{
		"two seconds":   {4, 4 << 20, 2 * time.Second, want{2, float64(4<<20) / 1e6 / 2}},
		"no time":       {3, 10, 0, want{}},
		"negative time": {3, 10, -time.Second, want{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ops, mb := benchstat.Rates(tc.ops, tc.bytes, tc.elapsed)
			if got := (want{ops, mb}); got != tc.want {
				t.Fatalf("Rates = %+v (ops/s, MB/s), want %+v", got, tc.want)
			}
		})
	}
}
