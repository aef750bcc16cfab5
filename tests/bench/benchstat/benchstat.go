// Package benchstat computes the figures of one benchmark phase (rates and
// latency percentiles) for tests/bench and tests/s3tests/uniqbench, so both
// report them the same way.
package benchstat

import (
	"cmp"
	"slices"
	"time"
)

// Result is one phase's figures for one operation, with the JSON names both
// benchmarks write (embedded, its fields are the outer struct's own).
type Result struct {
	Phase     string        `json:"phase"`
	Op        string        `json:"op"`
	Size      int           `json:"size"`
	Workers   int           `json:"workers"`
	Ops       int           `json:"ops"`
	Errors    int           `json:"errors"`
	Bytes     int64         `json:"bytes"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	OpsPerSec float64       `json:"ops_per_sec"`
	MBPerSec  float64       `json:"mb_per_sec"`
	Mean      time.Duration `json:"mean_ns"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
}

// Summarize builds the Result of a phase from its successful-op latencies,
// its error count and the bytes it moved over elapsed wall time; Latency
// adds the maximum, which not every report carries.
func Summarize(phase, op string, size, workers int, lat []time.Duration, errs int, bytes int64, elapsed time.Duration) (Result, Latency) {
	l := Latencies(lat)
	r := Result{Phase: phase, Op: op, Size: size, Workers: workers, Ops: len(lat), Errors: errs, Bytes: bytes, Elapsed: elapsed,
		Mean: l.Mean, P50: l.P50, P99: l.P99}
	r.OpsPerSec, r.MBPerSec = Rates(len(lat), bytes, elapsed)
	return r, l
}

// Percentile returns the nearest-rank percentile p (0 < p <= 100) of sorted
// latencies, 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Latency is the mean, nearest-rank p50 and p99, and maximum of a phase's
// latencies.
type Latency struct {
	Mean, P50, P99, Max time.Duration
}

// Latencies summarises lat (zero for none); lat itself is left unsorted.
func Latencies(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	sorted := slices.Clone(lat)
	slices.SortFunc(sorted, cmp.Compare)
	var total time.Duration
	for _, d := range sorted {
		total += d
	}
	return Latency{
		Mean: total / time.Duration(len(sorted)),
		P50:  Percentile(sorted, 50),
		P99:  Percentile(sorted, 99),
		Max:  sorted[len(sorted)-1],
	}
}

// Rates returns operations per second and MB per second (MB = 10^6 bytes)
// over elapsed; both are 0 when elapsed is not positive.
func Rates(ops int, bytes int64, elapsed time.Duration) (opsPerSec, mbPerSec float64) {
	if elapsed <= 0 {
		return 0, 0
	}
	return float64(ops) / elapsed.Seconds(), float64(bytes) / 1e6 / elapsed.Seconds()
}
