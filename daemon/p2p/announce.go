package p2p

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// watchAdvertised logs every change of the addresses this host advertises
// (the set identify sends to members), with the time since New: the
// "advertised" step of the NAT timing in tests/labe2e (mapped, confirmed,
// advertised, announced).
func (p *Host) watchAdvertised(sub event.Subscription) {
	for e := range sub.Out() {
		ev, ok := e.(event.EvtLocalAddressesUpdated)
		if !ok {
			continue
		}
		var added, removed []string
		for _, u := range ev.Current {
			if u.Action == event.Added {
				added = append(added, u.Address.String())
			}
		}
		for _, u := range ev.Removed {
			removed = append(removed, u.Address.String())
		}
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		p.log.Info("advertised addresses changed", "added", added, "removed", removed,
			"since_start", time.Since(p.started).Round(time.Millisecond))
	}
}

// addrsNudger makes libp2p recompute the advertised addresses now instead
// of at its next 5 s tick. libp2p's address manager recomputes on a timer,
// on a listen change and on EvtAutoRelayAddrsUpdated only, and exposes no
// other trigger; without a nudge a confirmed mapping (or a new relay
// circuit address, both added through GetMapping and the AddrsFactory)
// reached members up to 5 s after its confirmation (measured on the lab:
// confirmed 0.2-0.4 s after start, advertised at 5.0 s). This host never
// runs AutoRelay (it keeps its own reservations, reach.go), so the
// manager's relay address list is empty anyway and the event, sent with
// an empty list, changes nothing but the timing; the new address set then
// goes to every connected member at once (identify push).
type addrsNudger struct {
	em event.Emitter
}

func newAddrsNudger(bus event.Bus) (*addrsNudger, error) {
	em, err := bus.Emitter(new(event.EvtAutoRelayAddrsUpdated))
	if err != nil {
		return nil, err
	}
	return &addrsNudger{em: em}, nil
}

func (n *addrsNudger) nudge() {
	if n != nil {
		_ = n.em.Emit(event.EvtAutoRelayAddrsUpdated{})
	}
}

func (n *addrsNudger) Close() error {
	if n == nil {
		return nil
	}
	return n.em.Close()
}

// dialedBack records, on the member serving a dial-back, an address that
// it just proved reaches id (the Noise handshake checked id's key): the
// member holds it for id at once, with identify's TTL. The node's own
// identify messages stay authoritative: the next one without the address
// expires it, like every address identify manages.
func (p *Host) dialedBack(id peer.ID, a ma.Multiaddr) {
	tr, _ := peer.SplitAddr(a)
	if tr == nil {
		return
	}
	ttl := peerstore.RecentlyConnectedAddrTTL
	if p.h.Network().Connectedness(id) == network.Connected {
		ttl = peerstore.ConnectedAddrTTL
	}
	p.h.Peerstore().AddAddr(id, tr, ttl)
	p.log.Debug("member address reached by dial-back", "peer", id.String(), "addr", tr.String())
}

// announceTo asks members outside our LAN to dial our confirmed
// addresses back, in the background, once per member and address: each
// one that reaches us records the address for us at once (dialedBack).
// The identify push that advertises a new address is enough in principle,
// but libp2p drops pushes beyond 10 per /24 then one per 5 s (every node
// behind one home router shares an IP) and never resends them; measured
// on the lab, a member missed a node's confirmed address for over 90 s.
// A member that was connected but not yet identified at confirmation time
// is told once identify completes (runReach wakes up on it).
func (p *Host) announceTo(ctx context.Context, tell map[peer.ID][]ma.Multiaddr) {
	n := 0
	for id, addrs := range tell {
		if n == announceMaxMembers {
			return // the others learn the address through identify
		}
		n++
		p.announcing.Add(1)
		go func() {
			defer p.announcing.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*dialbackDialTime+5*time.Second)
			defer cancel()
			res, err := p.db.ask(cctx, p.h, id, addrs)
			p.log.Debug("confirmed address announced by dial-back", "member", id.String(), "addrs", addrs, "reached", res, "err", err)
		}()
	}
}

// announceMaxMembers bounds the members told by one announceTo round.
const announceMaxMembers = 16
