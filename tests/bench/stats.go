package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/entrepot/entrepot/tests/bench/benchstat"
)

// ErrBadSize reports a size flag that does not parse.
var ErrBadSize = errors.New("bad size")

// parseSize parses "4KiB", "1MiB", "1GiB", "512B", "4k", "1m" or a plain
// byte count. Sizes must be positive and at most 5 GiB.
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int
	}{
		{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10},
		{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
	}
	mult := 1
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (5<<30)/mult {
		return 0, fmt.Errorf("%w: %q", ErrBadSize, s)
	}
	return n * mult, nil
}

// formatSize prints a byte count the way parseSize reads it.
func formatSize(n int) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// Summary is the result of one phase for one operation.
type Summary struct {
	benchstat.Result
	Max      time.Duration `json:"max_ns"`
	FirstErr string        `json:"first_error,omitempty"`
}

// summarize builds a Summary from successful-op latencies, errors and
// bytes moved over elapsed wall time.
func summarize(phase, op string, size, workers int, lat []time.Duration, errs int, bytes int64, elapsed time.Duration) Summary {
	r, l := benchstat.Summarize(phase, op, size, workers, lat, errs, bytes, elapsed)
	return Summary{Result: r, Max: l.Max}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// tableHeader and row print summaries as an aligned text table.
const tableHeader = "%-8s %-11s %6s %4s %8s %7s %10s %9s %8s %8s %8s\n"

func printHeader(w func(string, ...any)) {
	w(tableHeader, "phase", "op", "size", "wrk", "ops", "errors", "ops/s", "MB/s", "mean ms", "p50 ms", "p99 ms")
}

func printRow(w func(string, ...any), s Summary) {
	w(tableHeader, s.Phase, s.Op, formatSize(s.Size), strconv.Itoa(s.Workers), strconv.Itoa(s.Ops), strconv.Itoa(s.Errors),
		fmt.Sprintf("%.1f", s.OpsPerSec), fmt.Sprintf("%.1f", s.MBPerSec), ms(s.Mean), ms(s.P50), ms(s.P99))
}

// parseProcStatus reads a field such as "VmRSS" or "VmHWM" (in kB) from
// the text of /proc/<pid>/status and returns it in bytes.
func parseProcStatus(text, field string) (int64, error) {
	for line := range strings.SplitSeq(text, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse %s: unexpected %q", field, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("parse %s: %q", field, line)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("parse %s: field absent", field)
}

// parseProcStatCPU returns utime+stime in clock ticks from the text of
// /proc/<pid>/stat (fields 14 and 15, counted after the ")" that ends the
// command name).
func parseProcStatCPU(text string) (int64, error) {
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no command name")
	}
	f := strings.Fields(text[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || u < 0 || s < 0 {
		return 0, fmt.Errorf("parse stat: utime %q stime %q", f[11], f[12])
	}
	return u + s, nil
}
