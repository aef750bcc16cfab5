// Package p2p owns the node's single libp2p host: its persistent ed25519
// identity, the TCP+Noise transport closed to non-members by the cluster secret
// (used as the libp2p private-network key), resource-manager limits, peer
// discovery (bootstrap addresses, mDNS on the LAN, a private Kademlia DHT among
// members, a persisted peer list) and liveness with per-peer RTT.
//
// NAT traversal (Config.NAT, RelayService, UseRelays):
//   - natpunch is the host's NAT manager (libp2p.NATManager; libp2p's own
//     port mapper is never enabled): every TCP listen port, plus
//     Config.Expose ports, is mapped on the home router, renewed and healed
//     by natpunch, and removed in Close before the listeners close;
//   - a mapped external address is only a candidate: a member dials it back
//     (dialback.go: private-network and Noise handshakes proving the answer
//     holds this node's key, no libp2p connection created) before the NAT
//     manager reports it to libp2p and it is advertised. Public interface
//     addresses and AnnounceAddrs are checked the same way. The cluster PSK
//     rules out QUIC and AutoNAT v2 (whose dialer host has no PSK), hence
//     this check. The check runs as soon as a mapping appears or a member
//     outside the LAN connects; on confirmation libp2p recomputes the
//     advertised addresses at once (announce.go, instead of its 5 s tick),
//     and every outside member is asked to dial the address back too,
//     storing it for this node when it reaches it, since libp2p's identify
//     pushes are rate-limited per /24 and never resent;
//   - a node with a confirmed public address runs a circuit v2 relay for
//     members only (ACL), without the default 2 min / 128 KiB cap; the
//     others hold reservations on up to two relaying members and advertise
//     the circuit addresses (a small reservation manager instead of
//     AutoRelay, which only arms on AutoNAT v1 "private" and drops private
//     relay addresses);
//   - DCUtR hole punching is on; relayed-only members are re-dialled
//     directly once a minute; PeerStatus.Via says direct, hole-punched or
//     relayed.
//
// go-libp2p treats private ranges as non-public, which disables DCUtR and
// relay addresses in the namespace lab. A binary built with the netlab tag
// reads ENTREPOT_NETLAB_WAN_PREFIX (set by tests/netlab) and reclassifies
// that prefix, and only it, as public (labprefix_netlab.go); a release build
// ignores the variable (LabBuild is false).
//
// Everything above it (rpc, table, block) talks to peers through this package's
// Host; nothing else in the daemon imports libp2p directly except rpc for stream types.
package p2p
