package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/daemon/config"
	"github.com/entrepot/entrepot/daemon/web"
)

// NewWebHandler builds the website listener's handler from the [web]
// section: buckets with a website configuration are served by Host name.
func NewWebHandler(be web.Backend, cfg config.Web, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	h, err := web.NewHandler(web.Config{Backend: be, RootDomain: cfg.RootDomain, Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("build web handler: %w", err)
	}
	return h, nil
}

// startWeb starts the daily lifecycle worker and, when [web] enabled is
// set, binds the website listener (served by Run like the others).
func (d *Daemon) startWeb() error {
	d.store.StartLifecycle(nil)
	if !d.cfg.Web.Enabled || d.cfg.Web.Listen == "" {
		return nil
	}
	h, err := NewWebHandler(d.store, d.cfg.Web, d.opts.Logger, d.reg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", d.cfg.Web.Listen)
	if err != nil {
		return fmt.Errorf("listen for websites on %s (web.listen): %w", d.cfg.Web.Listen, err)
	}
	d.addServer("web", l, h)
	return nil
}

// WebAddr is the website listener's address; nil when it is disabled.
func (d *Daemon) WebAddr() net.Addr {
	for _, s := range d.servers {
		if s.name == "web" {
			return s.l.Addr()
		}
	}
	return nil
}
