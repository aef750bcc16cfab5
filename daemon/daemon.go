package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/config"
	"github.com/entrepot/entrepot/daemon/metrics"
	"github.com/entrepot/entrepot/daemon/model"
	"github.com/entrepot/entrepot/daemon/s3"
	"github.com/entrepot/entrepot/daemon/table"
)

// The storage layer is the S3 layer's and the admin API's backend.
var (
	_ s3.Backend  = (*model.Store)(nil)
	_ admin.Store = (*model.Store)(nil)
)

// DefaultShutdownTimeout bounds the graceful drain of in-flight requests.
const DefaultShutdownTimeout = 30 * time.Second

// Options are the process-level inputs that do not come from the config file.
type Options struct {
	// Logger receives the daemon's logs; nil = discard.
	Logger *slog.Logger
	// Version is reported in status and metrics; "" = "dev".
	Version string
	// Stdout receives the dev-mode banner (endpoint and credentials); nil = discard.
	Stdout io.Writer
	// ShutdownTimeout bounds how long Run waits for in-flight requests; 0 = 30 s.
	ShutdownTimeout time.Duration
}

// Daemon is one running node.
type Daemon struct {
	cfg   config.Config
	opts  Options
	log   *slog.Logger
	store *model.Store
	reg   *prometheus.Registry
	cl    *clusterNode // nil for a node running alone

	servers []*server
	s3Addr  net.Addr
	tcpAddr net.Addr // admin TCP, nil when disabled

	dev *DevCredentials

	healthy   atomic.Bool
	closed    atomic.Bool
	ready     chan struct{}
	runOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
}

// server is one listener with its HTTP server.
type server struct {
	name string
	l    net.Listener
	srv  *http.Server
}

// New builds the node and binds its listeners; it serves nothing until Run.
// On error everything opened so far is closed.
func New(ctx context.Context, cfg config.Config, opts Options) (d *Daemon, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	d = &Daemon{cfg: cfg, opts: opts, log: opts.Logger.With("component", "daemon"), ready: make(chan struct{})}
	defer func() {
		if err != nil {
			d.Close()
			d = nil
		}
	}()
	start := time.Now()

	d.reg = metrics.NewRegistry(opts.Version)
	var clusterAPI admin.Cluster
	var repl *table.Replicator
	if cfg.RPC.SecretFile != "" {
		if len(cfg.RPC.Secret) == 0 {
			return d, fmt.Errorf("rpc.secret_file %s: the secret was not read (config.Load reads it): %w", cfg.RPC.SecretFile, config.ErrInvalid)
		}
		if d.cl, err = newClusterNode(ctx, cfg, opts, d.reg); err != nil {
			return d, err
		}
		repl = d.cl.repl
	}

	d.store, err = openStore(ctx, cfg, opts, repl)
	if err != nil {
		return d, err
	}
	if d.cl != nil {
		if err := d.cl.enableBlocks(d.store.Blocks(), opts.Logger, d.reg); err != nil {
			return d, err
		}
		clusterAPI = &clusterAdmin{c: d.cl, repl: tableRepl{d.cl.repl}, blocks: blockRepl{d.store.Blocks()}}
	}

	s3h, err := s3.NewHandler(s3.Config{
		Backend:    d.store,
		Region:     cfg.S3.Region,
		RootDomain: cfg.S3.RootDomain,
		Logger:     opts.Logger,
		Registerer: d.reg,
	})
	if err != nil {
		return d, fmt.Errorf("build S3 handler: %w", err)
	}
	// Bind every listener before serving any, so a port conflict fails start-up.
	l, err := net.Listen("tcp", cfg.S3.Listen)
	if err != nil {
		return d, fmt.Errorf("listen for S3 on %s (s3.listen, --s3-listen): %w", cfg.S3.Listen, err)
	}
	d.s3Addr = l.Addr()
	if d.cl != nil {
		s3h = d.cl.serviceUnavailable(s3h)
	}
	d.addServer("s3", l, s3h)
	if err := d.startWeb(); err != nil { // web.go: lifecycle worker, website listener
		return d, err
	}

	api, err := admin.New(admin.Config{
		Store:        d.store,
		Token:        cfg.Admin.Token,
		MetricsToken: cfg.Admin.MetricsToken,
		Metrics:      metrics.Handler(d.reg),
		Healthy:      d.healthy.Load,
		Cluster:      clusterAPI,
		S3Endpoint:   S3Endpoint(d.s3Addr),
		Region:       cfg.S3.Region,
		Logger:       opts.Logger,
	})
	if err != nil {
		return d, fmt.Errorf("build admin API: %w", err)
	}
	adminMetrics, err := metrics.NewHTTP(d.reg, "admin")
	if err != nil {
		return d, fmt.Errorf("register admin metrics: %w", err)
	}

	if cfg.Admin.Socket != "" {
		l, err := admin.ListenUnix(cfg.Admin.Socket)
		if err != nil {
			return d, fmt.Errorf("admin.socket: %w", err)
		}
		d.addServer("admin-socket", l, d.withRequestID(adminMetrics.Wrap(api.LocalHandler())))
	}
	if cfg.Admin.Listen != "" {
		l, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return d, fmt.Errorf("listen for admin on %s (admin.listen, --admin-listen): %w", cfg.Admin.Listen, err)
		}
		d.tcpAddr = l.Addr()
		d.addServer("admin-tcp", l, d.withRequestID(adminMetrics.Wrap(api.RemoteHandler())))
	}

	if cfg.DevDir != "" {
		dc, err := ensureDevKey(ctx, d.store, cfg.DevDir, S3Endpoint(d.s3Addr), cfg.S3.Region)
		if err != nil {
			return d, err
		}
		d.dev = &dc
	}
	if cfg.Admin.Listen != "" && cfg.Admin.Token == "" {
		d.log.Info("admin TCP listener serves only /health and /metrics: no admin.token_file configured", "admin_listen", addrString(d.tcpAddr))
	}
	if !cfg.Fsync {
		d.log.Warn("fsync = false: acknowledged writes can be lost on power failure")
	}
	if d.cl != nil {
		d.log.Info("cluster mode", "node_id", d.cl.host.ID().String(), "rpc", d.cl.host.Addrs(),
			"replication_factor", cfg.ReplicationFactor, "bootstrap", len(cfg.RPC.Bootstrap), "mdns", cfg.RPC.MDNS)
	}
	d.log.Info("node built", "s3", d.s3Addr.String(), "admin_socket", cfg.Admin.Socket,
		"admin_tcp", addrString(d.tcpAddr), "elapsed", time.Since(start).Round(time.Microsecond))
	return d, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (d *Daemon) addServer(name string, l net.Listener, h http.Handler) {
	d.servers = append(d.servers, &server{name: name, l: l, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.log.With("server", name).Handler(), slog.LevelDebug),
	}})
}

// S3Addr is the S3 listener's address (useful with port 0).
func (d *Daemon) S3Addr() net.Addr { return d.s3Addr }

// AdminAddr is the admin TCP listener's address; nil when admin.listen is "".
func (d *Daemon) AdminAddr() net.Addr { return d.tcpAddr }

// AdminSocket is the admin unix socket's path; "" when disabled.
func (d *Daemon) AdminSocket() string { return d.cfg.Admin.Socket }

// DevCredentials returns the dev key; ok is false outside dev mode.
func (d *Daemon) DevCredentials() (DevCredentials, bool) {
	if d.dev == nil {
		return DevCredentials{}, false
	}
	return *d.dev, true
}

// Ready is closed when every listener serves.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Run serves until ctx is cancelled or a listener fails, then stops accepting,
// lets in-flight requests finish (bounded by Options.ShutdownTimeout) and
// returns. It returns nil after a requested shutdown. Call Close afterwards.
func (d *Daemon) Run(ctx context.Context) error {
	err := errors.New("daemon: Run called twice")
	d.runOnce.Do(func() { err = d.run(ctx) })
	return err
}

func (d *Daemon) run(ctx context.Context) error {
	if d.closed.Load() {
		return errors.New("daemon: Run after Close")
	}
	if d.cl != nil {
		d.cl.start()
	}
	errc := make(chan error, len(d.servers))
	for _, s := range d.servers {
		go func(s *server) {
			if err := s.srv.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s on %s: %w", s.name, s.l.Addr(), err)
			}
		}(s)
	}
	if d.dev != nil {
		printDevBanner(d.opts.Stdout, *d.dev, d.cfg) // before Ready: whoever waits on it sees the banner
	}
	d.healthy.Store(true)
	close(d.ready)
	d.log.Info("serving", "s3_endpoint", S3Endpoint(d.s3Addr), "region", d.cfg.S3.Region, "version", d.opts.Version)

	var runErr error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down: finishing in-flight requests", "timeout", d.opts.ShutdownTimeout)
	case runErr = <-errc:
		d.log.Error("listener failed, shutting down", "err", runErr)
	}
	d.healthy.Store(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range d.servers {
		wg.Add(1)
		go func(s *server) {
			defer wg.Done()
			if err := s.srv.Shutdown(sctx); err != nil {
				d.log.Warn("graceful shutdown incomplete; closing connections", "server", s.name, "err", err)
				s.srv.Close()
			}
		}(s)
	}
	wg.Wait()
	d.log.Info("stopped serving")
	return runErr
}

// Close stops every listener (if Run did not already), closes the store, then
// the cluster layer (gossip, p2p host) last. It is idempotent.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.healthy.Store(false)
		var errs []error
		for _, s := range d.servers {
			// Close on a server that never served does not close its listener.
			if err := s.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", s.name, err))
			}
			if err := s.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("close %s listener: %w", s.name, err))
			}
		}
		if d.cl != nil {
			d.cl.stop() // table replication uses the store
		}
		if d.store != nil {
			if err := d.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		if d.cl != nil {
			if err := d.cl.close(); err != nil {
				errs = append(errs, err)
			}
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// S3Endpoint is the URL clients use for the S3 listener at addr; an
// unspecified host (0.0.0.0, ::) is shown as 127.0.0.1.
func S3Endpoint(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
