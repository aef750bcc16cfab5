// Package natpunchtest provides fakes for testing natpunch and its users
// without a router: IGD, a UPnP Internet Gateway Device (SSDP responder
// plus HTTP description and SOAP control server) that can return the error
// codes real routers return and restart on a new port; PMP, a NAT-PMP and
// PCP server; and Clock, a manual clock.
//
// Everything listens on 127.0.0.1 with random ports. The package does not
// import natpunch: its wire handling is written independently, so a bug in
// natpunch's encoders is not mirrored here.
package natpunchtest
