package natpunch

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Clock is the time source; tests inject a manual clock
// (natpunchtest.Clock).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Client. Every field is optional.
type Config struct {
	// NodeID names the node in mapping descriptions ("entrepot <short> tcp")
	// and seeds alternative external ports so they stay stable across
	// restarts. Its last 8 characters are used. Default "node".
	NodeID string
	// Logger receives the log; nil discards.
	Logger *slog.Logger
	// Registerer receives the entrepot_natpunch_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Clock drives renewals and back-off; default the wall clock.
	Clock Clock

	// Gateway overrides the default IPv4 gateway read from RouteFile.
	Gateway netip.Addr
	// RouteFile is read for the default gateway; default /proc/net/route.
	RouteFile string
	// LocalAddr is the internal address mapped to; default the source
	// address the kernel picks toward the gateway.
	LocalAddr netip.Addr
	// PMPServer is the NAT-PMP/PCP server; default gateway:5351.
	PMPServer netip.AddrPort
	// SSDPTargets receive the M-SEARCH; default gateway:1900 (unicast,
	// first) and 239.255.255.250:1900.
	SSDPTargets []netip.AddrPort
	// Methods lists the protocols to use, in order of preference;
	// default NAT-PMP, PCP, UPnP.
	Methods []Method

	// ProbeTimeout bounds the UDP part of the gateway probe (PMP, PCP and
	// SSDP run in parallel); default 350 ms.
	ProbeTimeout time.Duration
	// SSDPGrace is how long to collect more SSDP replies after the first;
	// default 50 ms.
	SSDPGrace time.Duration
	// AnswerGrace is how much longer the other protocols' UDP probes run
	// once one protocol has answered (a NAT-PMP reply, a PCP reply, an
	// SSDP reply); default 100 ms. Without it a NAT-PMP-only router, which
	// leaves SSDP unanswered, kept the probe for the whole ProbeTimeout.
	AnswerGrace time.Duration
	// RequestTimeout bounds each router request (a SOAP call, a
	// description fetch, a PMP/PCP exchange with retransmissions);
	// default 2 s.
	RequestTimeout time.Duration
	// Lease is the requested lifetime; renewal happens at a third of the
	// granted lifetime (of Lease for UPnP and for permanent leases).
	// Default 1 h.
	Lease time.Duration
	// CheckInterval is how often the router is read (external address,
	// PMP/PCP epoch, UPnP mapping entries) to detect restarts and address
	// changes; reads only, no writes. Default 30 s.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the exponential back-off after a failed
	// probe or mapping; defaults 5 s and 5 min.
	RetryMin, RetryMax time.Duration
	// DoubleNATWriteInterval is the minimum time between two router writes
	// when the router's external address is private (double NAT / CGNAT);
	// default 5 min. Failures then back off up to DoubleNATBackoffMax
	// (default 30 min).
	DoubleNATWriteInterval, DoubleNATBackoffMax time.Duration
	// CloseTimeout bounds Close; default 2 s.
	CloseTimeout time.Duration
	// AltPorts is how many alternative external ports are tried when the
	// wanted one is held by another host; default 8.
	AltPorts int
	// PublicPrefixes are treated as public external addresses even though
	// they are private (a lab whose "internet" is 10.77.0.0/24).
	PublicPrefixes []netip.Prefix
	// AllowLowPorts allows external ports below 1024 (default: never).
	AllowLowPorts bool
}

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		c.NodeID = "node"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.RouteFile == "" {
		c.RouteFile = "/proc/net/route"
	}
	if len(c.Methods) == 0 {
		c.Methods = []Method{MethodNATPMP, MethodPCP, MethodUPnP}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ProbeTimeout, 350*time.Millisecond)
	def(&c.SSDPGrace, 50*time.Millisecond)
	def(&c.AnswerGrace, 100*time.Millisecond)
	def(&c.RequestTimeout, 2*time.Second)
	def(&c.Lease, time.Hour)
	def(&c.CheckInterval, 30*time.Second)
	def(&c.RetryMin, 5*time.Second)
	def(&c.RetryMax, 5*time.Minute)
	def(&c.DoubleNATWriteInterval, 5*time.Minute)
	def(&c.DoubleNATBackoffMax, 30*time.Minute)
	def(&c.CloseTimeout, 2*time.Second)
	if c.AltPorts <= 0 {
		c.AltPorts = 8
	}
	return c
}

func (c Config) shortID() string {
	id := c.NodeID
	if len(id) > 8 {
		id = id[len(id)-8:]
	}
	return id
}

func (c Config) uses(m Method) bool {
	for _, x := range c.Methods {
		if x == m {
			return true
		}
	}
	return false
}
