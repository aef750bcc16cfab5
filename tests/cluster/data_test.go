package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/tests/harness"
)

const (
	testBucket   = "cluster"
	blockSize    = 64 << 10
	smallObjects = 1960 // inline and single-block objects
	largeObjects = 40   // multi-block objects (3-5 blocks)
)

// content is an object's deterministic body: key and version decide it.
func content(key string, ver, size int) []byte {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("%s#%d", key, ver))
	r := rand.NewChaCha8(seed)
	b := make([]byte, size)
	_, _ = r.Read(b)
	header := fmt.Sprintf("%s v%d\n", key, ver)
	copy(b, header)
	return b
}

// versionOf parses the version written at the start of a body.
func versionOf(key string, body []byte) (int, error) {
	line, _, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return 0, fmt.Errorf("%s: no header", key)
	}
	k, v, ok := strings.Cut(string(line), " v")
	if !ok || k != key {
		return 0, fmt.Errorf("%s: header %q", key, line)
	}
	return strconv.Atoi(v)
}

// sizeFor gives object i its size: mostly small (inline or one block), every
// 50th multi-block.
func sizeFor(i int) int {
	if i%50 == 49 {
		return 3*blockSize + (i*7919)%(2*blockSize)
	}
	switch i % 4 {
	case 0:
		return 100 + i%900 // inline
	case 1:
		return 3000 + i%1000 // inline
	default:
		return 5000 + (i*131)%30000 // one block
	}
}

func objectKey(i int) string { return fmt.Sprintf("obj/%04d", i) }

// clients are one S3 client per node.
type clients []*s3.Client

func s3Clients(c *harness.MultiCluster) clients {
	var out clients
	for i := range c.Len() {
		out = append(out, harness.NewS3Client(c.Node(i).Endpoint(), c.CredentialsFor(i), nil))
	}
	return out
}

func put(ctx context.Context, cl *s3.Client, key string, body []byte) error {
	_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

func get(ctx context.Context, cl *s3.Client, key string) ([]byte, error) {
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns the first errors.
func parallel(n, workers int, f func(i int) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if len(errs) < 10 {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// requireReplication skips the test when the build does not replicate
// tables and blocks yet, naming what is missing.
func requireReplication(ctx context.Context, t *testing.T, c *harness.MultiCluster) {
	t.Helper()
	var missing []string
	if !c.TablesReplicated(ctx) {
		missing = append(missing, "table replication (daemon/table Replicator wired into model and the daemon)")
	}
	if !c.BlocksReplicated(ctx) {
		missing = append(missing, "block replication (daemon/block Store.EnableReplication wired into the daemon)")
	}
	if len(missing) > 0 {
		t.Skipf("this build lacks %s: data scenarios need it", strings.Join(missing, " and "))
	}
}

// blockFiles maps each regular file under a node's data dir to its size.
func blockFiles(dir string) map[string]int64 {
	out := map[string]int64{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, p)
			out[rel] = info.Size()
		}
		return nil
	})
	return out
}

// written is the ledger of acknowledged versions per key.
type written struct {
	mu  sync.Mutex
	ver map[string]int
}

func (w *written) set(k string, v int) {
	w.mu.Lock()
	if v > w.ver[k] {
		w.ver[k] = v
	}
	w.mu.Unlock()
}

func (w *written) get(k string) (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.ver[k]
	return v, ok
}

func (w *written) keys() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.ver))
	for k := range w.ver {
		out = append(out, k)
	}
	return out
}

// checkAll reads every key of w from each of the given nodes and compares
// the body with the acknowledged version.
func checkAll(ctx context.Context, t *testing.T, cls clients, nodes []int, w *written, sizes map[string]int) {
	t.Helper()
	keys := w.keys()
	start := time.Now()
	errs := parallel(len(keys)*len(nodes), 12, func(i int) error {
		node, key := nodes[i%len(nodes)], keys[i/len(nodes)]
		body, err := get(ctx, cls[node], key)
		if err != nil {
			return fmt.Errorf("node %d GET %s: %w", node, key, err)
		}
		want, _ := w.get(key)
		if !bytes.Equal(body, content(key, want, sizes[key])) {
			got, _ := versionOf(key, body)
			return fmt.Errorf("node %d GET %s: body of version %d (%d bytes), want version %d", node, key, got, len(body), want)
		}
		return nil
	})
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("read %d objects from each of nodes %v in %s", len(keys), nodes, time.Since(start).Round(time.Millisecond))
}

// TestReplicatedData runs the data scenarios on one 5-node,
// 3-zone, RF 3 cluster, in order: 2,000 objects written through every node
// and read back from every node; a whole zone SIGKILLed while reads and
// writes go on; the zone restarted and converged (Merkle roots, scrub); a
// sixth node added while a reader checks for missing or stale objects.
func TestReplicatedData(t *testing.T) {
	c := harness.StartClusterT(t, harness.ClusterOptions{RF: 3, Nodes: fiveNodes(), BlockSize: "64K"})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	requireReplication(ctx, t, c)
	checkZones(ctx, t, c, 3)
	cls := s3Clients(c)
	if _, err := cls[0].CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(testBucket)}); err != nil {
		t.Fatal(err)
	}
	w := &written{ver: map[string]int{}}
	sizes := map[string]int{}
	for i := range smallObjects + largeObjects {
		sizes[objectKey(i)] = sizeFor(i)
	}

	t.Run("write 2000 through every node, read from every node", func(t *testing.T) {
		start := time.Now()
		var bytesW atomic.Int64
		errs := parallel(smallObjects+largeObjects, 8, func(i int) error {
			k := objectKey(i)
			body := content(k, 1, sizes[k])
			if err := put(ctx, cls[i%len(cls)], k, body); err != nil {
				return fmt.Errorf("node %d PUT %s: %w", i%len(cls), k, err)
			}
			bytesW.Add(int64(len(body)))
			w.set(k, 1)
			return nil
		})
		for _, err := range errs {
			t.Error(err)
		}
		el := time.Since(start)
		t.Logf("wrote %d objects (%d bytes) through 5 nodes in %s (%.0f objects/s)", len(w.keys()), bytesW.Load(),
			el.Round(time.Millisecond), float64(len(w.keys()))/el.Seconds())
		checkAll(ctx, t, cls, []int{0, 1, 2, 3, 4}, w, sizes)
	})
	if t.Failed() {
		return
	}

	zoneA := []int{0, 1}
	t.Run("zone a down: reads and writes go on", func(t *testing.T) {
		for _, i := range zoneA {
			if err := c.Node(i).Kill(); err != nil {
				t.Fatal(err)
			}
		}
		rest := []int{2, 3, 4}
		start := time.Now()
		errs := parallel(200, 6, func(i int) error {
			k := objectKey(i * 7 % (smallObjects + largeObjects))
			node := rest[i%len(rest)]
			if err := put(ctx, cls[node], k, content(k, 2, sizes[k])); err != nil {
				return fmt.Errorf("zone a down: node %d PUT %s: %w", node, k, err)
			}
			w.set(k, 2)
			return nil
		})
		for _, err := range errs {
			t.Error(err)
		}
		t.Logf("zone a down: 200 overwrites through nodes %v in %s", rest, time.Since(start).Round(time.Millisecond))
		checkAll(ctx, t, cls, rest, w, sizes)
	})
	if t.Failed() {
		return
	}

	t.Run("zone a back: anti-entropy converges, scrub finds nothing missing", func(t *testing.T) {
		start := time.Now()
		for _, i := range zoneA {
			if err := c.StartNode(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		waitAllUp(ctx, t, c, []int{0, 1, 2, 3, 4})
		waitFor(ctx, t, "Merkle roots equal on every replica of every partition", func() (bool, string) {
			for i := range c.Len() {
				if err := c.Admin(i).SyncTables(ctx); err != nil {
					return false, fmt.Sprintf("node %d sync: %v", i, err)
				}
			}
			return merkleConverged(ctx, c)
		})
		t.Logf("zone a restarted and converged in %s", time.Since(start).Round(time.Millisecond))
		waitFor(ctx, t, "scrub finds nothing missing or corrupt", func() (bool, string) {
			for i := range c.Len() {
				r, err := c.Admin(i).Scrub(ctx)
				if err != nil {
					return false, fmt.Sprintf("node %d scrub: %v", i, err)
				}
				if r.Missing != 0 || r.Corrupt != 0 {
					return false, fmt.Sprintf("node %d scrub: %+v", i, r)
				}
			}
			return true, ""
		})
		checkAll(ctx, t, cls, zoneA, w, sizes)
	})
	if t.Failed() {
		return
	}

	t.Run("add a node: it takes its share, a reader never sees missing or stale data", func(t *testing.T) {
		before := map[int]map[string]int64{}
		var total int64
		for i := range c.Len() {
			before[i] = blockFiles(filepath.Join(c.Node(i).DataDir(), "data"))
			for _, s := range before[i] {
				total += s
			}
		}
		readerCtx, stopReader := context.WithCancel(ctx)
		var readerErrs []error
		var reads atomic.Int64
		var readerWG sync.WaitGroup
		readerWG.Add(1)
		go func() {
			defer readerWG.Done()
			readerErrs = readLoop(readerCtx, cls, w, sizes, &reads)
		}()
		start := time.Now()
		n, err := c.AddNode(ctx, harness.NodeSpec{Zone: "c"})
		if err != nil {
			stopReader()
			t.Fatal(err)
		}
		cls = append(cls, harness.NewS3Client(c.Node(n).Endpoint(), c.CredentialsFor(n), nil))
		// Sample the new node's block bytes to find when its share was complete.
		type sample struct {
			at    time.Duration
			bytes int64
		}
		var samples []sample
		samplerCtx, stopSampler := context.WithCancel(ctx)
		samplerDone := make(chan struct{})
		go func() {
			defer close(samplerDone)
			for samplerCtx.Err() == nil {
				var b int64
				for _, sz := range blockFiles(filepath.Join(c.Node(n).DataDir(), "data")) {
					b += sz
				}
				samples = append(samples, sample{time.Since(start), b})
				select {
				case <-samplerCtx.Done():
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
		if err := c.WaitConverged(ctx, 3*time.Minute); err != nil {
			stopReader()
			t.Fatal(err)
		}
		lastLog, shownErr := time.Now(), map[int]bool{}
		t.Logf("layout with the new node synced everywhere after %s", time.Since(start).Round(time.Millisecond))
		// Done when no node has rebalance transfers left and the new node's
		// blocks stopped changing. (Resync entries queued while zone a was
		// down may still wait for their retry delay; they are not rebalance.)
		var prevNew int64 = -1
		waitFor(ctx, t, "rebalance finished", func() (bool, string) {
			for i := range c.Len() {
				st, err := c.Status(ctx, i)
				if err != nil {
					return false, err.Error()
				}
				if st.Rebalance.Active {
					if time.Since(lastLog) > 5*time.Second {
						lastLog = time.Now()
						t.Logf("after %s: node %d rebalance %+v", time.Since(start).Round(time.Second), i, st.Rebalance)
						if st.Rebalance.Errored > 0 && !shownErr[i] {
							shownErr[i] = true
							t.Logf("node %d resync errors:\n%s", i, grepLog(c.Node(i).LogTail(400), "resync", 6))
						}
					}
					prevNew = -1
					return false, fmt.Sprintf("node %d: %+v", i, st.Rebalance)
				}
			}
			var cur int64
			for _, sz := range blockFiles(filepath.Join(c.Node(n).DataDir(), "data")) {
				cur += sz
			}
			stable := cur == prevNew && cur > 0
			prevNew = cur
			if !stable {
				time.Sleep(time.Second)
			}
			return stable, fmt.Sprintf("new node holds %d block bytes", cur)
		})
		elapsed := time.Since(start)
		stopSampler()
		<-samplerDone
		stopReader()
		readerWG.Wait()
		for _, err := range readerErrs {
			t.Error(err)
		}
		l, err := c.Layout(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var moved, onNew int64
		for i := range c.Len() {
			for p, s := range blockFiles(filepath.Join(c.Node(i).DataDir(), "data")) {
				if _, had := before[i][p]; !had {
					moved += s
					if i == n {
						onNew += s
					}
				}
			}
		}
		complete := elapsed
		for i := len(samples) - 1; i >= 0 && samples[i].bytes >= onNew; i-- {
			complete = samples[i].at
		}
		t.Logf("the new node held its whole share (%d bytes) %s after it started; every node reported its rebalance finished after %s",
			onNew, complete.Round(time.Millisecond), elapsed.Round(time.Millisecond))
		report(t, l.LastChange, moved, onNew, total, complete, reads.Load())
		checkZones(ctx, t, c, 3)
		checkAll(ctx, t, cls, []int{n}, w, sizes)
	})
}

// grepLog returns the last n lines of log containing word.
func grepLog(log, word string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

// report logs the rebalance figures: bytes moved against the ideal minimum.
func report(t *testing.T, lc *admin.LayoutChange, moved, onNew, total int64, elapsed time.Duration, reads int64) {
	t.Helper()
	if lc == nil {
		t.Errorf("layout show reports no last change")
		return
	}
	// Each partition replica holds about total/(256*RF... summed over RF) = total/256/RF*RF bytes:
	// total counts every replica, so one partition replica is total/(256*3).
	perReplica := float64(total) / (256 * 3)
	ideal := int64(perReplica * float64(lc.Minimum))
	ratio := 0.0
	if ideal > 0 {
		ratio = float64(moved) / float64(ideal)
	}
	t.Logf("REBALANCE v%d->v%d: %d partition replicas moved (minimum %d); %d block bytes moved (%d to the new node) vs ideal minimum ~%d (%.2fx); %s; %.2f MiB/s; reader did %d GETs meanwhile",
		lc.From, lc.To, lc.Moved, lc.Minimum, moved, onNew, ideal, ratio, elapsed.Round(time.Millisecond),
		float64(moved)/(1<<20)/elapsed.Seconds(), reads)
	if lc.Moved > lc.Minimum+lc.Minimum/10 {
		t.Errorf("layout moved %d partition replicas, more than 110%% of the minimum %d", lc.Moved, lc.Minimum)
	}
}

// readLoop reads random acknowledged keys from random nodes until ctx ends;
// a missing object or a version older than the one acknowledged before the
// read started is an error.
func readLoop(ctx context.Context, cls clients, w *written, sizes map[string]int, reads *atomic.Int64) []error {
	keys := w.keys()
	var errs []error
	r := rand.New(rand.NewPCG(1, 2))
	for ctx.Err() == nil && len(errs) < 10 {
		k := keys[r.IntN(len(keys))]
		node := r.IntN(len(cls))
		want, _ := w.get(k)
		gctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		body, err := get(gctx, cls[node], k)
		cancel()
		if ctx.Err() != nil {
			break
		}
		reads.Add(1)
		switch {
		case isNotFound(err):
			errs = append(errs, fmt.Errorf("reader: node %d: %s missing", node, k))
		case err != nil:
			errs = append(errs, fmt.Errorf("reader: node %d GET %s: %w", node, k, err))
		default:
			got, err := versionOf(k, body)
			if err != nil || got < want || !bytes.Equal(body, content(k, got, sizes[k])) {
				errs = append(errs, fmt.Errorf("reader: node %d: %s stale or damaged: version %d, acknowledged %d (%v)", node, k, got, want, err))
			}
		}
	}
	return errs
}

// merkleConverged compares, for every replicated table and partition, the
// roots reported by the partition's replicas.
func merkleConverged(ctx context.Context, c *harness.MultiCluster) (bool, string) {
	l, err := c.Layout(ctx, 0)
	if err != nil {
		return false, err.Error()
	}
	if len(l.Versions) != 1 {
		return false, fmt.Sprintf("%d live layouts", len(l.Versions))
	}
	v := l.Versions[0]
	idx := map[string]int{}
	for i := range c.Len() {
		idx[c.ID(i)] = i
	}
	for _, table := range []string{"object", "version", "block_ref", "upload", "bucket", "bucket_name", "key"} {
		roots := map[int]admin.MerkleRoots{}
		for i := range c.Len() {
			m, err := c.Admin(i).MerkleRoots(ctx, table)
			if err != nil {
				return false, fmt.Sprintf("node %d %s roots: %v", i, table, err)
			}
			roots[i] = m
		}
		for p, reps := range v.Partitions {
			ref := ""
			for _, id := range reps {
				r := roots[idx[id]].Roots[strconv.Itoa(p)]
				if ref == "" {
					ref = r
				} else if r != ref {
					return false, fmt.Sprintf("table %s partition %d: roots differ between replicas", table, p)
				}
			}
		}
	}
	return true, ""
}
