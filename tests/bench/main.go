package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Config holds the bench flags.
type Config struct {
	Endpoint, Region, AccessKey, SecretKey, Bucket string
	Workers                                        int
	Duration                                       time.Duration
	Sizes                                          []int
	MixedSize                                      int
	Ops                                            []string
	MaxOps                                         int
	LatencySamples                                 int
	PayloadSigning                                 string
	StartDev                                       bool
	Bin, DataDir                                   string
	JSONOut                                        string
	Keep                                           bool
}

var allOps = []string{"put", "get", "mixed", "latency"}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	var sizes, mixed, ops string
	fs.StringVar(&c.Endpoint, "endpoint", "", "S3 endpoint URL (required unless -start-dev)")
	fs.StringVar(&c.Region, "region", "us-east-1", "signing region")
	fs.StringVar(&c.AccessKey, "access-key", "", "access key id (required unless -start-dev)")
	fs.StringVar(&c.SecretKey, "secret-key", "", "secret access key (required unless -start-dev)")
	fs.StringVar(&c.Bucket, "bucket", "entrepot-bench", "bucket to use (created when missing)")
	fs.IntVar(&c.Workers, "workers", 16, "parallel workers for the throughput phases")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "length of each throughput phase (and bound of the latency phase)")
	fs.StringVar(&sizes, "sizes", "1MiB,4KiB", "object sizes for the put and get phases")
	fs.StringVar(&mixed, "mixed-size", "4KiB", "object size of the mixed phase")
	fs.StringVar(&ops, "ops", strings.Join(allOps, ","), "phases to run: put,get,mixed,latency")
	fs.IntVar(&c.MaxOps, "max-ops", 2_000_000, "upper bound of operations per phase")
	fs.IntVar(&c.LatencySamples, "latency-samples", 200, "requests per operation in the latency phase")
	fs.StringVar(&c.PayloadSigning, "payload-signing", "unsigned", "unsigned (UNSIGNED-PAYLOAD, no checksum) or sha256 (signed payload hash)")
	fs.BoolVar(&c.StartDev, "start-dev", false, "start `entrepot server --dev` on free loopback ports and report its RSS, CPU and start-up time")
	fs.StringVar(&c.Bin, "bin", "", "entrepot binary for -start-dev (default: $ENTREPOT_BIN, else go build ./cli/entrepot)")
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory for -start-dev (default: a temporary directory, removed afterwards)")
	fs.StringVar(&c.JSONOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.Keep, "keep", false, "keep the objects written (default: delete them at the end)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := parseSize(s)
		if err != nil {
			return Config{}, fmt.Errorf("-sizes: %w", err)
		}
		c.Sizes = append(c.Sizes, n)
	}
	n, err := parseSize(mixed)
	if err != nil {
		return Config{}, fmt.Errorf("-mixed-size: %w", err)
	}
	c.MixedSize = n
	for _, o := range strings.Split(ops, ",") {
		o = strings.TrimSpace(o)
		if !slices.Contains(allOps, o) {
			return Config{}, fmt.Errorf("-ops: unknown phase %q (want %s)", o, strings.Join(allOps, ","))
		}
		c.Ops = append(c.Ops, o)
	}
	switch {
	case c.Workers < 1 || c.Workers > 1024:
		return Config{}, fmt.Errorf("-workers %d: want 1..1024", c.Workers)
	case c.Duration <= 0 || c.Duration > time.Hour:
		return Config{}, fmt.Errorf("-duration %s: want (0, 1h]", c.Duration)
	case c.MaxOps < 1, c.LatencySamples < 1:
		return Config{}, errors.New("-max-ops and -latency-samples must be positive")
	case c.PayloadSigning != "unsigned" && c.PayloadSigning != "sha256":
		return Config{}, fmt.Errorf("-payload-signing %q: want unsigned or sha256", c.PayloadSigning)
	case !c.StartDev && (c.Endpoint == "" || c.AccessKey == "" || c.SecretKey == ""):
		return Config{}, errors.New("-endpoint, -access-key and -secret-key are required unless -start-dev")
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := run(ctx, cfg, os.Stdout, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if cfg.JSONOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(cfg.JSONOut, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench: write json:", err)
			os.Exit(1)
		}
	}
}
