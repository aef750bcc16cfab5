package natpunch

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// silentUDP is a bound UDP socket that never answers: a router that
// drops SSDP (NAT-PMP only) rather than refusing it.
func silentUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestProbeEndsSoonAfterAnAnswer: with a NAT-PMP router that leaves SSDP
// unanswered, the probe ends AnswerGrace after the NAT-PMP reply instead
// of waiting out ProbeTimeout (3 s here); the mapping is made by NAT-PMP.
func TestProbeEndsSoonAfterAnAnswer(t *testing.T) {
	cases := []struct {
		name        string
		answerGrace time.Duration
		wantFast    bool
	}{
		{"default grace", 0, true},
		{"grace longer than the probe window", 10 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			silent := silentUDP(t)
			e := newEnv(t, envOpt{pmp: true, tweak: func(c *Config) {
				c.ProbeTimeout = 3 * time.Second
				c.AnswerGrace = tc.answerGrace
				c.SSDPTargets = []netip.AddrPort{silent}
			}})
			start := time.Now()
			m, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001})
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if m.Method != MethodNATPMP {
				t.Fatalf("method %v, want NAT-PMP", m.Method)
			}
			if fast := took < 2*time.Second; fast != tc.wantFast {
				t.Fatalf("first mapping after %v (probe window 3 s); want fast=%v", took, tc.wantFast)
			}
			t.Logf("first mapping after %v", took)
		})
	}
}
