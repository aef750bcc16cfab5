// Package natpunch opens the daemon's listening ports on the home router and
// keeps them open.
//
// A Client probes the default gateway once, in parallel, for NAT-PMP
// (RFC 6886), PCP (RFC 6887) and UPnP IGD (v1 and v2, WANIPConnection and
// WANPPPConnection, through github.com/huin/goupnp but with a single short
// SSDP search of its own instead of goupnp's repeated 2 s discovery). It then
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
// The package natpunchtest provides a fake IGD (SSDP responder and SOAP
// server) and a fake NAT-PMP/PCP server for tests, and a manual clock.
package natpunch
