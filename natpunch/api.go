package natpunch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Status returns the state of every requested mapping, in request order.
func (c *Client) Status() []MappingStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]MappingStatus, 0, len(c.order))
	for _, k := range c.order {
		out = append(out, c.statusLocked(c.mappings[k]))
	}
	return out
}

func (c *Client) statusLocked(m *mapping) MappingStatus {
	s := MappingStatus{
		Proto: m.req.Proto, InternalPort: m.req.InternalPort, Service: m.req.Service,
		External: m.external, Up: m.up, Lease: m.lease, Permanent: m.up && m.lease == 0,
		MappedAt: m.mappedAt, RenewAt: m.renewAt, ExpiresAt: m.expiresAt, NextAttempt: m.nextAttempt,
		Renewals: m.renewals, Failures: m.failures,
	}
	if c.gw != nil {
		s.Internal = netip.AddrPortFrom(c.gw.local, m.req.InternalPort)
	}
	if m.mapper != nil {
		s.Method = m.mapper.method()
	}
	if !m.up {
		s.RenewAt, s.ExpiresAt = time.Time{}, time.Time{}
	}
	if m.lastErr != nil {
		s.LastError = m.lastErr.Error()
	}
	return s
}

// Gateway returns what the last probe learnt about the gateway.
func (c *Client) Gateway() GatewayStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gatewayLocked()
}

func (c *Client) gatewayLocked() GatewayStatus {
	var g GatewayStatus
	if c.lastProbeErr != nil {
		g.LastError = c.lastProbeErr.Error()
	}
	if c.gw == nil {
		return g
	}
	g.Gateway, g.Local, g.ExternalIP = c.gw.gateway, c.gw.local, c.gw.ext
	g.DoubleNAT, g.IGD, g.Server, g.ProbedAt = c.gw.doubleNAT, c.gw.igd, c.gw.server, c.gw.probedAt
	for _, mp := range c.gw.mappers {
		g.Methods = append(g.Methods, mp.method())
	}
	return g
}

// Candidates returns the external addresses of the mappings held now.
func (c *Client) Candidates() []Candidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.candidatesLocked()
}

func (c *Client) candidatesLocked() []Candidate {
	var out []Candidate
	for _, k := range c.order {
		m := c.mappings[k]
		if !m.up || m.mapper == nil || !m.external.Addr().IsValid() {
			continue
		}
		out = append(out, Candidate{Proto: m.req.Proto, InternalPort: m.req.InternalPort, External: m.external,
			Method: m.mapper.method(), DoubleNAT: c.gw != nil && c.gw.doubleNAT})
	}
	return out
}

func (c *Client) snapshot(m *mapping) *Mapping {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.statusLocked(m)
	return &Mapping{Proto: s.Proto, Internal: s.Internal, External: s.External, Method: s.Method,
		Lease: s.Lease, ExpiresAt: s.ExpiresAt, DoubleNAT: c.gw != nil && c.gw.doubleNAT}
}

// emit sends an event, dropping the oldest one when the buffer is full.
func (c *Client) emit(kind EventKind, m *mapping) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed && kind != EventMappingDown {
		return
	}
	if c.eventsDone {
		return
	}
	ev := Event{Kind: kind, Time: c.clock.Now(), Gateway: c.gatewayLocked(), Candidates: c.candidatesLocked()}
	if m != nil {
		ev.Mapping = c.statusLocked(m)
	}
	for i := 0; i < 2; i++ {
		select {
		case c.events <- ev:
			return
		default:
			select {
			case <-c.events:
			default:
			}
		}
	}
}

// Close removes every mapping from the router and stops the client. It
// returns within Config.CloseTimeout (2 s) even if the router does not
// answer; the error then lists the mappings that could not be removed.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.closeCancel() // aborts in-flight router operations and Run

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.CloseTimeout)
	defer cancel()
	var errs []error
	select {
	case c.op <- struct{}{}:
		defer func() { <-c.op }()
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("close: waiting for router operation: %w", ctx.Err()))
	}
	if len(errs) == 0 {
		c.mu.Lock()
		ms := make([]*mapping, 0, len(c.order))
		for _, k := range c.order {
			ms = append(ms, c.mappings[k])
		}
		c.mu.Unlock()
		var (
			wg sync.WaitGroup
			mu sync.Mutex
		)
		for _, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.release(ctx, m); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	c.mu.Lock()
	c.eventsDone = true
	close(c.events)
	c.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close natpunch: %w", err)
	}
	return nil
}
