// Package p2p owns the node's single libp2p host: its persistent ed25519
// identity, the TCP+Noise transport closed to non-members by the cluster secret
// (used as the libp2p private-network key), resource-manager limits, peer
// discovery (bootstrap addresses, mDNS on the LAN, a private Kademlia DHT among
// members, a persisted peer list) and liveness with per-peer RTT.
//
// Everything above it (rpc, table, block) talks to peers through this package's
// Host; nothing else in the daemon imports libp2p directly except rpc for stream types.
package p2p
