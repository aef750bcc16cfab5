package crash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/entrepot/entrepot/tests/harness"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	// budget bounds the whole kill loop.
	budget = 3 * time.Minute
	bucket = "crash"
)

// content returns the bytes of version v of key: a deterministic stream, so
// any object found on disk can be checked without keeping its bytes.
func content(key string, v, size int) []byte {
	h := fnv.New64a()
	h.Write([]byte(key))
	r := rand.New(rand.NewPCG(h.Sum64(), uint64(v)))
	b := make([]byte, size)
	for i := 0; i < size; i += 8 {
		x := r.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// version is one write of a key: its version number and size.
type version struct{ v, size int }

// ledger records, per key, which contents are acceptable on disk: after an
// acknowledged write only that version; after a write without an answer
// also that version (it may or may not have landed); "absent" while no
// acknowledged write exists.
type ledger struct {
	mu    sync.Mutex
	valid map[string][]version // acceptable versions; v = -1 means absent
	acked map[string]bool      // an acknowledged write exists
	kinds map[string]string
}

func newLedger() *ledger {
	return &ledger{valid: map[string][]version{}, acked: map[string]bool{}, kinds: map[string]string{}}
}

func (l *ledger) record(key, kind string, ver version, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kinds[key] = kind
	if ok {
		l.valid[key] = []version{ver}
		l.acked[key] = true
		return
	}
	if len(l.valid[key]) == 0 {
		l.valid[key] = []version{{v: -1}}
	}
	l.valid[key] = append(l.valid[key], ver)
}

// settle replaces the acceptable set of key by what was observed.
func (l *ledger) settle(key string, ver version) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.valid[key] = []version{ver}
	if ver.v >= 0 {
		l.acked[key] = true // durable now: must survive later crashes
	}
}

func (l *ledger) kind(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kinds[key]
}

func (l *ledger) snapshot() map[string][]version {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]version, len(l.valid))
	for k, v := range l.valid {
		out[k] = slices.Clone(v)
	}
	return out
}

type stats struct {
	mu                    sync.Mutex
	acked, failed, mpDone int
	bytesAcked            int64
}

func (s *stats) add(ok bool, size int, multipart bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.acked++
		s.bytesAcked += int64(size)
		if multipart {
			s.mpDone++
		}
	} else {
		s.failed++
	}
}

func killsWanted(t *testing.T) int {
	if s := os.Getenv("ENTREPOT_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("ENTREPOT_CRASH_KILLS=%q: want a positive integer", s)
		}
		return n
	}
	return 50
}

func TestKillDuringPuts(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop skipped in -short mode")
	}
	kills := killsWanted(t)
	bin := harness.Bin(t)
	dir := t.TempDir()
	node, err := harness.NewNode(harness.NodeConfig{Bin: bin, DataDir: filepath.Join(dir, "node0"), StartTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Kill()
		if t.Failed() {
			t.Logf("--- node log tail (%s) ---\n%s", node.LogPath(), node.LogTail(60))
		}
	})
	ctx := context.Background()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	creds, err := node.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	tr := harness.NewTransport(16)
	cl := harness.NewS3Client(node.Endpoint(), creds, &http.Client{Transport: tr, Timeout: 30 * time.Second}, func(o *s3.Options) {
		o.Retryer = aws.NopRetryer{} // an error must mean "no answer", never a hidden second try
	})
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}

	led := newLedger()
	st := &stats{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	var downtime time.Duration
	for round := 0; round < kills; round++ {
		if time.Since(start) > budget {
			t.Fatalf("only %d of %d kills within %s (restart took %s in total)", round, kills, budget, downtime.Round(time.Millisecond))
		}
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() { putWorker(wctx, cl, led, st, round, w) })
		}
		wg.Go(func() { multipartWorker(wctx, cl, led, st, round) })
		wg.Go(func() { overwriteWorker(wctx, cl, led, st, round) })
		time.Sleep(time.Duration(40+rng.IntN(300)) * time.Millisecond)
		if err := node.Kill(); err != nil {
			cancel()
			t.Fatalf("round %d: kill: %v", round, err)
		}
		cancel()
		wg.Wait()
		t0 := time.Now()
		if err := node.Start(ctx); err != nil {
			t.Fatalf("round %d: restart after SIGKILL: %v", round, err)
		}
		downtime += time.Since(t0)
		tr.CloseIdleConnections()
		verify(t, cl, led, fmt.Sprintf("r%03d/", round), fmt.Sprintf("after kill %d", round+1))
		if t.Failed() {
			return
		}
	}
	// Every object of every round, after the last restart, and nothing else.
	verify(t, cl, led, "", "final")
	listed := listAll(t, cl)
	snap := led.snapshot()
	for _, k := range listed {
		if _, ok := snap[k]; !ok {
			t.Errorf("listed object %q was never written", k)
		}
	}
	for k, vs := range snap {
		if vs[0].v >= 0 && !slices.Contains(listed, k) {
			t.Errorf("object %q (durable) missing from the listing", k)
		}
	}
	t.Logf("%d kills in %s: %d writes acknowledged (%d MiB, %d multipart), %d without answer; restarts took %s in total",
		kills, time.Since(start).Round(time.Millisecond), st.acked, st.bytesAcked/mib, st.mpDone, st.failed, downtime.Round(time.Millisecond))
	if st.acked < kills {
		t.Errorf("only %d acknowledged writes over %d rounds: the loop did not exercise the store", st.acked, kills)
	}
}

func putObject(ctx context.Context, cl *s3.Client, key string, body []byte) error {
	_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

func putWorker(ctx context.Context, cl *s3.Client, led *ledger, st *stats, round, w int) {
	sizes := []int{1 * kib, 1 * kib, 1 * kib, 100 * kib, 100 * kib, 3*mib + 123}
	for i := 0; ctx.Err() == nil && i < 1000; i++ {
		size := sizes[(i+w)%len(sizes)]
		key := fmt.Sprintf("r%03d/w%d/%04d", round, w, i)
		ver := version{v: 0, size: size}
		err := putObject(ctx, cl, key, content(key, 0, size))
		led.record(key, "put", ver, err == nil)
		st.add(err == nil, size, false)
	}
}

func multipartWorker(ctx context.Context, cl *s3.Client, led *ledger, st *stats, round int) {
	for i := 0; ctx.Err() == nil && i < 100; i++ {
		key := fmt.Sprintf("r%03d/mp/%03d", round, i)
		// Alternate a one-part upload and a 5 MiB + 1 KiB two-part upload.
		parts := []int{200 * kib}
		if i%2 == 1 {
			parts = []int{5 * mib, 1 * kib}
		}
		size := 0
		for _, p := range parts {
			size += p
		}
		ver := version{v: 0, size: size}
		err := multipart(ctx, cl, key, content(key, 0, size), parts)
		led.record(key, "multipart", ver, err == nil)
		st.add(err == nil, size, true)
	}
}

func multipart(ctx context.Context, cl *s3.Client, key string, body []byte, parts []int) error {
	up, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	var done []types.CompletedPart
	off := 0
	for i, n := range parts {
		out, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body[off : off+n])})
		if err != nil {
			return err
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		off += n
	}
	_, err = cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	return err
}

// overwriteWorker rewrites a small set of keys sequentially with growing
// version numbers and alternating sizes (inline and multi-block).
func overwriteWorker(ctx context.Context, cl *s3.Client, led *ledger, st *stats, round int) {
	for i := 0; ctx.Err() == nil && i < 200; i++ {
		key := fmt.Sprintf("ow/%d", i%5)
		v := round*1000 + i
		size := 2 * kib
		if v%3 == 0 {
			size = 2*mib + 7
		}
		err := putObject(ctx, cl, key, content(key, v, size))
		led.record(key, "overwrite", version{v: v, size: size}, err == nil)
		st.add(err == nil, size, false)
	}
}

// verify reads every recorded key with the prefix (plus the overwrite keys)
// and checks the bytes against the acceptable versions.
func verify(t *testing.T, cl *s3.Client, led *ledger, prefix, when string) {
	t.Helper()
	snap := led.snapshot()
	var keys []string
	for k := range snap {
		if prefix == "" || len(k) >= len(prefix) && k[:len(prefix)] == prefix || k[:3] == "ow/" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	type result struct {
		key string
		err error
		ver version
	}
	jobs := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for k := range jobs {
				ver, err := check(cl, k, snap[k])
				results <- result{key: k, err: err, ver: ver}
			}
		})
	}
	go func() {
		for _, k := range keys {
			jobs <- k
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	bad := 0
	for r := range results {
		if r.err != nil {
			if bad++; bad <= 20 {
				t.Errorf("%s: %s (%s): %v", when, r.key, led.kind(r.key), r.err)
			}
			continue
		}
		led.settle(r.key, r.ver)
	}
	if bad > 20 {
		t.Errorf("%s: %d more bad objects not shown", when, bad-20)
	}
}

var errAbsent = errors.New("absent")

// check GETs key and returns which acceptable version it holds.
func check(cl *s3.Client, key string, valid []version) (version, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := getObject(ctx, cl, key)
	if errors.Is(err, errAbsent) {
		if slices.ContainsFunc(valid, func(v version) bool { return v.v == -1 }) {
			return version{v: -1}, nil
		}
		return version{}, fmt.Errorf("acknowledged object missing (acceptable versions %v)", valid)
	}
	if err != nil {
		return version{}, err
	}
	for _, v := range valid {
		if v.v >= 0 && v.size == len(body) && bytes.Equal(body, content(key, v.v, v.size)) {
			return v, nil
		}
	}
	return version{}, fmt.Errorf("%d bytes on disk match no acceptable version %v (corrupt, partial or mixed)", len(body), valid)
}

func getObject(ctx context.Context, cl *s3.Client, key string) ([]byte, error) {
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, errAbsent
		}
		return nil, fmt.Errorf("get: %w", err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if out.ContentLength != nil && *out.ContentLength != int64(len(b)) {
		return nil, fmt.Errorf("Content-Length %d but %d bytes", *out.ContentLength, len(b))
	}
	return b, nil
}

func listAll(t *testing.T, cl *s3.Client) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for i := 0; p.HasMorePages() && i < 10000; i++ {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}
