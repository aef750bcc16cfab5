package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Errors of calls.
var (
	ErrNoHandler = errors.New("rpc: no such method")
	ErrQuorum    = errors.New("rpc: quorum not reached")
)

// RemoteError is an error returned by the remote handler. Code lets services
// map it back to their sentinels.
type RemoteError struct {
	Peer peer.ID
	Code string
	Msg  string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("rpc: %s from %s: %s", e.Code, e.Peer.ShortString(), e.Msg)
}

// CodedError lets a handler choose the Code its caller sees.
type CodedError interface {
	error
	RPCCode() string
}

// Handler serves one method of a service.
type Handler func(ctx context.Context, from peer.ID, payload []byte) ([]byte, error)

// ProtocolID is the versioned protocol of a service.
func ProtocolID(service string) protocol.ID {
	return protocol.ID("/entrepot/" + service + "/1")
}

// Config configures a Node.
type Config struct {
	// Host is the libp2p host (required).
	Host host.Host
	// Timeout bounds a call without its own deadline (default 30 s).
	Timeout time.Duration
	// Logger (nil = discard).
	Logger *slog.Logger
}

// Node sends and serves calls.
type Node struct {
	h       host.Host
	timeout time.Duration
	log     *slog.Logger

	mu       sync.RWMutex
	handlers map[string]map[string]Handler // service -> method -> handler
}

// New returns a Node on cfg.Host.
func New(cfg Config) (*Node, error) {
	if cfg.Host == nil {
		return nil, errors.New("rpc: Host is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Node{h: cfg.Host, timeout: cfg.Timeout, log: log.With("component", "rpc"), handlers: map[string]map[string]Handler{}}, nil
}

// Self is this node's ID.
func (n *Node) Self() peer.ID { return n.h.ID() }

// Handle registers method of service. The first registration of a service
// installs its stream handler.
func (n *Node) Handle(service, method string, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.handlers[service]
	if !ok {
		m = map[string]Handler{}
		n.handlers[service] = m
		n.h.SetStreamHandler(ProtocolID(service), func(s network.Stream) { n.serve(service, s) })
	}
	m[method] = h
}

func (n *Node) handler(service, method string) (Handler, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	h, ok := n.handlers[service][method]
	return h, ok
}

func (n *Node) serve(service string, s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(n.timeout))
	req, err := readFrame(bufio.NewReader(s))
	if err != nil || req.kind != kindRequest {
		s.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	out, err := n.dispatch(ctx, s.Conn().RemotePeer(), service, req.method, req.payload)
	resp := frame{kind: kindOK, payload: out}
	if err != nil {
		resp = errorFrame(err)
	}
	if err := writeFrame(s, resp); err != nil {
		s.Reset()
	}
}

func errorFrame(err error) frame {
	code := "internal"
	var ce CodedError
	if errors.As(err, &ce) {
		code = ce.RPCCode()
	} else if errors.Is(err, ErrNoHandler) {
		code = "no-handler"
	}
	return frame{kind: kindError, method: code, payload: []byte(err.Error())}
}

func (n *Node) dispatch(ctx context.Context, from peer.ID, service, method string, payload []byte) ([]byte, error) {
	h, ok := n.handler(service, method)
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s", ErrNoHandler, service, method)
	}
	return h(ctx, from, payload)
}

// Call sends one request to peer to and waits for its answer. A call to this
// node itself runs the handler directly.
func (n *Node) Call(ctx context.Context, to peer.ID, service, method string, payload []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.timeout)
		defer cancel()
	}
	if to == n.h.ID() {
		out, err := n.dispatch(ctx, to, service, method, payload)
		if err != nil {
			f := errorFrame(err)
			return nil, &RemoteError{Peer: to, Code: f.method, Msg: string(f.payload)}
		}
		return out, nil
	}
	s, err := n.h.NewStream(ctx, to, ProtocolID(service))
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", to.ShortString(), err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := writeFrame(s, frame{kind: kindRequest, method: method, payload: payload}); err != nil {
		s.Reset()
		return nil, fmt.Errorf("send to %s: %w", to.ShortString(), err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, fmt.Errorf("send to %s: %w", to.ShortString(), err)
	}
	resp, err := readFrame(bufio.NewReader(s))
	if err != nil {
		s.Reset()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("call %s: %w", to.ShortString(), ctx.Err())
		}
		return nil, fmt.Errorf("read from %s: %w", to.ShortString(), err)
	}
	switch resp.kind {
	case kindOK:
		return resp.payload, nil
	case kindError:
		return nil, &RemoteError{Peer: to, Code: resp.method, Msg: string(resp.payload)}
	}
	return nil, fmt.Errorf("%w: unexpected kind %d", ErrFrame, resp.kind)
}

// Reply is one member's answer in a quorum call.
type Reply struct {
	Peer    peer.ID
	Payload []byte
	Err     error
}

// QuorumCall sends the request to every peer in parallel and returns once need
// of them succeeded (their replies, in arrival order), or with ErrQuorum once
// that has become impossible. Calls still running when it returns go on in the
// background until they finish or background is cancelled, so the remaining
// replicas still receive a write; pass the daemon's lifetime context as background.
func (n *Node) QuorumCall(ctx, background context.Context, peers []peer.ID, need int, service, method string, payload []byte) ([]Reply, error) {
	if need > len(peers) {
		return nil, fmt.Errorf("%w: need %d of %d members", ErrQuorum, need, len(peers))
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.timeout)
	}
	ch := make(chan Reply, len(peers))
	for _, p := range peers {
		go func(p peer.ID) {
			cctx, cancel := context.WithDeadline(background, deadline)
			defer cancel()
			out, err := n.Call(cctx, p, service, method, payload)
			ch <- Reply{Peer: p, Payload: out, Err: err}
		}(p)
	}
	var ok2, failed []Reply
	for range peers {
		select {
		case r := <-ch:
			if r.Err == nil {
				ok2 = append(ok2, r)
				if len(ok2) >= need {
					return ok2, nil
				}
			} else {
				failed = append(failed, r)
				if len(peers)-len(failed) < need {
					return ok2, quorumErr(need, len(peers), failed)
				}
			}
		case <-ctx.Done():
			return ok2, fmt.Errorf("%w: %w", ErrQuorum, ctx.Err())
		}
	}
	return ok2, quorumErr(need, len(peers), failed)
}

func quorumErr(need, total int, failed []Reply) error {
	errs := []error{fmt.Errorf("%w: %d of %d answered, need %d", ErrQuorum, total-len(failed), total, need)}
	for _, f := range failed {
		errs = append(errs, f.Err)
	}
	return errors.Join(errs...)
}
