package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	ipnet "github.com/libp2p/go-libp2p/p2p/net/pnet"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	mss "github.com/multiformats/go-multistream"
)

// The dial-back check confirms that a candidate external address (a
// router mapping, a public interface address) really reaches this node
// before it is advertised. A node asks a connected member over
// /<namespace>/dialback/1; the member opens a fresh TCP connection to each
// address and runs the private-network and Noise handshakes up to the
// point where the remote has proved it holds this node's key, then hangs
// up before any stream multiplexer is negotiated: the check never creates
// a libp2p connection (so no "peer connected" event, no peer-list entry)
// and works with the cluster PSK, which rules out QUIC and AutoNAT v2's
// separate dialer host.

const (
	dialbackMaxAddrs   = 8
	dialbackMaxMessage = 8 << 10
	dialbackDialTime   = 5 * time.Second
)

// ErrNotConfirmed is returned by the dial-back client when no member could
// reach the address.
var ErrNotConfirmed = errors.New("p2p: address not reachable from any member asked")

type dialbackRequest struct {
	Addrs []string `json:"addrs"`
}

type dialbackResponse struct {
	OK     []bool   `json:"ok"`
	Errors []string `json:"errors,omitempty"`
}

func dialbackProtocol(ns string) protocol.ID { return protocol.ID("/" + ns + "/dialback/1") }

// dialbacker serves and issues dial-back checks.
type dialbacker struct {
	psk   pnet.PSK
	key   crypto.PrivKey
	proto protocol.ID
	sem   chan struct{} // bounds concurrent checks served
	// reached, if set, is told every address a member proved reachable
	// (the serving side): the member then holds the address at once,
	// without waiting for the identify push that advertises it (which
	// libp2p rate-limits per /24 and never retries).
	reached func(id peer.ID, a ma.Multiaddr)
}

func newDialbacker(psk pnet.PSK, key crypto.PrivKey, ns string) *dialbacker {
	return &dialbacker{psk: psk, key: key, proto: dialbackProtocol(ns), sem: make(chan struct{}, 2)}
}

// handle serves a dial-back request from a member.
func (d *dialbacker) handle(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(dialbackDialTime*2 + 5*time.Second))
	req, err := decodeDialbackRequest(s)
	if err != nil {
		_ = s.Reset()
		return
	}
	select {
	case d.sem <- struct{}{}:
		defer func() { <-d.sem }()
	default:
		_ = s.Reset() // busy: the requester asks someone else
		return
	}
	resp := dialbackResponse{OK: make([]bool, len(req)), Errors: make([]string, len(req))}
	target := s.Conn().RemotePeer()
	var wg sync.WaitGroup
	for i, a := range req {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), dialbackDialTime)
			err := d.verify(ctx, a, target)
			cancel()
			if err != nil {
				resp.Errors[i] = err.Error()
				return
			}
			resp.OK[i] = true
			if d.reached != nil {
				d.reached(target, a)
			}
		}()
	}
	wg.Wait()
	_ = json.NewEncoder(s).Encode(resp)
}

// ErrBadDialback is returned for a malformed dial-back request.
var ErrBadDialback = errors.New("p2p: malformed dial-back request")

// decodeDialbackRequest reads one request: JSON, at most
// dialbackMaxMessage bytes, at most dialbackMaxAddrs valid multiaddrs.
func decodeDialbackRequest(r io.Reader) ([]ma.Multiaddr, error) {
	var req dialbackRequest
	if err := json.NewDecoder(io.LimitReader(r, dialbackMaxMessage)).Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDialback, err)
	}
	if len(req.Addrs) == 0 || len(req.Addrs) > dialbackMaxAddrs {
		return nil, fmt.Errorf("%w: %d addresses", ErrBadDialback, len(req.Addrs))
	}
	out := make([]ma.Multiaddr, 0, len(req.Addrs))
	for _, s := range req.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadDialback, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// verify dials a and checks that the node answering holds the key of id.
func (d *dialbacker) verify(ctx context.Context, a ma.Multiaddr, id peer.ID) error {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return errors.New("relay address")
	}
	tr, _ := peer.SplitAddr(a)
	if tr == nil {
		return errors.New("empty address")
	}
	na, err := manet.ToNetAddr(tr)
	if err != nil {
		return fmt.Errorf("address %s: %w", tr, err)
	}
	if _, ok := na.(*net.TCPAddr); !ok {
		return fmt.Errorf("address %s: not TCP", tr)
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", na.String())
	if err != nil {
		return fmt.Errorf("dial %s: %w", na, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn, err := ipnet.NewProtectedConn(d.psk, raw)
	if err != nil {
		return fmt.Errorf("private network: %w", err)
	}
	if err := mss.SelectProtoOrFail(noise.ID, conn); err != nil {
		return fmt.Errorf("negotiate security: %w", err)
	}
	tpt, err := noise.New(noise.ID, d.key, nil)
	if err != nil {
		return fmt.Errorf("noise: %w", err)
	}
	sc, err := tpt.SecureOutbound(ctx, conn, id)
	if err != nil {
		return fmt.Errorf("handshake with %s: %w", id, err)
	}
	return sc.Close()
}

// ask asks member to dial addrs back; ok[i] tells whether addrs[i] reached us.
func (d *dialbacker) ask(ctx context.Context, h interface {
	NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error)
}, member peer.ID, addrs []ma.Multiaddr) ([]bool, error) {
	if len(addrs) > dialbackMaxAddrs {
		addrs = addrs[:dialbackMaxAddrs]
	}
	s, err := h.NewStream(ctx, member, d.proto)
	if err != nil {
		return nil, fmt.Errorf("open dial-back stream to %s: %w", member, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	req := dialbackRequest{}
	for _, a := range addrs {
		req.Addrs = append(req.Addrs, a.String())
	}
	if err := json.NewEncoder(s).Encode(req); err != nil {
		return nil, fmt.Errorf("send dial-back request: %w", err)
	}
	_ = s.CloseWrite()
	var resp dialbackResponse
	if err := json.NewDecoder(io.LimitReader(s, dialbackMaxMessage)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read dial-back response from %s: %w", member, err)
	}
	if len(resp.OK) != len(addrs) {
		return nil, fmt.Errorf("dial-back response from %s: %d results for %d addresses", member, len(resp.OK), len(addrs))
	}
	return resp.OK, nil
}
