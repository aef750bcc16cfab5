// Package netlab builds a home-network lab out of Linux network namespaces,
// for end-to-end tests of entrepot across consumer-router NAT: an
// "internet", homes with NAT routers (nftables masquerade, a stateful
// firewall that drops unsolicited inbound, conntrack), servers behind them,
// real miniupnpd (IGDv1 or IGDv2, NAT-PMP on or off, or no UPnP at all), a
// double-NAT home, per-home access links with delay, jitter and a bandwidth
// limit, and a WAN client.
//
// Tests need root and iproute2, nftables, nsenter and miniupnpd (Debian:
// iproute2 nftables util-linux miniupnpd-nftables; the package's own tests
// also use upnpc from miniupnpc). NewT and Skip skip with a message
// otherwise; CheckTools and check-tools.sh report what is missing and
// install nothing. Run: go test ./tests/netlab/ as root (about 35 s; one
// lab at a time on a 2-core machine).
//
// # Topology
//
// Namespaces are named <prefix>-<role>; the prefix is
// BasePrefix-<pid>-<random> (unique per lab). Interface names inside a
// namespace need no prefix.
//
//	ns wan: bridge br0 10.77.0.254/24 (the "internet"; STUN on :3478)
//	  |-- client: eth0 10.77.0.100                         (Lab.Client)
//	  |-- r1: wan0 10.77.0.11 | lan0 192.168.11.1/24        (home 1 router)
//	  |         |-- h1a 192.168.11.10, h1b .11 ...           (servers)
//	  |-- r2: wan0 10.77.0.12 | lan0 192.168.12.1/24 ...
//	  '-- c4: wan0 10.77.0.14 | lan0 100.64.4.1/24          (double NAT: carrier)
//	            '-- r4: wan0 100.64.4.2 | lan0 192.168.14.1/24 -- h4a ...
//
// Routers route by default via 10.77.0.254; the internet namespace has no
// default route and does not forward, so nothing can leave the lab. Every
// address is private (10.77.0.0/24, 100.64.0.0/16, 192.168.0.0/16), every
// veth is created straight into its namespaces (the host namespace gets
// no interface), and all nft tables and qdiscs live inside lab namespaces.
// Deleting the namespaces (Close) removes everything. New first sweeps
// leftovers: namespaces with the same explicit prefix, and
// BasePrefix-<pid>-* ones whose pid is dead (their processes are killed).
//
// # Routers
//
// Each router loads an nftables ruleset: table inet fw (input and forward
// policy drop; established/related, LAN-to-WAN and "ct status dnat"
// accepted), table ip nat (masquerade on wan0, a prerouting chain for
// Router.Forward) and table inet filter with the empty chains miniupnpd
// 2.3.1 fills (it never creates them). The NAT is port-preserving and
// endpoint-independent unless HomeConfig.SymmetricNAT asks for
// "masquerade random,fully-random" (endpoint-dependent: a new external
// port per flow). There is no hairpin NAT.
//
// miniupnpd 2.3.1 (Debian) refuses a private WAN address, and
// ext_allow_private_ipv4 only exists from 2.3.9. The lab uses its STUN
// workaround: the internet namespace answers STUN Binding requests from
// one address, so miniupnpd concludes it is behind a 1:1 full-cone NAT
// and accepts 10.77.0.1N as its public address ("Port forwarding is now
// enabled"). A double-NAT home's router runs without STUN and shows the
// real double-NAT signature: empty external IP, AddPortMapping 501,
// NAT-PMP result 3. Routers serve UPnP on port 5000 of their LAN address
// (Router.RootDescURL); RestartUPnP moves it to the next port. Mappings
// reads the current DNAT rules from nft.
//
// # Access links (delay, jitter, bandwidth)
//
// The kernel has no netem, NFT_QUEUE is not built and there is no
// iptables binary for the NFQUEUE xt target, so a shaped home's access
// link is a userspace wire inside the test process: the router's WAN veth
// ends in the internet namespace on an unbridged interface, and a packet
// socket (with PACKET_VNET_HDR, so GSO frames and partial checksums pass
// intact) copies each frame to a second veth whose peer is the bridge
// port, and back. Each direction releases a frame at
// max(previous release, kernel rx timestamp + serialisation at Rate +
// Delay ± Jitter) - FIFO, so jitter never reorders - and drops when the
// rate limiter's backlog exceeds QueueLimit. Reader and writer threads run
// SCHED_FIFO and sleep in the kernel; New raises GOMAXPROCS so these
// threads never starve the rest of the test process. Delay applies per
// direction per home: the RTT between homes A and B grows by
// 2*(A.Delay+B.Delay). CutWAN and RestoreWAN take the home's link down
// and up (the router sees no carrier), shaped or not.
//
// Measured on the 2-vCPU CI machine (other builds running): two homes at
// 25 ms ± 5 ms each (100 ms ± 20 ms RTT): UDP RTT min 87-94 ms, median
// 100.5-102.3 ms, stddev 5.7-8.2 ms when the load average is below ~10;
// tails reach 150-600 ms when it is above ~12 (probe goroutines and
// softirqs starve). 20 Mbit/s links carry 17.5-18.8 Mbit/s of TCP each
// way. Setup takes 0.3-0.55 s (1.1 s loaded) for 5 homes with 3 miniupnpd,
// teardown 0.1-0.3 s.
//
// # The WAN prefix and libp2p
//
// go-libp2p treats every private range as non-public, so with WAN
// addresses in 10.77.0.0/24 it never runs hole punching (DCUtR), AutoNAT
// or relay reservations. The lab therefore declares its internet prefix:
//
//   - WANPrefix (10.77.0.0/24) and PublicPrefixes() are the prefixes to
//     treat as public inside the lab, and nothing else;
//   - every command started with Host.Command gets WANPrefixEnv
//     (ENTREPOT_NETLAB_WAN_PREFIX=10.77.0.0/24) in its environment.
//
// The p2p layer is expected to honour this only in a lab-only build
// (//go:build netlab) of the daemon, which, when WANPrefixEnv equals
// 10.77.0.0/24 and before the first libp2p host exists, replaces the 10/8
// entry of go-multiaddr's manet.Private4 with Exclude(10.0.0.0/8,
// WANPrefix) and logs that it did. That reaches every libp2p subsystem at
// once without modifying libp2p; a release build never contains it, and a
// lab build run outside a lab (no variable) changes nothing. natpunch
// takes the same prefixes through natpunch.Config.PublicPrefixes, so its
// double-NAT rule does not flag every lab router. Homes' LANs
// (192.168.1N.0/24) and the CGNAT links (100.64.N.0/24) stay private, so a
// double-NAT router's address is still classified as private.
package netlab
