package crash

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/entrepot/entrepot/tests/harness"
)

// slowReader hands out data with a pause before every chunk bytes.
type slowReader struct {
	data  []byte
	chunk int
	pause time.Duration
	sent  int // since the last pause
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.sent >= r.chunk {
		time.Sleep(r.pause)
		r.sent = 0
	}
	n := copy(p[:min(len(p), r.chunk-r.sent)], r.data)
	r.data = r.data[n:]
	r.sent += n
	return n, nil
}

// TestGracefulStopFinishesInFlight sends SIGTERM while a slow upload is in
// flight: the upload must still get its 200, the process must exit 0, and
// after a restart the object and the dev credentials are there.
func TestGracefulStopFinishesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	node, err := harness.NewNode(harness.NodeConfig{Bin: harness.Bin(t), DataDir: filepath.Join(t.TempDir(), "node0")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Kill()
		if t.Failed() {
			t.Logf("--- node log tail (%s) ---\n%s", node.LogPath(), node.LogTail(40))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	creds, err := node.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	cl := harness.NewS3Client(node.Endpoint(), creds, nil, func(o *s3.Options) {
		o.Retryer = aws.NopRetryer{}
		// A streamed body over plain HTTP: no checksum, unsigned payload.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	body := content("slow", 0, 6*mib)
	putDone := make(chan error, 1)
	go func() {
		_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("slow"),
			Body: &slowReader{data: body, chunk: 256 * kib, pause: 40 * time.Millisecond}, ContentLength: aws.Int64(int64(len(body)))})
		putDone <- err
	}()
	time.Sleep(300 * time.Millisecond) // the upload is now mid-body
	stopped := make(chan error, 1)
	select {
	case err := <-putDone:
		t.Fatalf("the slow PUT ended (%v) before SIGTERM: nothing was in flight", err)
	default:
	}
	go func() { stopped <- node.Stop(ctx) }()
	select {
	case err := <-putDone:
		if err != nil {
			t.Fatalf("in-flight PUT during graceful stop: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("in-flight PUT did not finish within a minute")
	}
	t0 := time.Now()
	if err := <-stopped; err != nil {
		t.Fatalf("graceful stop: %v (last exit %q)", err, node.LastExit())
	}
	t.Logf("process exited %s after the PUT was answered", time.Since(t0).Round(time.Millisecond))
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := node.Credentials()
	if err != nil || again != creds {
		t.Fatalf("dev credentials changed across a restart: %+v vs %+v (%v)", again, creds, err)
	}
	got, err := getObject(ctx, cl, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(body) {
		t.Fatalf("object after graceful stop: %d bytes, want %d identical", len(got), len(body))
	}
}
