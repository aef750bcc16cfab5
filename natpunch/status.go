package natpunch

import (
	"net/netip"
	"time"
)

// MappingRequest asks for one port to be mapped.
type MappingRequest struct {
	// Proto is TCP or UDP (required).
	Proto Proto
	// InternalPort is the port the daemon listens on (required).
	InternalPort uint16
	// ExternalPort is the wanted external port; default InternalPort.
	// Another one is reported if the router or another LAN host holds it.
	ExternalPort uint16
	// Service names the port in the description, e.g. "p2p" or "s3".
	Service string
}

// Mapping is a mapping held on the router.
type Mapping struct {
	Proto     Proto
	Internal  netip.AddrPort
	External  netip.AddrPort
	Method    Method
	Lease     time.Duration // granted lifetime; 0 = permanent (renewed anyway)
	ExpiresAt time.Time     // zero for a permanent lease
	// DoubleNAT is true when External is private or shared: reachable at
	// most from behind the same outer NAT.
	DoubleNAT bool
}

// MappingStatus is the state of one requested mapping, for `entrepot status`.
type MappingStatus struct {
	Proto        Proto          `json:"proto"`
	InternalPort uint16         `json:"internal_port"`
	Service      string         `json:"service,omitempty"`
	Internal     netip.AddrPort `json:"internal"`
	External     netip.AddrPort `json:"external"`
	Method       Method         `json:"method,omitempty"`
	Up           bool           `json:"up"`
	Lease        time.Duration  `json:"lease"`
	Permanent    bool           `json:"permanent"`
	MappedAt     time.Time      `json:"mapped_at"`
	RenewAt      time.Time      `json:"renew_at"`
	ExpiresAt    time.Time      `json:"expires_at"`
	NextAttempt  time.Time      `json:"next_attempt"`
	Renewals     int            `json:"renewals"`
	Failures     int            `json:"failures"`
	LastError    string         `json:"last_error,omitempty"`
}

// GatewayStatus describes the gateway as last probed.
type GatewayStatus struct {
	Gateway    netip.Addr `json:"gateway"`
	Local      netip.Addr `json:"local"`
	ExternalIP netip.Addr `json:"external_ip"`
	Methods    []Method   `json:"methods"`
	DoubleNAT  bool       `json:"double_nat"`
	IGD        string     `json:"igd,omitempty"`
	Server     string     `json:"server,omitempty"`
	ProbedAt   time.Time  `json:"probed_at"`
	LastError  string     `json:"last_error,omitempty"`
}

// Candidate is an external address a peer may dial, to be confirmed by the
// p2p layer before it is advertised.
type Candidate struct {
	Proto        Proto
	InternalPort uint16
	External     netip.AddrPort
	Method       Method
	DoubleNAT    bool
}

// EventKind is the kind of an Event.
type EventKind int

// Event kinds.
const (
	// EventMappingUp: a mapping was created or its external address changed.
	EventMappingUp EventKind = iota + 1
	// EventMappingDown: a mapping was lost, removed or could not be renewed.
	EventMappingDown
	// EventGateway: the gateway, its external address or the double-NAT
	// state changed.
	EventGateway
)

func (k EventKind) String() string {
	switch k {
	case EventMappingUp:
		return "mapping-up"
	case EventMappingDown:
		return "mapping-down"
	case EventGateway:
		return "gateway"
	}
	return "unknown"
}

// Event reports a change. Candidates is always the whole current set, so a
// consumer that missed events only needs the latest one.
type Event struct {
	Kind       EventKind
	Time       time.Time
	Mapping    MappingStatus // for mapping events
	Gateway    GatewayStatus
	Candidates []Candidate
}
