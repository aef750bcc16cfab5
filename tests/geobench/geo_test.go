package geobench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/tests/harness"
	"github.com/entrepot/entrepot/tests/labe2e"
	"github.com/entrepot/entrepot/tests/netlab"
)

const (
	homes   = 5
	samples = 100
)

// objSize is the object size: 1 KiB (the method's, stored inline) unless
// GEOBENCH_SIZE gives another (bytes, at most 16 MiB), e.g. 65536 for
// objects stored as blocks.
func objSize(t *testing.T) int {
	v := os.Getenv("GEOBENCH_SIZE")
	if v == "" {
		return 1 << 10
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 16<<20 {
		t.Fatalf("GEOBENCH_SIZE=%q: want a byte count from 0 to 16777216", v)
	}
	return n
}

// op is one benchmarked S3 operation; i is the sample number.
type op struct {
	name string
	run  func(ctx context.Context, i int) error
}

func TestGeoLatency(t *testing.T) {
	if os.Getenv("GEOBENCH") == "" {
		t.Skip("geobench: opt-in benchmark, set GEOBENCH=1 (see tests/geobench/run.sh)")
	}
	labe2e.SkipUnlessLab(t)
	link := netlab.LinkConfig{Delay: 25 * time.Millisecond, Jitter: 5 * time.Millisecond}
	cfg := netlab.Config{}
	for i := range homes {
		h := netlab.HomeConfig{Servers: 1, UPnP: netlab.IGDv2, Link: link}
		if i == 0 {
			h.Servers = 2 // h1b hosts the S3 client
		}
		cfg.Homes = append(cfg.Homes, h)
	}
	lab := netlab.NewT(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	// The RTT between homes as the lab delivers it: UDP echo in home 2
	// behind a static forward, probed from home 1.
	h2a := lab.Homes[1].Servers[0]
	echo, err := netlab.StartUDPEcho(h2a, 7007)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	if err := lab.Homes[1].Router.Forward(ctx, "udp", 7007, netip.AddrPortFrom(h2a.Addr, 7007)); err != nil {
		t.Fatal(err)
	}
	rtts, err := netlab.UDPRTT(ctx, lab.Homes[0].Servers[0], netip.AddrPortFrom(lab.Homes[1].Router.Addr, 7007), 30, 2*time.Second)
	if err != nil || len(rtts) < 20 {
		t.Fatalf("RTT probe: %d answers, %v", len(rtts), err)
	}
	rtt := netlab.Summarize(rtts)

	secret := labe2e.WriteSecret(t)
	r1 := lab.Homes[0].Router
	first := labe2e.StartEntrepot(t, lab.Homes[0].Servers[0], labe2e.EntOpts{Zone: "home1", SecretFile: secret, UPnP: true})
	labe2e.RequireNATWired(t, first, r1)
	var rpcExt uint16
	labe2e.WaitFor(t, "home 1 p2p mapping", 20*time.Second, func() bool {
		for _, m := range labe2e.MappingsTo(t, r1, first.Host()) {
			if m.Internal.Port() == 3901 {
				rpcExt = m.ExternalPort
			}
		}
		return rpcExt != 0
	})
	boot := []string{fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", r1.Addr, rpcExt, first.ID())}
	nodes := []*labe2e.EntNode{first}
	for i := 1; i < homes; i++ {
		nodes = append(nodes, labe2e.StartEntrepot(t, lab.Homes[i].Servers[0],
			labe2e.EntOpts{Zone: fmt.Sprintf("home%d", i+1), SecretFile: secret, UPnP: true, Bootstrap: boot}))
	}
	labe2e.WaitFor(t, "layout with 5 nodes everywhere", 3*time.Minute, func() bool { return labe2e.LayoutHas(ctx, nodes, homes) })
	var how map[string]string
	labe2e.WaitFor(t, "every pair connected directly", 3*time.Minute, func() bool {
		var ok bool
		how, ok = labe2e.PairReach(ctx, nodes)
		if !ok {
			return false
		}
		for _, v := range how {
			if v == "relayed" {
				return false
			}
		}
		return true
	})
	replicated := labe2e.BlocksReplicated(ctx, first)

	k, err := first.Admin().CreateKey(ctx, admin.KeyCreateRequest{Name: "geo", CanCreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	creds := harness.Credentials{Region: "us-east-1", AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}
	cl := labe2e.S3From(lab.Homes[0].Servers[1], "http://"+first.Host().Addr.String()+":3900", creds)
	bucket := "geo"
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	size := objSize(t)
	body := make([]byte, max(size, 8))
	rand.Read(body)
	key := func(i int) *string { s := fmt.Sprintf("obj-%03d", i); return &s }
	ops := []op{
		{"PutObject", func(ctx context.Context, i int) error {
			// Each object has its own content (its number in the first
			// bytes): with one shared body, dedup would put every object's
			// block on the same three nodes, local to the client's node or not.
			b := bytes.Clone(body)
			binary.BigEndian.PutUint64(b[:8], uint64(i))
			_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: key(i), Body: bytes.NewReader(b)})
			return err
		}},
		{"GetObject", func(ctx context.Context, i int) error {
			out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: key(i)})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.Copy(io.Discard, out.Body)
			return err
		}},
		{"ListObjects", func(ctx context.Context, i int) error {
			_, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
			return err
		}},
		{"ListBuckets", func(ctx context.Context, i int) error {
			_, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		}},
		{"RemoveObject", func(ctx context.Context, i int) error {
			_, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: key(i)})
			return err
		}},
	}
	// One warm-up request per operation (connection set-up, caches).
	for _, o := range ops {
		if err := o.run(ctx, samples); err != nil {
			t.Fatalf("warm-up %s: %v", o.name, err)
		}
	}
	results := map[string]netlab.Summary{}
	for _, o := range ops {
		var d []time.Duration
		for i := range samples {
			t0 := time.Now()
			if err := o.run(ctx, i); err != nil {
				t.Fatalf("%s #%d: %v", o.name, i, err)
			}
			d = append(d, time.Since(t0))
		}
		results[o.name] = netlab.Summarize(d)
	}
	table := render(rtt, how, replicated, results, size)
	t.Log("\n" + table)
	if out := os.Getenv("GEOBENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%8.1f", float64(d.Microseconds())/1000) }

func render(rtt netlab.Summary, how map[string]string, replicated bool, res map[string]netlab.Summary, objSize int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Geo latency: %d nodes in %d homes, RF 3, one zone per home; client on home 1's LAN; one request at a time, %d samples, %d B objects\n",
		homes, homes, samples, objSize)
	fmt.Fprintf(&b, "Inter-home RTT (UDP, 30 probes): min %s  mean %s  max %s ms\n", ms(rtt.Min), ms(rtt.Mean), ms(rtt.Max))
	direct := 0
	for _, v := range how {
		if v != "relayed" {
			direct++
		}
	}
	fmt.Fprintf(&b, "Node pairs connected without relay: %d/%d; blocks replicated by this build: %v\n", direct, len(how), replicated)
	if !replicated {
		b.WriteString("NOTE: without replication every request is served by the local node: these are not geo figures\n")
	}
	fmt.Fprintf(&b, "\n%-13s %8s %8s %8s %9s\n", "operation", "mean", "min", "max", "mean/RTT")
	for _, name := range []string{"GetObject", "PutObject", "RemoveObject", "ListObjects", "ListBuckets"} {
		s := res[name]
		fmt.Fprintf(&b, "%-13s %s %s %s %9.2f\n", name, ms(s.Mean), ms(s.Min), ms(s.Max), float64(s.Mean)/float64(rtt.Mean))
	}
	b.WriteString("(milliseconds)\n")
	return b.String()
}
