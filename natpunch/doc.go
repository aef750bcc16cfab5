// Package natpunch opens the daemon's listening ports on the home router and
// keeps them open.
//
// A Client probes the default gateway once, in parallel, for NAT-PMP
// (RFC 6886), PCP (RFC 6887) and UPnP IGD (v1 and v2, WANIPConnection and
// WANPPPConnection, through github.com/huin/goupnp but with a single short
// SSDP search of its own instead of goupnp's repeated 2 s discovery; the
// probe ends Config.AnswerGrace after the first protocol answers, or after
// Config.ProbeTimeout when none does: "no gateway" is decided then). It then
// maps the ports the caller asks for, renews each lease at a third of its
// lifetime, heals itself when the router restarts, moves its SOAP port,
// changes its external address or when the default gateway changes, detects
// double NAT / carrier-grade NAT and then backs off to at most one router
// write per interval, and removes every mapping on Close.
//
// The client reports candidate external addresses on an event channel; it
// does not decide whether they are reachable: the p2p layer confirms them
// before advertising. natpunch imports nothing from the daemon nor libp2p.
//
// Policies, from the field notes on real routers:
//   - external ports are never 0 nor below 1024 (unless Config.AllowLowPorts);
//     the wanted port is the internal one, then up to Config.AltPorts
//     alternatives derived from the node id, so they stay stable across
//     restarts; an IGDv2 picks a free one itself (AddAnyPortMapping);
//   - UPnP 725 (and 402) fall back to a permanent lease that is still
//     renewed and read back on the same schedule; 718 moves to another
//     port and the port obtained is reported; a wanted port below 1024 is
//     not even asked for (routers answer 606) and an alternative is used;
//     714 on read-back means the mapping was lost: it is re-added;
//   - a description whose control URL or URLBase names another host than
//     the SSDP location is refused, and SSDP replies from hosts other than
//     the gateway are ignored;
//   - NAT-PMP and PCP requests are retransmitted on the RFC 6886 schedule
//     (250 ms, doubling), bounded by Config.RequestTimeout; PCP's own 3 s
//     initial timeout (RFC 6887 §8.1.1) would miss the 1 s target on a LAN;
//   - an external address that is empty, RFC 1918, RFC 6598 or link-local,
//     or NAT-PMP result 3, means double NAT: the state is reported, mappings
//     that succeed are kept (peers behind the same outer NAT can use them)
//     and router writes are limited to one per DoubleNATWriteInterval.
//
// For a network-namespace lab, Config.Gateway, PMPServer, SSDPTargets,
// ProbeTimeout, CheckInterval and Lease make the router and the timing
// injectable, and PublicPrefixes makes a private "internet" prefix count
// as public so that lab routers are not classified as double NAT.
//
// The package natpunchtest provides a fake IGD (SSDP responder and SOAP
// server) and a fake NAT-PMP/PCP server for tests, and a manual clock.
package natpunch
