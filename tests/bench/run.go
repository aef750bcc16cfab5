package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/entrepot/entrepot/tests/harness"
)

// Report is everything one run measured.
type Report struct {
	Endpoint       string       `json:"endpoint"`
	PayloadSigning string       `json:"payload_signing"`
	Workers        int          `json:"workers"`
	Results        []Summary    `json:"results"`
	Server         *ServerStats `json:"server,omitempty"`
	ClientCPU      []PhaseCPU   `json:"client_cpu"`
}

// PhaseCPU is the CPU time a process used during a phase, as a share of
// one core (1.0 = one core busy all the time).
type PhaseCPU struct {
	Phase string  `json:"phase"`
	Cores float64 `json:"cores"`
}

type bench struct {
	cfg     Config
	cl      *s3.Client
	out     io.Writer
	log     *slog.Logger
	rep     *Report
	dev     *devServer
	payload map[int][]byte
	written map[int][]string // keys per size, filled by put phases
	mu      sync.Mutex
}

func newClient(cfg Config, endpoint, key, secret string) *s3.Client {
	tr := harness.NewTransport(cfg.Workers * 2)
	httpClient := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	return harness.NewS3Client(endpoint, harness.Credentials{Region: cfg.Region, AccessKeyID: key, SecretAccessKey: secret}, httpClient,
		func(o *s3.Options) {
			o.RetryMaxAttempts = 1
			o.Retryer = aws.NopRetryer{}
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			if cfg.PayloadSigning == "unsigned" {
				o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
			}
		})
}

func run(ctx context.Context, cfg Config, out io.Writer, log *slog.Logger) (*Report, error) {
	b := &bench{cfg: cfg, out: out, log: log, payload: map[int][]byte{}, written: map[int][]string{}}
	endpoint, key, secret := cfg.Endpoint, cfg.AccessKey, cfg.SecretKey
	if cfg.StartDev {
		dev, err := startDev(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		defer dev.Close()
		b.dev = dev
		endpoint, key, secret = dev.endpoint, dev.creds.AccessKeyID, dev.creds.SecretAccessKey
	}
	b.rep = &Report{Endpoint: endpoint, PayloadSigning: cfg.PayloadSigning, Workers: cfg.Workers}
	b.cl = newClient(cfg, endpoint, key, secret)
	b.printf("endpoint %s, %d workers, %s per phase, payload signing %s (checksums only when required)\n",
		endpoint, cfg.Workers, cfg.Duration, map[string]string{"unsigned": "UNSIGNED-PAYLOAD", "sha256": "SHA-256 of the body"}[cfg.PayloadSigning])
	if b.dev != nil {
		b.printf("server: pid %d, start to first served request %s, idle RSS %.1f MiB\n",
			b.dev.pid, b.dev.stats.StartToFirstRequest.Round(time.Millisecond), float64(b.dev.stats.IdleRSS)/(1<<20))
	}
	if err := b.ensureBucket(ctx); err != nil {
		return nil, err
	}
	sizes := slices.Clone(cfg.Sizes)
	if slices.Contains(cfg.Ops, "mixed") && !slices.Contains(sizes, cfg.MixedSize) {
		sizes = append(sizes, cfg.MixedSize)
	}
	for _, s := range append(sizes, 4096) {
		if b.payload[s] == nil {
			b.payload[s] = randomBytes(s)
		}
	}
	printHeader(b.printf)
	var err error
	for _, size := range cfg.Sizes {
		if err == nil && slices.Contains(cfg.Ops, "put") {
			err = b.phase(ctx, "put", size)
		}
		if err == nil && slices.Contains(cfg.Ops, "get") {
			err = b.phase(ctx, "get", size)
		}
	}
	if err == nil && slices.Contains(cfg.Ops, "mixed") {
		err = b.phase(ctx, "mixed", cfg.MixedSize)
	}
	if err == nil && slices.Contains(cfg.Ops, "latency") {
		err = b.latency(ctx)
	}
	if b.dev != nil {
		st := b.dev.finish()
		b.rep.Server = &st
		b.printf("server: idle RSS %.1f MiB, peak RSS (VmHWM) %.1f MiB, start to first served request %s\n",
			float64(st.IdleRSS)/(1<<20), float64(st.PeakRSS)/(1<<20), st.StartToFirstRequest.Round(time.Millisecond))
		for _, p := range st.Phases {
			b.printf("server: %-16s peak RSS %.1f MiB, CPU %.2f cores\n", p.Phase, float64(p.PeakRSS)/(1<<20), p.Cores)
		}
	}
	for _, p := range b.rep.ClientCPU {
		b.printf("client: %-16s CPU %.2f cores (of %d)\n", p.Phase, p.Cores, runtime.NumCPU())
	}
	if !cfg.Keep {
		b.cleanup(context.WithoutCancel(ctx))
	}
	if err != nil {
		return b.rep, err
	}
	return b.rep, ctx.Err()
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 0xbe4c))
	p := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return p
}

func (b *bench) ensureBucket(ctx context.Context) error {
	_, err := b.cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.cfg.Bucket)})
	if err == nil {
		return nil
	}
	if _, err := b.cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.cfg.Bucket)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", b.cfg.Bucket, err)
	}
	return nil
}

func (b *bench) put(ctx context.Context, key string, body []byte) error {
	_, err := b.cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	return err
}

func (b *bench) get(ctx context.Context, key string, buf []byte, want int) error {
	out, err := b.cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(io.Discard, out.Body, buf)
	out.Body.Close()
	if err != nil {
		return err
	}
	if want >= 0 && n != int64(want) {
		return fmt.Errorf("get %s: %d bytes, want %d", key, n, want)
	}
	return nil
}

// workerResult is what one worker measured in a phase.
type workerResult struct {
	lat      map[string][]time.Duration
	errs     map[string]int
	bytes    map[string]int64
	keys     []string
	firstErr error
}

func newWorkerResult() *workerResult {
	return &workerResult{lat: map[string][]time.Duration{}, errs: map[string]int{}, bytes: map[string]int64{}}
}

func (r *workerResult) note(op string, d time.Duration, n int, err error) {
	if err != nil {
		r.errs[op]++
		if r.firstErr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			r.firstErr = err
		}
		return
	}
	r.lat[op] = append(r.lat[op], d)
	r.bytes[op] += int64(n)
}

// ensureObjects makes sure at least n objects of size exist (for get and
// mixed phases run without a put phase before).
func (b *bench) ensureObjects(ctx context.Context, size, n int) error {
	b.mu.Lock()
	have := len(b.written[size])
	b.mu.Unlock()
	if have >= n {
		return nil
	}
	var wg sync.WaitGroup
	keys := make([]string, n-have)
	errs := make([]error, len(keys))
	next := atomic.Int64{}
	for range min(b.cfg.Workers, 8) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				keys[i] = fmt.Sprintf("bench/%s/seed/%06d", formatSize(size), have+i)
				errs[i] = b.put(ctx, keys[i], b.payload[size])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("seed %d objects of %s: %w", len(keys), formatSize(size), err)
	}
	b.mu.Lock()
	b.written[size] = append(b.written[size], keys...)
	b.mu.Unlock()
	return nil
}

// phase runs op ("put", "get" or "mixed") with all workers for the
// configured duration or MaxOps operations, whichever comes first.
func (b *bench) phase(ctx context.Context, op string, size int) error {
	if op != "put" {
		if err := b.ensureObjects(ctx, size, 256); err != nil {
			return err
		}
	}
	b.mu.Lock()
	pool := slices.Clone(b.written[size])
	b.mu.Unlock()
	name := op + " " + formatSize(size)
	pctx, cancel := context.WithTimeout(ctx, b.cfg.Duration)
	defer cancel()
	var count atomic.Int64
	results := make([]*workerResult, b.cfg.Workers)
	cpu0 := rusage()
	b.devMark(name)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range b.cfg.Workers {
		r := newWorkerResult()
		results[w] = r
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(size)))
			buf := make([]byte, 256<<10)
			body := b.payload[size]
			for i := 0; ; i++ {
				if pctx.Err() != nil || count.Add(1) > int64(b.cfg.MaxOps) {
					return
				}
				doPut := op == "put" || (op == "mixed" && rng.IntN(2) == 0)
				t0 := time.Now()
				if doPut {
					key := fmt.Sprintf("bench/%s/w%03d/%07d", formatSize(size), w, i)
					if op == "mixed" {
						key = pool[rng.IntN(len(pool))] // overwrite
					}
					err := b.put(pctx, key, body)
					if pctx.Err() != nil {
						return // the phase ended during this request: not counted
					}
					r.note("PUT", time.Since(t0), len(body), err)
					if err == nil && op == "put" {
						r.keys = append(r.keys, key)
					}
				} else {
					err := b.get(pctx, pool[rng.IntN(len(pool))], buf, size)
					if pctx.Err() != nil {
						return
					}
					r.note("GET", time.Since(t0), size, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.devUnmark()
	b.rep.ClientCPU = append(b.rep.ClientCPU, PhaseCPU{Phase: name, Cores: (rusage() - cpu0).Seconds() / elapsed.Seconds()})
	merged := newWorkerResult()
	for _, r := range results {
		for k, v := range r.lat {
			merged.lat[k] = append(merged.lat[k], v...)
		}
		for k, v := range r.errs {
			merged.errs[k] += v
		}
		for k, v := range r.bytes {
			merged.bytes[k] += v
		}
		merged.keys = append(merged.keys, r.keys...)
		if merged.firstErr == nil {
			merged.firstErr = r.firstErr
		}
	}
	b.mu.Lock()
	b.written[size] = append(b.written[size], merged.keys...)
	b.mu.Unlock()
	for _, o := range []string{"PUT", "GET"} {
		if len(merged.lat[o]) == 0 && merged.errs[o] == 0 {
			continue
		}
		s := summarize(op, o, size, b.cfg.Workers, merged.lat[o], merged.errs[o], merged.bytes[o], elapsed)
		if merged.firstErr != nil {
			s.FirstErr = merged.firstErr.Error()
		}
		b.rep.Results = append(b.rep.Results, s)
		printRow(b.printf, s)
	}
	if merged.firstErr != nil {
		b.printf("  first error: %v\n", merged.firstErr)
	}
	return ctx.Err()
}

// latency measures one request at a time: PUT, GET, DELETE of 4 KiB
// objects, LIST (ListObjectsV2 of up to 100 keys) and ListBuckets.
func (b *bench) latency(ctx context.Context) error {
	const size = 4096
	body := b.payload[size]
	n := b.cfg.LatencySamples
	// Each operation gets its own time budget (Duration), so a slow one
	// (fsync-bound PUTs on a busy disk) does not starve the others.
	var lctx context.Context
	buf := make([]byte, 64<<10)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench/latency/%05d", i)
	}
	b.devMark("latency")
	cpu0, start := rusage(), time.Now()
	ops := []struct {
		name string
		do   func(i int) error
	}{
		{"PUT", func(i int) error { return b.put(lctx, keys[i], body) }},
		{"GET", func(i int) error { return b.get(lctx, keys[i], buf, size) }},
		{"LIST", func(int) error {
			_, err := b.cl.ListObjectsV2(lctx, &s3.ListObjectsV2Input{Bucket: aws.String(b.cfg.Bucket), Prefix: aws.String("bench/latency/"), MaxKeys: aws.Int32(100)})
			return err
		}},
		{"ListBuckets", func(int) error { _, err := b.cl.ListBuckets(lctx, &s3.ListBucketsInput{}); return err }},
		{"DELETE", func(i int) error {
			_, err := b.cl.DeleteObject(lctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(keys[i])})
			return err
		}},
	}
	for _, op := range ops {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, b.cfg.Duration)
		r := newWorkerResult()
		t0 := time.Now()
		for i := 0; i < n && lctx.Err() == nil; i++ {
			s := time.Now()
			err := op.do(i)
			if lctx.Err() != nil {
				break
			}
			r.note(op.name, time.Since(s), 0, err)
		}
		s := summarize("latency", op.name, size, 1, r.lat[op.name], r.errs[op.name], 0, time.Since(t0))
		if r.firstErr != nil {
			s.FirstErr = r.firstErr.Error()
		}
		cancel()
		b.rep.Results = append(b.rep.Results, s)
		printRow(b.printf, s)
	}
	b.devUnmark()
	b.rep.ClientCPU = append(b.rep.ClientCPU, PhaseCPU{Phase: "latency", Cores: (rusage() - cpu0).Seconds() / time.Since(start).Seconds()})
	return ctx.Err()
}

// cleanup deletes what the run wrote, 1000 keys per request, bounded to
// two minutes.
func (b *bench) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var all []string
	for _, ks := range b.written {
		all = append(all, ks...)
	}
	for len(all) > 0 && ctx.Err() == nil {
		n := min(1000, len(all))
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range all[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		if _, err := b.cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b.cfg.Bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
			b.log.Warn("cleanup: delete objects", "err", err)
			return
		}
		all = all[n:]
	}
	if b.cfg.StartDev || b.cfg.Bucket == "entrepot-bench" {
		_, _ = b.cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b.cfg.Bucket)})
	}
}

func (b *bench) devMark(phase string) {
	if b.dev != nil {
		b.dev.mark(phase)
	}
}

func (b *bench) devUnmark() {
	if b.dev != nil {
		b.dev.unmark()
	}
}

// rusage returns this process's user+system CPU time.
func rusage() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
