package natpunch

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

type mappingKey struct {
	proto Proto
	port  uint16
}

// mapping is the state of one requested mapping. Fields are written with
// both c.op and c.mu held, and read with either.
type mapping struct {
	req         MappingRequest
	nonce       [12]byte
	mapper      mapper
	external    netip.AddrPort
	lease       time.Duration // granted; 0 = permanent
	up          bool
	mappedAt    time.Time
	renewAt     time.Time
	expiresAt   time.Time
	nextAttempt time.Time
	renewals    int
	failures    int
	lastErr     error
}

// Client maps ports on the home router and keeps them mapped. Create it
// with New, ask for ports with Map, run renewal with Run, stop with Close.
type Client struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	m     *metrics
	http  *http.Client // for UPnP descriptions and SOAP: no proxy, no keep-alive

	op          chan struct{} // held during router operations
	closeCtx    context.Context
	closeCancel context.CancelFunc
	wake        chan struct{}
	events      chan Event

	mu           sync.Mutex
	mappings     map[mappingKey]*mapping
	order        []mappingKey
	gw           *gatewayState
	nextProbe    time.Time
	probeFails   int
	lastProbeErr error
	nextCheck    time.Time
	nextWrite    time.Time // double-NAT write gate
	closed       bool
	eventsDone   bool
	running      bool
}

// New returns a Client; it does no I/O.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register natpunch metrics: %w", err)
	}
	for _, meth := range cfg.Methods {
		if meth != MethodNATPMP && meth != MethodPCP && meth != MethodUPnP {
			return nil, fmt.Errorf("new natpunch client: unknown method %q", meth)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "natpunch"),
		clock: cfg.Clock,
		m:     m,
		http: &http.Client{Timeout: cfg.RequestTimeout, Transport: &http.Transport{
			Proxy:             nil, // the gateway is on the LAN: never through HTTP_PROXY
			DialContext:       (&net.Dialer{Timeout: cfg.RequestTimeout}).DialContext,
			DisableKeepAlives: true, // a restarted router leaves dead keep-alive connections
		}},
		op:          make(chan struct{}, 1),
		closeCtx:    ctx,
		closeCancel: cancel,
		wake:        make(chan struct{}, 1),
		events:      make(chan Event, 64),
		mappings:    map[mappingKey]*mapping{},
	}, nil
}

// Events returns the event channel. It is closed by Close. When the
// consumer is slow the oldest events are dropped; every event carries the
// whole candidate set.
func (c *Client) Events() <-chan Event { return c.events }

// lock takes the router-operation lock and returns a context that also
// ends when the client is closed.
func (c *Client) lock(ctx context.Context) (context.Context, func(), error) {
	if c.closeCtx.Err() != nil {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.closeCtx, cancel)
	select {
	case c.op <- struct{}{}:
	case <-ctx.Done():
		stop()
		cancel()
		if c.closeCtx.Err() != nil {
			return nil, nil, ErrClosed
		}
		return nil, nil, ctx.Err()
	}
	return ctx, func() { <-c.op; stop(); cancel() }, nil
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Map asks for a port to be mapped and keeps it mapped until Unmap or
// Close. It tries at once (probing the gateway first if needed) and returns
// the mapping obtained; on error the request stays registered and Run keeps
// retrying with back-off.
func (c *Client) Map(ctx context.Context, req MappingRequest) (*Mapping, error) {
	if !req.Proto.valid() || req.InternalPort == 0 {
		return nil, fmt.Errorf("map %s %d: %w", req.Proto, req.InternalPort, ErrBadRequest)
	}
	if req.ExternalPort == 0 {
		req.ExternalPort = req.InternalPort
	}
	ctx, unlock, err := c.lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("map %s %d: %w", req.Proto, req.InternalPort, err)
	}
	defer unlock()
	defer c.poke()
	key := mappingKey{req.Proto, req.InternalPort}
	c.mu.Lock()
	m, ok := c.mappings[key]
	if !ok {
		m = &mapping{req: req}
		_, _ = rand.Read(m.nonce[:])
		c.mappings[key] = m
		c.order = append(c.order, key)
		c.m.mappingUp.WithLabelValues(string(req.Proto), portLabel(req.InternalPort)).Set(0)
	} else {
		m.req.Service = req.Service
	}
	up := m.up
	c.mu.Unlock()
	if up {
		return c.snapshot(m), nil
	}
	if c.gwState() == nil {
		if err := c.probeNow(ctx, "map"); err != nil {
			return nil, fmt.Errorf("map %s %d: %w", req.Proto, req.InternalPort, err)
		}
	}
	if err := c.tryMap(ctx, m); err != nil {
		return nil, fmt.Errorf("map %s %d: %w", req.Proto, req.InternalPort, err)
	}
	return c.snapshot(m), nil
}

// Unmap stops maintaining a mapping and removes it from the router.
func (c *Client) Unmap(ctx context.Context, proto Proto, internalPort uint16) error {
	ctx, unlock, err := c.lock(ctx)
	if err != nil {
		return fmt.Errorf("unmap %s %d: %w", proto, internalPort, err)
	}
	defer unlock()
	key := mappingKey{proto, internalPort}
	c.mu.Lock()
	m, ok := c.mappings[key]
	if ok {
		delete(c.mappings, key)
		for i, k := range c.order {
			if k == key {
				c.order = append(c.order[:i:i], c.order[i+1:]...)
				break
			}
		}
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	c.m.mappingUp.DeleteLabelValues(string(proto), portLabel(internalPort))
	return c.release(ctx, m)
}

// release deletes m from the router if it is held.
func (c *Client) release(ctx context.Context, m *mapping) error {
	c.mu.Lock()
	up, mp, ext := m.up, m.mapper, m.external
	spec := c.specLocked(m)
	c.mu.Unlock()
	if !up || mp == nil {
		return nil
	}
	c.m.writes.WithLabelValues(string(mp.method())).Inc()
	err := mp.remove(ctx, spec, ext.Port())
	if err == nil && mp.method() == MethodUPnP {
		// A successful delete is no proof (nat.md pitfall 8): read it back
		// and delete once more. PMP/PCP have no read operation.
		if still, verr := mp.verify(ctx, spec, ext.Port()); verr == nil && still {
			c.m.writes.WithLabelValues(string(mp.method())).Inc()
			_ = mp.remove(ctx, spec, ext.Port())
			if still, verr = mp.verify(ctx, spec, ext.Port()); verr == nil && still {
				err = fmt.Errorf("mapping on external port %d still present after delete", ext.Port())
			}
		}
	}
	c.setDown(m, err)
	if err != nil {
		return fmt.Errorf("remove mapping %s %d: %w", m.req.Proto, m.req.InternalPort, err)
	}
	c.log.Info("mapping removed", "proto", m.req.Proto, "internal", m.req.InternalPort, "external", ext)
	return nil
}

// Run maintains the mappings (renewal, health checks, rediscovery) until
// ctx ends or the client is closed. Call it once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("natpunch: Run called twice")
	}
	c.running = true
	c.mu.Unlock()
	for {
		if err := c.Maintain(ctx); err != nil {
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
		}
		d := c.nextWake().Sub(c.clock.Now())
		if d < 0 {
			d = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.closeCtx.Done():
			return nil
		case <-c.wake:
		case <-c.clock.After(d):
		}
	}
}

// dueAt is when m next needs a router write: for a held mapping its
// renewal time (or the retry time after a failed renewal, whichever is
// later), otherwise its retry time. The zero time means now.
func (m *mapping) dueAt() time.Time {
	if m.up && m.renewAt.After(m.nextAttempt) {
		return m.renewAt
	}
	return m.nextAttempt
}

// nextWake is the earliest time something is due.
func (c *Client) nextWake() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	next := now.Add(c.cfg.CheckInterval)
	earlier := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	if c.gw == nil {
		// Without a gateway only a probe can make progress.
		earlier(c.nextProbe)
	} else {
		earlier(c.nextCheck)
		for _, k := range c.order {
			earlier(c.mappings[k].dueAt())
		}
	}
	if next.Before(now) {
		next = now
	}
	return next
}

// Maintain runs one maintenance step: gateway change detection, probing,
// the periodic health check, renewals and retries that are due. Run calls
// it; tests with a manual clock may call it directly.
func (c *Client) Maintain(ctx context.Context) error {
	ctx, unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	now := c.clock.Now()

	if gw := c.gwState(); gw != nil && !c.cfg.Gateway.IsValid() {
		cur, err := c.gatewayAddr()
		if err != nil || cur != gw.gateway {
			c.invalidate("gateway_changed", fmt.Errorf("default gateway changed from %s", gw.gateway))
		} else if !c.cfg.LocalAddr.IsValid() {
			if l, err := localAddrFor(cur); err != nil || l != gw.local {
				c.invalidate("local_addr_changed", fmt.Errorf("local address changed from %s", gw.local))
			}
		}
	}
	c.mu.Lock()
	needProbe := c.gw == nil && !now.Before(c.nextProbe)
	needCheck := c.gw != nil && !now.Before(c.nextCheck)
	c.mu.Unlock()
	if needProbe {
		if err := c.probeNow(ctx, "retry"); err != nil {
			return err
		}
	} else if needCheck {
		if err := c.healthCheck(ctx); err != nil && isUnreachable(err) {
			c.invalidate("router_unreachable", err)
			if err := c.probeNow(ctx, "router_unreachable"); err != nil {
				return err
			}
		}
	}
	if c.gwState() == nil {
		return nil
	}
	now = c.clock.Now()
	c.mu.Lock()
	var due []*mapping
	for _, k := range c.order {
		if m := c.mappings[k]; !now.Before(m.dueAt()) {
			due = append(due, m)
		}
	}
	c.mu.Unlock()
	for _, m := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = c.tryMap(ctx, m)
		if c.gwState() == nil {
			break // the gateway was lost; the next step probes again
		}
	}
	return nil
}

func (c *Client) gwState() *gatewayState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gw
}

// probeNow probes the gateway and installs the result.
func (c *Client) probeNow(ctx context.Context, reason string) error {
	c.mu.Lock()
	if c.gw == nil && c.lastProbeErr != nil && c.clock.Now().Before(c.nextProbe) {
		err := c.lastProbeErr
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	probeStart := time.Now()
	st, err := c.probe(ctx)
	now := c.clock.Now()
	if err != nil {
		c.mu.Lock()
		c.probeFails++
		c.nextProbe = now.Add(backoff(c.cfg.RetryMin, c.cfg.RetryMax, c.probeFails))
		first := c.lastProbeErr == nil
		c.lastProbeErr = err
		c.mu.Unlock()
		if first {
			c.log.Info("no usable gateway", "err", err, "took", time.Since(probeStart).Round(time.Millisecond))
			c.emit(EventGateway, nil) // once per outage, not per retry
		} else {
			c.log.Debug("no usable gateway", "err", err)
		}
		return err
	}
	methods := make([]Method, 0, len(st.mappers))
	for _, mp := range st.mappers {
		methods = append(methods, mp.method())
	}
	c.mu.Lock()
	c.gw = st
	c.probeFails = 0
	c.lastProbeErr = nil
	c.nextCheck = now.Add(c.cfg.CheckInterval)
	if !st.doubleNAT {
		c.nextWrite = time.Time{}
	}
	c.mu.Unlock()
	c.setDoubleNAT(st.doubleNAT)
	c.log.Info("gateway probed", "reason", reason, "gateway", st.gateway, "local", st.local, "methods", methods,
		"external", st.ext, "double_nat", st.doubleNAT, "igd", st.igd, "took", st.took)
	c.emit(EventGateway, nil)
	return nil
}

func (c *Client) setDoubleNAT(v bool) {
	if v {
		c.m.doubleNAT.Set(1)
	} else {
		c.m.doubleNAT.Set(0)
	}
}

// invalidate forgets the gateway: every mapping is marked down and the
// next step probes again at once.
func (c *Client) invalidate(reason string, cause error) {
	c.mu.Lock()
	if c.gw == nil {
		c.mu.Unlock()
		return
	}
	c.gw = nil
	c.nextProbe = time.Time{}
	c.lastProbeErr = nil
	var lost []*mapping
	for _, k := range c.order {
		m := c.mappings[k]
		m.nextAttempt = time.Time{}
		if m.up {
			lost = append(lost, m)
		}
		m.mapper = nil // it belongs to the old gateway state
	}
	c.mu.Unlock()
	c.m.rediscoveries.WithLabelValues(reason).Inc()
	c.log.Info("rediscovering gateway", "reason", reason, "cause", cause)
	for _, m := range lost {
		c.setDown(m, cause)
	}
}

// healthCheck reads the router: external address, PMP/PCP epoch, and for
// UPnP whether each mapping is still there. It writes nothing itself;
// lost mappings are marked down so the caller re-adds them.
func (c *Client) healthCheck(ctx context.Context) error {
	gw := c.gwState()
	c.mu.Lock()
	c.nextCheck = c.clock.Now().Add(c.cfg.CheckInterval)
	held := map[mapper][]*mapping{}
	for _, k := range c.order {
		if m := c.mappings[k]; m.up && m.mapper != nil {
			held[m.mapper] = append(held[m.mapper], m)
		}
	}
	c.mu.Unlock()
	checked := false
	for _, mp := range gw.mappers {
		ms := held[mp]
		if len(ms) == 0 && checked {
			continue
		}
		checked = true
		ext, rebooted, err := mp.check(ctx)
		if err != nil {
			if isUnreachable(err) {
				return err
			}
			if errors.Is(err, ErrDoubleNAT) {
				c.updateExternal(netip.Addr{}, true)
			}
			continue
		}
		if ext.IsValid() || mp.method() != MethodPCP {
			c.updateExternal(ext, !usableExternal(ext, c.cfg.PublicPrefixes))
		}
		if rebooted {
			c.m.rediscoveries.WithLabelValues("router_restarted").Inc()
			c.log.Info("router restarted (epoch went back); re-adding mappings", "method", mp.method())
			for _, m := range ms {
				c.setDown(m, errors.New("router restarted"))
			}
			continue
		}
		for _, m := range ms {
			c.mu.Lock()
			spec, ext := c.specLocked(m), m.external
			c.mu.Unlock()
			ok, err := mp.verify(ctx, spec, ext.Port())
			if err != nil {
				if isUnreachable(err) {
					return err
				}
				continue
			}
			if !ok {
				c.log.Info("mapping lost on the router; re-adding", "proto", m.req.Proto, "external", ext)
				c.setDown(m, errors.New("mapping no longer on the router"))
			}
		}
	}
	return nil
}

// updateExternal records the router's external address and double-NAT
// state, updating held mappings and emitting an event on change.
func (c *Client) updateExternal(ext netip.Addr, doubleNAT bool) {
	c.mu.Lock()
	gw := c.gw
	if gw == nil {
		c.mu.Unlock()
		return
	}
	changed := false
	if ext.IsValid() && ext != gw.ext {
		if gw.ext.IsValid() {
			c.m.externalChanges.Inc()
		}
		gw.ext = ext
		changed = true
		for _, k := range c.order {
			if m := c.mappings[k]; m.up && m.mapper != nil && m.mapper.method() != MethodPCP {
				m.external = netip.AddrPortFrom(ext, m.external.Port())
			}
		}
	}
	if doubleNAT != gw.doubleNAT {
		gw.doubleNAT = doubleNAT
		changed = true
		if !doubleNAT {
			// Mappings became useful again: drop the double-NAT back-off.
			c.nextWrite = time.Time{}
			for _, k := range c.order {
				if m := c.mappings[k]; !m.up {
					m.nextAttempt, m.failures = time.Time{}, 0
				}
			}
		}
	}
	c.mu.Unlock()
	if changed {
		c.setDoubleNAT(doubleNAT)
		c.log.Info("external address", "ip", ext, "double_nat", doubleNAT)
		c.emit(EventGateway, nil)
	}
}

func (c *Client) specLocked(m *mapping) mapSpec {
	var local netip.Addr
	if c.gw != nil {
		local = c.gw.local
	}
	want := m.req.ExternalPort
	if m.external.Port() != 0 {
		want = m.external.Port() // keep the port we had
	}
	desc := "entrepot " + c.cfg.shortID() + " " + m.req.Proto.lower()
	if m.req.Service != "" {
		desc += " " + m.req.Service
	}
	return mapSpec{
		Proto: m.req.Proto, InternalIP: local, InternalPort: m.req.InternalPort, ExternalPort: want,
		Lease: c.cfg.Lease, Description: desc, Nonce: m.nonce, AllowLow: c.cfg.AllowLowPorts, Seed: c.cfg.NodeID,
	}
}

// tryMap creates or renews m on the first protocol that accepts it.
func (c *Client) tryMap(ctx context.Context, m *mapping) error {
	c.mu.Lock()
	gw := c.gw
	if gw == nil {
		c.mu.Unlock()
		return ErrNoGateway
	}
	now := c.clock.Now()
	if gw.doubleNAT && now.Before(c.nextWrite) {
		m.nextAttempt = c.nextWrite
		m.lastErr = ErrBackoff
		c.mu.Unlock()
		return fmt.Errorf("%w until %s (double NAT)", ErrBackoff, c.nextWrite.Format(time.RFC3339))
	}
	if gw.doubleNAT {
		c.nextWrite = now.Add(c.cfg.DoubleNATWriteInterval)
	}
	spec := c.specLocked(m)
	order := make([]mapper, 0, len(gw.mappers))
	for _, mp := range gw.mappers {
		if mp == m.mapper {
			order = append(order, mp) // the current holder first
		}
	}
	for _, mp := range gw.mappers {
		if mp != m.mapper {
			order = append(order, mp)
		}
	}
	wasUp, prevMapper, prevExt := m.up, m.mapper, m.external
	c.mu.Unlock()

	var lastErr error
	for i, mp := range order {
		if i > 0 && gw.doubleNAT {
			break // one write per interval under double NAT
		}
		c.m.writes.WithLabelValues(string(mp.method())).Inc()
		ext, lease, err := mp.add(ctx, spec)
		if err == nil {
			c.mapped(m, mp, ext, lease, wasUp && prevMapper == mp && prevExt == ext)
			return nil
		}
		lastErr = err
		code := "transport"
		var re *RouterError
		if errors.As(err, &re) {
			code = strconv.Itoa(re.Code)
		}
		c.m.failures.WithLabelValues(string(spec.Proto), portLabel(spec.InternalPort), string(mp.method()), code).Inc()
		c.log.Info("mapping attempt failed", "method", mp.method(), "proto", spec.Proto,
			"internal", spec.InternalPort, "external", spec.ExternalPort, "err", err)
		if errors.Is(err, ErrDoubleNAT) {
			c.updateExternal(netip.Addr{}, true)
		}
		if isUnreachable(err) {
			c.recordFailure(m, err)
			c.invalidate("router_unreachable", err)
			return err
		}
		if mp == prevMapper && wasUp && (errors.Is(err, ErrConflict) || errors.Is(err, ErrRefused)) {
			// The holder gave our port away or refuses us: the mapping is
			// gone. Other failures keep it up until its lease ends (the
			// health check reads UPnP mappings back).
			c.setDown(m, err)
			wasUp = false
		}
	}
	c.recordFailure(m, lastErr)
	return lastErr
}

func (c *Client) recordFailure(m *mapping, err error) {
	c.mu.Lock()
	now := c.clock.Now()
	m.failures++
	m.lastErr = err
	d := backoff(c.cfg.RetryMin, c.cfg.RetryMax, m.failures)
	if c.gw != nil && c.gw.doubleNAT {
		d = backoff(c.cfg.DoubleNATWriteInterval, c.cfg.DoubleNATBackoffMax, m.failures)
	}
	m.nextAttempt = now.Add(d)
	expired := m.up && !m.expiresAt.IsZero() && !now.Before(m.expiresAt)
	c.mu.Unlock()
	if expired {
		c.setDown(m, err)
	}
}

func (c *Client) mapped(m *mapping, mp mapper, ext netip.AddrPort, lease time.Duration, same bool) {
	now := c.clock.Now()
	c.mu.Lock()
	renewBase := lease
	if renewBase == 0 {
		renewBase = c.cfg.Lease
	}
	if !ext.Addr().IsValid() && c.gw != nil {
		ext = netip.AddrPortFrom(c.gw.ext, ext.Port())
	}
	m.mapper, m.external, m.lease, m.up = mp, ext, lease, true
	if !same {
		m.mappedAt = now
	}
	m.renewAt = now.Add(renewBase / 3)
	m.expiresAt = time.Time{}
	if lease > 0 {
		m.expiresAt = now.Add(lease)
	}
	m.nextAttempt = time.Time{}
	m.failures = 0
	m.lastErr = nil
	m.renewals++
	dnat := c.gw != nil && c.gw.doubleNAT
	c.mu.Unlock()
	c.m.renewals.WithLabelValues(string(m.req.Proto), portLabel(m.req.InternalPort)).Inc()
	c.m.mappingUp.WithLabelValues(string(m.req.Proto), portLabel(m.req.InternalPort)).Set(1)
	if mp.method() == MethodPCP && ext.Addr().IsValid() {
		dnat = !usableExternal(ext.Addr(), c.cfg.PublicPrefixes)
		c.updateExternal(ext.Addr(), dnat)
	}
	if !same {
		c.log.Info("mapping up", "method", mp.method(), "proto", m.req.Proto, "internal", m.req.InternalPort,
			"external", ext, "lease", lease, "double_nat", dnat)
		c.emit(EventMappingUp, m)
	}
}

func (c *Client) setDown(m *mapping, cause error) {
	c.mu.Lock()
	was := m.up
	m.up = false
	if cause != nil {
		m.lastErr = cause
	}
	c.mu.Unlock()
	c.m.mappingUp.WithLabelValues(string(m.req.Proto), portLabel(m.req.InternalPort)).Set(0)
	if was {
		c.emit(EventMappingDown, m)
	}
}

func backoff(min, max time.Duration, failures int) time.Duration {
	d := min
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

func portLabel(p uint16) string { return strconv.Itoa(int(p)) }
