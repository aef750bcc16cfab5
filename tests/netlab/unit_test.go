package netlab

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"one plain home", Config{Homes: []HomeConfig{{}}}, true},
		{"no homes", Config{}, false},
		{"17 homes", Config{Homes: make([]HomeConfig, 17)}, false},
		{"10 servers", Config{Homes: []HomeConfig{{Servers: 10}}}, false},
		{"negative servers", Config{Homes: []HomeConfig{{Servers: -1}}}, false},
		{"bad UPnP mode", Config{Homes: []HomeConfig{{UPnP: 7}}}, false},
		{"jitter above delay", Config{Homes: []HomeConfig{{Link: LinkConfig{Delay: time.Millisecond, Jitter: 2 * time.Millisecond}}}}, false},
		{"tiny rate", Config{Homes: []HomeConfig{{Link: LinkConfig{Rate: 100}}}}, false},
		{"tiny down rate", Config{Homes: []HomeConfig{{Link: LinkConfig{DownRate: 100}}}}, false},
		{"loss 1", Config{Homes: []HomeConfig{{Link: LinkConfig{Loss: 1}}}}, false},
		{"loss NaN", Config{Homes: []HomeConfig{{Link: LinkConfig{Loss: math.NaN()}}}}, false},
		{"negative delay", Config{Homes: []HomeConfig{{Link: LinkConfig{Delay: -1}}}}, false},
		{"shaped", Config{Homes: []HomeConfig{{Link: LinkConfig{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Rate: 10e6}}}}, true},
		{"prefix with slash", Config{Homes: []HomeConfig{{}}, Prefix: "a/b"}, false},
		{"custom prefix", Config{Homes: []HomeConfig{{}}, Prefix: "mylab"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.validate()
			if (err == nil) != tc.ok {
				t.Fatalf("validate: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
		})
	}
}

var mappingCases = []struct {
	name string
	in   string
	want []Mapping
	ok   bool
}{
	{"empty chain", "table inet filter {\n\tchain prerouting_miniupnpd {\n\t}\n}\n", nil, true},
	{"tcp miniupnpd 2.3.1", "table inet filter {\n\tchain prerouting_miniupnpd {\n\t\tiif \"wan0\" @nh,72,8 0x6 th dport 9000 dnat ip to 192.168.11.10:9000\n\t}\n}\n",
		[]Mapping{{"tcp", 9000, netip.MustParseAddrPort("192.168.11.10:9000")}}, true},
	{"udp and tcp", "iif \"wan0\" @nh,72,8 0x11 th dport 9300 dnat ip to 192.168.11.10:9301\niif \"wan0\" @nh,72,8 0x6 th dport 80 dnat ip to 192.168.11.11:8080\n",
		[]Mapping{{"udp", 9300, netip.MustParseAddrPort("192.168.11.10:9301")}, {"tcp", 80, netip.MustParseAddrPort("192.168.11.11:8080")}}, true},
	{"newer nft syntax", "iifname \"wan0\" meta l4proto tcp th dport 4001 dnat ip to 192.168.12.10:4001\n",
		[]Mapping{{"tcp", 4001, netip.MustParseAddrPort("192.168.12.10:4001")}}, true},
	{"tcp dport syntax", "iif \"wan0\" tcp dport 22 dnat to 192.168.12.10:22\n",
		[]Mapping{{"tcp", 22, netip.MustParseAddrPort("192.168.12.10:22")}}, true},
	{"bad port", "iif \"wan0\" @nh,72,8 0x6 th dport 99999 dnat ip to 192.168.11.10:9000\n", nil, false},
	{"bad target", "iif \"wan0\" @nh,72,8 0x6 th dport 9000 dnat ip to nowhere\n", nil, false},
	{"no protocol", "iif \"wan0\" th dport 9000 dnat ip to 192.168.11.10:9000\n", nil, false},
}

func TestParseMappings(t *testing.T) {
	for _, tc := range mappingCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMappings(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseMappings(f *testing.F) {
	for _, tc := range mappingCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := parseMappings(in)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Proto != "tcp" && m.Proto != "udp" || m.ExternalPort == 0 || !m.Internal.IsValid() {
				t.Fatalf("accepted incomplete mapping %+v from %q", m, in)
			}
		}
	})
}

func stunRequest(id byte, attrs []byte) []byte {
	b := make([]byte, 20+len(attrs))
	binary.BigEndian.PutUint16(b[0:], stunBindingRequest)
	binary.BigEndian.PutUint16(b[2:], uint16(len(attrs)))
	binary.BigEndian.PutUint32(b[4:], stunMagicCookie)
	for i := 8; i < 20; i++ {
		b[i] = id
	}
	copy(b[20:], attrs)
	return b
}

func TestSTUN(t *testing.T) {
	changeReq := []byte{0, 3, 0, 4, 0, 0, 0, 6} // CHANGE-REQUEST change IP+port
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"plain binding", stunRequest(7, nil), true},
		{"change request ignored", stunRequest(9, changeReq), true},
		{"short", []byte{0, 1, 0}, false},
		{"wrong type", append([]byte{0, 2}, stunRequest(1, nil)[2:]...), false},
		{"length mismatch", append(stunRequest(1, nil), 0, 0, 0, 0), false},
		{"bad cookie", func() []byte { b := stunRequest(1, nil); b[4] = 0; return b }(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := parseSTUNRequest(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			peer := netip.MustParseAddrPort("10.77.0.11:36701")
			resp := stunResponse(id, peer)
			if binary.BigEndian.Uint16(resp[0:]) != stunBindingResponse || !slices.Equal(resp[8:20], tc.in[8:20]) {
				t.Fatalf("bad response header % x", resp[:20])
			}
			// MAPPED-ADDRESS plain, XOR-MAPPED-ADDRESS xored with the cookie.
			if got := netip.AddrPortFrom(netip.AddrFrom4([4]byte(resp[28:32])), binary.BigEndian.Uint16(resp[26:])); got != peer {
				t.Errorf("MAPPED-ADDRESS %v, want %v", got, peer)
			}
			var x [4]byte
			binary.BigEndian.PutUint32(x[:], binary.BigEndian.Uint32(resp[40:44])^stunMagicCookie)
			xport := binary.BigEndian.Uint16(resp[38:]) ^ uint16(stunMagicCookie>>16)
			if got := netip.AddrPortFrom(netip.AddrFrom4(x), xport); got != peer {
				t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, peer)
			}
		})
	}
}

func FuzzParseSTUNRequest(f *testing.F) {
	f.Add(stunRequest(7, nil))
	f.Add(stunRequest(9, []byte{0, 3, 0, 4, 0, 0, 0, 6}))
	f.Add([]byte{0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseSTUNRequest(b)
		if err != nil {
			return
		}
		if len(b) < 20 || !slices.Equal(id[:], b[8:20]) {
			t.Fatalf("accepted %x with id %x", b, id)
		}
	})
}

var natpmpCases = []struct {
	name string
	in   []byte
	op   byte
	want NATPMPResponse
	ok   bool
}{
	{"external address", []byte{0, 128, 0, 0, 0, 0, 0, 9, 10, 77, 0, 11}, 0,
		NATPMPResponse{Op: 0, Epoch: 9, ExternalIP: netip.MustParseAddr("10.77.0.11")}, true},
	{"double NAT result 3", []byte{0, 128, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0}, 0,
		NATPMPResponse{Op: 0, Result: 3, Epoch: 1, ExternalIP: netip.MustParseAddr("0.0.0.0")}, true},
	{"tcp mapping", []byte{0, 130, 0, 0, 0, 0, 0, 5, 0x23, 0x28, 0x23, 0x29, 0, 0, 0, 120}, 2,
		NATPMPResponse{Op: 2, Epoch: 5, InternalPort: 9000, ExternalPort: 9001, Lifetime: 120}, true},
	{"short error answer", []byte{0, 129, 0, 2, 0, 0, 0, 5}, 1, NATPMPResponse{Op: 1, Result: 2, Epoch: 5}, true},
	{"short success", []byte{0, 129, 0, 0, 0, 0, 0, 5}, 1, NATPMPResponse{}, false},
	{"wrong op", []byte{0, 129, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}, 2, NATPMPResponse{}, false},
	{"wrong version", []byte{2, 128, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 0, NATPMPResponse{}, false},
	{"tiny", []byte{0}, 0, NATPMPResponse{}, false},
}

func TestParseNATPMP(t *testing.T) {
	for _, tc := range natpmpCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNATPMP(tc.in, tc.op)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseNATPMP(f *testing.F) {
	for _, tc := range natpmpCases {
		f.Add(tc.in, tc.op)
	}
	f.Fuzz(func(t *testing.T, b []byte, op byte) {
		r, err := parseNATPMP(b, op%3)
		if err != nil {
			return
		}
		if r.Result == 0 && op%3 == 0 && !r.ExternalIP.IsValid() {
			t.Fatalf("success without an external IP from %x", b)
		}
	})
}

func TestPlan(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t.Run("delay only is constant", func(t *testing.T) {
		d := newDirection(0, 0, LinkConfig{Delay: 25 * time.Millisecond}, true, 1)
		for i := range 10 {
			now := t0.Add(time.Duration(i) * time.Millisecond)
			r, v := d.plan(now, 1500)
			if v != pass || r.Sub(now) != 25*time.Millisecond {
				t.Fatalf("frame %d: release after %v verdict %v, want 25ms", i, r.Sub(now), v)
			}
		}
	})
	t.Run("jitter stays in range and never reorders", func(t *testing.T) {
		d := newDirection(0, 0, LinkConfig{Delay: 25 * time.Millisecond, Jitter: 5 * time.Millisecond}, true, 3)
		var prev time.Time
		var spread []time.Duration
		for i := range 2000 {
			now := t0.Add(time.Duration(i) * 10 * time.Millisecond) // sparse: no FIFO clamping
			r, _ := d.plan(now, 100)
			if r.Before(prev) {
				t.Fatalf("frame %d released before its predecessor", i)
			}
			prev = r
			spread = append(spread, r.Sub(now))
		}
		s := Summarize(spread)
		if s.Min < 20*time.Millisecond || s.Max > 30*time.Millisecond || s.Max-s.Min < 8*time.Millisecond {
			t.Errorf("delays %v..%v, want spread over 20..30 ms", s.Min, s.Max)
		}
		if s.P50 < 24*time.Millisecond || s.P50 > 26*time.Millisecond {
			t.Errorf("median delay %v, want 25 ms", s.P50)
		}
	})
	for _, tc := range []struct {
		name string
		up   bool
		per  time.Duration
	}{
		{"uplink rate serialises back-to-back frames", true, time.Millisecond},
		{"downlink uses DownRate", false, 250 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 1000-byte frames: 1 ms at 8 Mbit/s up, 0.25 ms at 32 Mbit/s down.
			d := newDirection(0, 0, LinkConfig{Rate: 8_000_000, DownRate: 32_000_000}, tc.up, 5)
			for i := 1; i <= 50; i++ {
				r, v := d.plan(t0, 1000)
				if v != pass || r.Sub(t0) != time.Duration(i)*tc.per {
					t.Fatalf("frame %d: release after %v verdict %v", i, r.Sub(t0), v)
				}
			}
		})
	}
	t.Run("queue limit drops", func(t *testing.T) {
		d := newDirection(0, 0, LinkConfig{Rate: 8_000_000, QueueLimit: 10 * time.Millisecond}, true, 7)
		accepted := 0
		for range 100 {
			if _, v := d.plan(t0, 1000); v == pass {
				accepted++
			} else if v != queueFull {
				t.Fatalf("verdict %v, want queueFull", v)
			}
		}
		if accepted != 11 {
			t.Errorf("accepted %d frames into a 10 ms queue of 1 ms frames, want 11", accepted)
		}
	})
	t.Run("loss rate", func(t *testing.T) {
		d := newDirection(0, 0, LinkConfig{Loss: 0.1}, true, 9)
		n := 0
		for i := range 10000 {
			if _, v := d.plan(t0.Add(time.Duration(i)), 100); v == lost {
				n++
			}
		}
		if n < 850 || n > 1150 {
			t.Errorf("lost %d of 10000 at 10%%", n)
		}
	})
	t.Run("params change at run time", func(t *testing.T) {
		d := newDirection(0, 0, LinkConfig{Delay: 10 * time.Millisecond}, true, 11)
		if r, _ := d.plan(t0, 100); r.Sub(t0) != 10*time.Millisecond {
			t.Fatalf("before: %v", r.Sub(t0))
		}
		d.params.Store(LinkConfig{Delay: 40 * time.Millisecond}.params(true))
		t1 := t0.Add(time.Second)
		if r, _ := d.plan(t1, 100); r.Sub(t1) != 40*time.Millisecond {
			t.Fatalf("after: %v", r.Sub(t1))
		}
	})
}

func TestIsStale(t *testing.T) {
	alive := func(pid int) bool { return pid == 1 || pid == 42 }
	for _, tc := range []struct {
		name, ns, prefix string
		want             bool
	}{
		{"dead pid", "entnl-999-abcdef-wan", "", true},
		{"live pid", "entnl-42-abcdef-wan", "", false},
		{"own pid", "entnl-7-abcdef-r1", "", false},
		{"same explicit prefix", "mylab-r1", "mylab", true},
		{"other explicit prefix", "mylab2-r1", "mylab", false},
		{"foreign namespace", "docker-abc", "", false},
		{"garbage pid", "entnl-x-abc-wan", "", false},
		{"no rest", "entnl-999", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isStale(tc.ns, tc.prefix, 7, alive); got != tc.want {
				t.Errorf("isStale(%q, %q) = %v, want %v", tc.ns, tc.prefix, got, tc.want)
			}
		})
	}
}

func TestExclude(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name        string
		outer, hole netip.Prefix
		n           int
	}{
		{"10/8 minus lab WAN", p("10.0.0.0/8"), WANPrefix, 16},
		{"disjoint", p("192.168.0.0/16"), WANPrefix, 1},
		{"hole covers outer", p("10.77.0.0/25"), WANPrefix, 0},
		{"half", p("10.0.0.0/8"), p("10.128.0.0/9"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Exclude(tc.outer, tc.hole)
			if err != nil || len(got) != tc.n {
				t.Fatalf("Exclude = %v %v, want %d prefixes", got, err, tc.n)
			}
			rng := rand.New(rand.NewPCG(9, 10))
			for range 2000 {
				a := randomIn(rng, tc.outer)
				if rng.IntN(4) == 0 {
					a = randomIn(rng, tc.hole)
				}
				inResult := slices.ContainsFunc(got, func(q netip.Prefix) bool { return q.Contains(a) })
				want := tc.outer.Contains(a) && !tc.hole.Contains(a)
				if inResult != want {
					t.Fatalf("%v: covered %v, want %v (result %v)", a, inResult, want, got)
				}
			}
		})
	}
	if _, err := Exclude(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")); !errors.Is(err, ErrConfig) {
		t.Errorf("mixed families: %v, want ErrConfig", err)
	}
}

func randomIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | rng.Uint32()&(1<<(32-p.Bits())-1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	s := Summarize(ms(3, 1, 2, 10, 4))
	if s.N != 5 || s.Min != time.Millisecond || s.Max != 10*time.Millisecond || s.P50 != 3*time.Millisecond || s.Mean != 4*time.Millisecond {
		t.Errorf("Summarize = %+v", s)
	}
	if z := Summarize(nil); z.N != 0 {
		t.Errorf("empty: %+v", z)
	}
}

func TestCheckTools(t *testing.T) {
	req, test, opt := CheckTools()
	for _, c := range []struct {
		got, all []string
	}{{req, RequiredTools}, {test, TestTools}, {opt, OptionalTools}} {
		for _, m := range c.got {
			if !slices.Contains(c.all, m) {
				t.Errorf("missing %q is not in %v", m, c.all)
			}
		}
	}
	if got := missing([]string{"netlab-no-such-tool-xyz"}); len(got) != 1 {
		t.Errorf("a nonexistent tool should be missing, got %v", got)
	}
}
