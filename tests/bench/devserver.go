package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/entrepot/entrepot/tests/harness"
)

// ServerStats is what -start-dev measured on the server process.
type ServerStats struct {
	PID                 int           `json:"pid"`
	StartToFirstRequest time.Duration `json:"start_to_first_request_ns"`
	IdleRSS             int64         `json:"idle_rss_bytes"`
	PeakRSS             int64         `json:"peak_rss_bytes"` // VmHWM at the end of the run
	Phases              []PhaseServer `json:"phases"`
}

// PhaseServer is the server's peak RSS (sampled every 50 ms) and CPU use
// (share of one core) during one phase.
type PhaseServer struct {
	Phase   string  `json:"phase"`
	PeakRSS int64   `json:"peak_rss_bytes"`
	Cores   float64 `json:"cores"`
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times; it is 100
// on every Linux architecture Go supports for this tool.
const clockTicks = 100

type devServer struct {
	node     *harness.Node
	pid      int
	endpoint string
	creds    harness.Credentials
	tmpDir   string
	builder  *harness.Builder
	log      *slog.Logger

	mu       sync.Mutex
	stats    ServerStats
	cur      *PhaseServer
	curStart time.Time
	curTicks int64
	stop     chan struct{}
	done     chan struct{}
}

func resolveBin(ctx context.Context, cfg Config, b *harness.Builder) (string, error) {
	if cfg.Bin != "" {
		return filepath.Abs(cfg.Bin)
	}
	ctx, cancel := context.WithTimeout(ctx, harness.BuildTimeout)
	defer cancel()
	return b.Path(ctx) // ENTREPOT_BIN, else go build of ./cli/entrepot
}

func startDev(ctx context.Context, cfg Config, log *slog.Logger) (*devServer, error) {
	d := &devServer{builder: &harness.Builder{}, log: log}
	bin, err := resolveBin(ctx, cfg, d.builder)
	if err != nil {
		return nil, err
	}
	dataDir := cfg.DataDir
	if dataDir == "" {
		d.tmpDir, err = os.MkdirTemp("", "entrepot-bench-")
		if err != nil {
			return nil, fmt.Errorf("make data dir: %w", err)
		}
		dataDir = filepath.Join(d.tmpDir, "node0")
	}
	d.node, err = harness.NewNode(harness.NodeConfig{Bin: bin, DataDir: dataDir, StartTimeout: 30 * time.Second})
	if err != nil {
		d.Close()
		return nil, err
	}
	d.endpoint = d.node.Endpoint()
	t0 := time.Now()
	if err := d.node.Spawn(); err != nil {
		d.Close()
		return nil, err
	}
	d.pid = d.node.PID()
	// Poll every 2 ms for the credentials file, then for a served
	// ListBuckets: that instant is "first served request".
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var cl *s3.Client
	for cl == nil || d.stats.StartToFirstRequest == 0 {
		if cl == nil {
			if c, err := d.node.Credentials(); err == nil {
				d.creds = c
				cl = newClient(Config{Workers: 1, Region: c.Region, PayloadSigning: "unsigned"}, d.endpoint, c.AccessKeyID, c.SecretAccessKey)
			}
		}
		if cl != nil {
			rctx, rcancel := context.WithTimeout(wctx, time.Second)
			_, err := cl.ListBuckets(rctx, &s3.ListBucketsInput{})
			rcancel()
			if err == nil {
				d.stats.StartToFirstRequest = time.Since(t0)
				break
			}
		}
		if !d.node.Running() || wctx.Err() != nil {
			err := fmt.Errorf("dev server did not serve S3 within 30 s (exit: %q)\n%s", d.node.LastExit(), d.node.LogTail(30))
			d.Close()
			return nil, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(time.Second) // let start-up allocations settle before "idle"
	d.stats.PID = d.pid
	d.stats.IdleRSS, _ = d.readStatus("VmRSS")
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go d.sample()
	return d, nil
}

func (d *devServer) readStatus(field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(d.pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read server status: %w", err)
	}
	return parseProcStatus(string(b), field)
}

func (d *devServer) cpuTicks() int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(d.pid) + "/stat")
	if err != nil {
		return 0
	}
	n, _ := parseProcStatCPU(string(b))
	return n
}

func (d *devServer) sample() {
	defer close(d.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		rss, err := d.readStatus("VmRSS")
		if err != nil {
			continue
		}
		d.mu.Lock()
		if d.cur != nil && rss > d.cur.PeakRSS {
			d.cur.PeakRSS = rss
		}
		d.mu.Unlock()
	}
}

func (d *devServer) mark(phase string) {
	ticks := d.cpuTicks()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cur = &PhaseServer{Phase: phase}
	d.curStart, d.curTicks = time.Now(), ticks
}

func (d *devServer) unmark() {
	ticks := d.cpuTicks()
	rss, _ := d.readStatus("VmRSS")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		return
	}
	if rss > d.cur.PeakRSS {
		d.cur.PeakRSS = rss
	}
	if el := time.Since(d.curStart).Seconds(); el > 0 {
		d.cur.Cores = float64(ticks-d.curTicks) / clockTicks / el
	}
	d.stats.Phases = append(d.stats.Phases, *d.cur)
	d.cur = nil
}

// finish stops sampling and returns the stats, with VmHWM as the peak.
func (d *devServer) finish() ServerStats {
	if d.stop != nil {
		close(d.stop)
		<-d.done
		d.stop = nil
	}
	d.stats.PeakRSS, _ = d.readStatus("VmHWM")
	return d.stats
}

// Close stops the server (SIGTERM, then SIGKILL) and removes a temporary
// data directory.
func (d *devServer) Close() {
	if d.node != nil && d.node.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := d.node.Stop(ctx); err != nil {
			d.log.Warn("stop dev server", "err", err)
		}
		cancel()
	}
	if d.tmpDir != "" {
		_ = os.RemoveAll(d.tmpDir)
	}
	d.builder.Cleanup()
}
