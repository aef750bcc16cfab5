package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/entrepot/entrepot/tests/bench/benchstat"
)

// config holds the flags.
type config struct {
	endpoint, region, accessKey, secretKey, bucket string
	workers                                        int
	duration                                       time.Duration
	sizes                                          []int
	stampEvery                                     int
	maxOps                                         int
	jsonOut                                        string
}

// summary is one phase's result; field names match tests/bench's JSON.
type summary struct {
	benchstat.Result
	FirstErr string `json:"first_error,omitempty"`
}

// errUsage marks a flag error.
var errUsage = errors.New("usage")

// parseSizes reads a comma-separated list of positive byte counts, each at
// most 64 MiB, with an optional KiB or MiB suffix.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "MiB"):
			mult, f = 1<<20, strings.TrimSuffix(f, "MiB")
		case strings.HasSuffix(f, "KiB"):
			mult, f = 1<<10, strings.TrimSuffix(f, "KiB")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > (64<<20)/mult {
			return nil, fmt.Errorf("size %q: want 1 B .. 64 MiB: %w", f, errUsage)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("uniqbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var sizes string
	fs.StringVar(&c.endpoint, "endpoint", "", "S3 endpoint URL (required)")
	fs.StringVar(&c.region, "region", "us-east-1", "signing region")
	fs.StringVar(&c.accessKey, "access-key", "", "access key id (required)")
	fs.StringVar(&c.secretKey, "secret-key", "", "secret access key (required)")
	fs.StringVar(&c.bucket, "bucket", "uniqbench", "bucket (created when missing)")
	fs.IntVar(&c.workers, "workers", 16, "parallel workers")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "length of each phase")
	fs.StringVar(&sizes, "sizes", "1MiB,4KiB", "object sizes")
	fs.IntVar(&c.stampEvery, "stamp-every", 64<<10, "stamp 20 unique bytes every this many bytes of each body")
	fs.IntVar(&c.maxOps, "max-ops", 1_000_000, "upper bound of operations per phase")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON here")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	var err error
	if c.sizes, err = parseSizes(sizes); err != nil {
		return config{}, fmt.Errorf("-sizes: %w", err)
	}
	switch {
	case c.endpoint == "" || c.accessKey == "" || c.secretKey == "":
		return config{}, fmt.Errorf("-endpoint, -access-key and -secret-key are required: %w", errUsage)
	case c.workers < 1 || c.workers > 1024:
		return config{}, fmt.Errorf("-workers %d: want 1..1024: %w", c.workers, errUsage)
	case c.duration <= 0 || c.duration > time.Hour:
		return config{}, fmt.Errorf("-duration %s: want (0, 1h]: %w", c.duration, errUsage)
	case c.stampEvery < stampLen:
		return config{}, fmt.Errorf("-stamp-every %d: want >= %d: %w", c.stampEvery, stampLen, errUsage)
	case c.maxOps < 1:
		return config{}, fmt.Errorf("-max-ops %d: want >= 1: %w", c.maxOps, errUsage)
	}
	return c, nil
}

// stampLen is the size of the tag stamp writes.
const stampLen = 20

// stamp writes (worker, seq, nonce, chunk index) as stampLen bytes at
// offset 0 and every `every` bytes of p, so no two chunks of `every` bytes,
// in one body or in two, are equal.
func stamp(p []byte, every int, worker uint32, seq uint64, nonce uint32) {
	var tag [stampLen]byte
	binary.LittleEndian.PutUint32(tag[0:], worker)
	binary.LittleEndian.PutUint64(tag[4:], seq)
	binary.LittleEndian.PutUint32(tag[12:], nonce)
	for off, i := 0, uint32(0); off < len(p); off, i = off+every, i+1 {
		binary.LittleEndian.PutUint32(tag[16:], i)
		copy(p[off:], tag[:])
	}
}

// summarize is benchstat.Summarize of a phase that moved size bytes per
// successful operation.
func summarize(phase, op string, size, workers int, lat []time.Duration, errs int, elapsed time.Duration) summary {
	r, _ := benchstat.Summarize(phase, op, size, workers, lat, errs, int64(len(lat))*int64(size), elapsed)
	return summary{Result: r}
}

type runner struct {
	c     config
	cl    *s3.Client
	nonce uint32
	out   io.Writer
}

// phase runs PUT (unique bodies, keys recorded) or GET (random keys of the
// PUT phase) for the configured duration.
func (r *runner) phase(ctx context.Context, op string, size int, base []byte, keys []string) (summary, []string) {
	pctx, cancel := context.WithTimeout(ctx, r.c.duration)
	defer cancel()
	var count atomic.Int64
	lat := make([][]time.Duration, r.c.workers)
	errs := make([]int, r.c.workers)
	written := make([][]string, r.c.workers)
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for w := range r.c.workers {
		wg.Go(func() {
			body := slices.Clone(base)
			buf := make([]byte, 256<<10)
			rng := rand.New(rand.NewPCG(uint64(w), uint64(size)))
			for i := uint64(0); ; i++ {
				if pctx.Err() != nil || count.Add(1) > int64(r.c.maxOps) {
					return
				}
				t0 := time.Now()
				var err error
				var key string
				if op == "PUT" {
					key = fmt.Sprintf("u/%d/w%03d/%08d", size, w, i)
					stamp(body, r.c.stampEvery, uint32(w), i, r.nonce)
					_, err = r.cl.PutObject(pctx, &s3.PutObjectInput{Bucket: aws.String(r.c.bucket), Key: aws.String(key),
						Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(size))})
				} else {
					err = r.get(pctx, keys[rng.IntN(len(keys))], buf, size)
				}
				if pctx.Err() != nil {
					return // ended during the request: not counted
				}
				if err != nil {
					errs[w]++
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				if op == "PUT" {
					written[w] = append(written[w], key)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	s := summarize(strings.ToLower(op), op, size, r.c.workers, slices.Concat(lat...), sumInts(errs), elapsed)
	if firstErr != nil {
		s.FirstErr = firstErr.Error()
	}
	return s, slices.Concat(written...)
}

func sumInts(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

func (r *runner) get(ctx context.Context, key string, buf []byte, want int) error {
	out, err := r.cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.c.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	n, err := io.CopyBuffer(io.Discard, out.Body, buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if n != int64(want) {
		return fmt.Errorf("get %s: %d bytes, want %d", key, n, want)
	}
	return nil
}

// newClient returns a path-style client that reads nothing from the
// environment, keeps one idle connection per worker, does not retry, sends
// UNSIGNED-PAYLOAD and computes checksums only when an operation requires one.
func newClient(c config) *s3.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c.workers * 2,
		MaxIdleConnsPerHost: c.workers * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	cfg := aws.Config{
		Region:                     c.region,
		Credentials:                credentials.NewStaticCredentialsProvider(c.accessKey, c.secretKey, ""),
		HTTPClient:                 &http.Client{Transport: tr, Timeout: 5 * time.Minute},
		Retryer:                    func() aws.Retryer { return aws.NopRetryer{} },
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(c.endpoint)
		o.UsePathStyle = true
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
}

func run(ctx context.Context, c config, out io.Writer) ([]summary, error) {
	cl := newClient(c)
	var nb [4]byte
	if _, err := crand.Read(nb[:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	r := &runner{c: c, cl: cl, nonce: binary.LittleEndian.Uint32(nb[:]), out: out}
	if _, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.bucket)}); err != nil {
		if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(c.bucket)}); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", c.bucket, err)
		}
	}
	fmt.Fprintf(out, "endpoint %s, %d workers, %s per phase, unique bodies (stamp every %d B), UNSIGNED-PAYLOAD\n",
		c.endpoint, c.workers, c.duration, c.stampEvery)
	fmt.Fprintf(out, "%-6s %-4s %8s %8s %6s %9s %8s %8s %8s\n", "phase", "op", "size", "ops", "errors", "ops/s", "MB/s", "p50 ms", "p99 ms")
	var res []summary
	for _, size := range c.sizes {
		base := make([]byte, size)
		if _, err := crand.Read(base); err != nil {
			return res, fmt.Errorf("payload: %w", err)
		}
		put, keys := r.phase(ctx, "PUT", size, base, nil)
		res = append(res, put)
		printRow(out, put)
		if len(keys) == 0 {
			return res, fmt.Errorf("PUT %d B: no object written (first error: %s)", size, put.FirstErr)
		}
		get, _ := r.phase(ctx, "GET", size, nil, keys)
		res = append(res, get)
		printRow(out, get)
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func printRow(w io.Writer, s summary) {
	fmt.Fprintf(w, "%-6s %-4s %8d %8d %6d %9.1f %8.1f %8.2f %8.2f\n", s.Phase, s.Op, s.Size, s.Ops, s.Errors, s.OpsPerSec, s.MBPerSec,
		float64(s.P50)/1e6, float64(s.P99)/1e6)
	if s.FirstErr != "" {
		fmt.Fprintf(w, "  first error: %s\n", s.FirstErr)
	}
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "uniqbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, c, os.Stdout)
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"endpoint": c.endpoint, "workers": c.workers, "unique_bodies": true, "results": res}, "", "  ")
		if werr := os.WriteFile(c.jsonOut, b, 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "uniqbench: write json:", werr)
			os.Exit(1)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "uniqbench:", err)
		os.Exit(1)
	}
}
