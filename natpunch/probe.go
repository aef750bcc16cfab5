package natpunch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// gatewayState is what one probe learnt about the gateway.
type gatewayState struct {
	gateway   netip.Addr
	local     netip.Addr
	mappers   []mapper // usable protocols, in order of preference
	ext       netip.Addr
	doubleNAT bool
	igd       string
	server    string
	probedAt  time.Time
	took      time.Duration
}

func (c *Client) gatewayAddr() (netip.Addr, error) {
	if c.cfg.Gateway.IsValid() {
		return c.cfg.Gateway, nil
	}
	return defaultGateway(c.cfg.RouteFile)
}

func (c *Client) localAddr(gw netip.Addr) (netip.Addr, error) {
	if c.cfg.LocalAddr.IsValid() {
		return c.cfg.LocalAddr, nil
	}
	return localAddrFor(gw)
}

// probe finds the gateway and asks it, in parallel, for NAT-PMP, PCP and
// UPnP IGD. It returns ErrNoGateway or ErrNoService when nothing usable
// answered.
func (c *Client) probe(ctx context.Context) (*gatewayState, error) {
	start := time.Now()
	gw, err := c.gatewayAddr()
	if err != nil {
		c.m.probes.WithLabelValues("no_gateway").Inc()
		return nil, err
	}
	local, err := c.localAddr(gw)
	if err != nil {
		c.m.probes.WithLabelValues("no_gateway").Inc()
		return nil, fmt.Errorf("%w: %w", ErrNoGateway, err)
	}
	pmpServer := c.cfg.PMPServer
	if !pmpServer.IsValid() {
		pmpServer = netip.AddrPortFrom(gw, 5351)
	}
	targets := c.cfg.SSDPTargets
	if len(targets) == 0 {
		targets = []netip.AddrPort{netip.AddrPortFrom(gw, 1900), ssdpMulticast}
	}
	st := &gatewayState{gateway: gw, local: local}

	pctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
	defer cancel()
	// Once one protocol answers, the others get AnswerGrace more.
	var answerOnce sync.Once
	answered := func() {
		answerOnce.Do(func() { time.AfterFunc(c.cfg.AnswerGrace, cancel) })
	}
	var (
		wg       sync.WaitGroup
		pmp      *pmpMapper
		pmpExt   netip.Addr
		pmpDNAT  bool
		pcp      *pcpMapper
		upnps    []*upnpMapper
		upnpErr  error
		nReplies = -1
	)
	if c.cfg.uses(MethodNATPMP) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &pmpMapper{server: pmpServer, timeout: c.cfg.RequestTimeout}
			r, err := p.externalAddr(pctx)
			if err != nil {
				return
			}
			p.sawEpoch(r.Epoch)
			answered()
			switch r.Result {
			case pmpResultSuccess:
				p.ext, pmpExt, pmp = r.IP, r.IP, p
			case pmpResultNetFailure: // the router has no usable WAN address
				pmp, pmpDNAT = p, true
			}
		}()
	}
	if c.cfg.uses(MethodPCP) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &pcpMapper{server: pmpServer, client: local, timeout: c.cfg.RequestTimeout}
			if _, err := p.announce(pctx); err == nil {
				answered()
				pcp = p
			}
		}()
	}
	if c.cfg.uses(MethodUPnP) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies, err := ssdpSearch(pctx, local, targets, c.cfg.SSDPGrace, answered)
			if err != nil {
				upnpErr = err
				return
			}
			nReplies = len(replies)
			cands := igdCandidates(replies, gw)
			if len(cands) == 0 {
				return
			}
			// The description fetch gets its own budget: the UDP window
			// may be nearly spent.
			upnps, upnpErr = upnpFromReplies(ctx, c.http, cands, c.cfg.RequestTimeout, c.cfg.AltPorts)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probe gateway %s: %w", gw, err)
	}

	// Pick the UPnP service: a public external address first, then one that
	// answered, then the first.
	var upnp *upnpMapper
	var upnpExt netip.Addr
	for _, u := range upnps {
		ext, _, err := u.check(ctx)
		if err != nil {
			continue
		}
		if upnp == nil || (usableExternal(ext, c.cfg.PublicPrefixes) && !usableExternal(upnpExt, c.cfg.PublicPrefixes)) {
			upnp, upnpExt = u, ext
		}
		if usableExternal(ext, c.cfg.PublicPrefixes) {
			break
		}
	}
	if upnp != nil {
		st.igd, st.server = upnp.identity(), upnp.server
	}
	for _, m := range c.cfg.Methods {
		switch {
		case m == MethodNATPMP && pmp != nil:
			st.mappers = append(st.mappers, pmp)
		case m == MethodPCP && pcp != nil:
			st.mappers = append(st.mappers, pcp)
		case m == MethodUPnP && upnp != nil:
			st.mappers = append(st.mappers, upnp)
		}
	}
	st.took = time.Since(start)
	st.probedAt = c.clock.Now()
	c.m.probeDuration.Observe(st.took.Seconds())
	if nReplies == 0 && c.cfg.uses(MethodUPnP) {
		c.log.Info("IGD discovery got 0 SSDP replies; if the router has UPnP, check that the host firewall accepts udp sport 1900 from the LAN",
			"gateway", gw)
	} else if upnpErr != nil && upnp == nil {
		c.log.Info("UPnP IGD unusable", "gateway", gw, "err", upnpErr)
	}
	if len(st.mappers) == 0 {
		c.m.probes.WithLabelValues("no_service").Inc()
		return nil, fmt.Errorf("probe gateway %s: %w", gw, ErrNoService)
	}
	c.m.probes.WithLabelValues("ok").Inc()

	// External address and double NAT (nat.md §5).
	switch {
	case pmpExt.IsValid():
		st.ext = pmpExt
	case upnpExt.IsValid():
		st.ext = upnpExt
	}
	switch {
	case pmpDNAT:
		st.doubleNAT = true
	case pmp != nil:
		st.doubleNAT = !usableExternal(pmpExt, c.cfg.PublicPrefixes)
	case upnp != nil:
		st.doubleNAT = !usableExternal(upnpExt, c.cfg.PublicPrefixes)
	}
	return st, nil
}

// isUnreachable reports whether err calls for rediscovering the gateway.
func isUnreachable(err error) bool { return errors.Is(err, errUnreachable) }
