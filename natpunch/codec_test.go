package natpunch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

func TestPMPEncode(t *testing.T) {
	if got := encodePMPExternalAddrRequest(); !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("external address request = %x", got)
	}
	cases := []struct {
		name string
		req  pmpMapRequest
		want []byte
	}{
		{"tcp map", pmpMapRequest{Proto: TCP, InternalPort: 4001, ExternalPort: 4001, Lifetime: 3600},
			[]byte{0, 2, 0, 0, 0x0f, 0xa1, 0x0f, 0xa1, 0, 0, 0x0e, 0x10}},
		{"udp map", pmpMapRequest{Proto: UDP, InternalPort: 53, ExternalPort: 5353, Lifetime: 7200},
			[]byte{0, 1, 0, 0, 0, 53, 0x14, 0xe9, 0, 0, 0x1c, 0x20}},
		{"delete", pmpMapRequest{Proto: TCP, InternalPort: 9000},
			[]byte{0, 2, 0, 0, 0x23, 0x28, 0, 0, 0, 0, 0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := encodePMPMapRequest(tc.req); !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x want %x", got, tc.want)
			}
		})
	}
}

var pmpExtCases = []struct {
	name    string
	in      []byte
	want    pmpExternalAddrResponse
	wantErr bool
}{
	{"success", []byte{0, 128, 0, 0, 0, 0, 0x30, 0x39, 203, 0, 113, 7},
		pmpExternalAddrResponse{Epoch: 12345, IP: netip.MustParseAddr("203.0.113.7")}, false},
	{"network failure truncated", []byte{0, 128, 0, 3, 0, 0, 0, 9},
		pmpExternalAddrResponse{Result: 3, Epoch: 9}, false},
	{"success truncated", []byte{0, 128, 0, 0, 0, 0, 0, 9}, pmpExternalAddrResponse{}, true},
	{"wrong opcode", []byte{0, 129, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4}, pmpExternalAddrResponse{}, true},
	{"pcp version", []byte{2, 128, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4}, pmpExternalAddrResponse{}, true},
	{"short", []byte{0, 128}, pmpExternalAddrResponse{}, true},
}

func TestPMPDecodeExternal(t *testing.T) {
	for _, tc := range pmpExtCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePMPExternalAddrResponse(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errPMPMalformed) {
					t.Fatalf("err %v is not errPMPMalformed", err)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
		})
	}
}

var pmpMapCases = []struct {
	name    string
	in      []byte
	want    pmpMapResponse
	wantErr bool
}{
	{"tcp success", []byte{0, 130, 0, 0, 0, 0, 0, 5, 0x0f, 0xa1, 0x0f, 0xa2, 0, 0, 0x0e, 0x10},
		pmpMapResponse{Proto: TCP, Epoch: 5, InternalPort: 4001, ExternalPort: 4002, Lifetime: 3600}, false},
	{"udp refused", []byte{0, 129, 0, 2, 0, 0, 0, 5, 0, 53, 0, 0, 0, 0, 0, 0},
		pmpMapResponse{Proto: UDP, Result: 2, Epoch: 5, InternalPort: 53}, false},
	{"error truncated", []byte{0, 129, 0, 4, 0, 0, 0, 5}, pmpMapResponse{Proto: UDP, Result: 4, Epoch: 5}, false},
	{"success truncated", []byte{0, 130, 0, 0, 0, 0, 0, 5, 1, 2}, pmpMapResponse{}, true},
	{"request echoed", []byte{0, 2, 0, 0, 0, 0, 0, 5, 0x0f, 0xa1, 0x0f, 0xa2, 0, 0, 0x0e, 0x10}, pmpMapResponse{}, true},
	{"bad version", []byte{1, 130, 0, 0, 0, 0, 0, 5, 0x0f, 0xa1, 0x0f, 0xa2, 0, 0, 0x0e, 0x10}, pmpMapResponse{}, true},
}

func TestPMPDecodeMap(t *testing.T) {
	for _, tc := range pmpMapCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePMPMapResponse(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
		})
	}
}

func FuzzPMPDecode(f *testing.F) {
	for _, tc := range pmpExtCases {
		f.Add(tc.in)
	}
	for _, tc := range pmpMapCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodePMPExternalAddrResponse(b); err == nil {
			if r.Result == 0 && !r.IP.Is4() {
				t.Fatalf("success without IPv4: %+v", r)
			}
			if binary.BigEndian.Uint32(b[4:8]) != r.Epoch {
				t.Fatal("epoch mismatch")
			}
		}
		if r, err := decodePMPMapResponse(b); err == nil {
			if r.Proto != TCP && r.Proto != UDP {
				t.Fatalf("bad proto %q", r.Proto)
			}
			if r.Result == 0 && len(b) < pmpMapResponseLen {
				t.Fatal("success accepted from a short packet")
			}
		}
	})
}

func pcpMapResponseBytes(result uint8, life, epoch uint32, m pcpMap, options []byte) []byte {
	b := make([]byte, pcpHeaderLen+pcpMapPayloadLen)
	b[0], b[1], b[3] = 2, 0x81, result
	binary.BigEndian.PutUint32(b[4:], life)
	binary.BigEndian.PutUint32(b[8:], epoch)
	p := b[pcpHeaderLen:]
	copy(p, m.Nonce[:])
	p[12] = m.Protocol
	binary.BigEndian.PutUint16(p[16:], m.InternalPort)
	binary.BigEndian.PutUint16(p[18:], m.ExternalPort)
	putPCPAddr(p[20:36], m.ExternalIP)
	return append(b, options...)
}

func TestPCPEncode(t *testing.T) {
	client := netip.MustParseAddr("192.168.1.10")
	a := encodePCPAnnounce(client)
	want := append([]byte{2, 0, 0, 0, 0, 0, 0, 0}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 10)
	if !bytes.Equal(a, want) {
		t.Fatalf("announce = %x\nwant       %x", a, want)
	}
	m := pcpMap{Nonce: [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Protocol: 6, InternalPort: 4001, ExternalPort: 4001}
	b := encodePCPMapRequest(client, 3600, m)
	if len(b) != 60 || b[0] != 2 || b[1] != 1 || binary.BigEndian.Uint32(b[4:]) != 3600 {
		t.Fatalf("map header = %x", b[:24])
	}
	p := b[24:]
	if !bytes.Equal(p[:12], m.Nonce[:]) || p[12] != 6 || binary.BigEndian.Uint16(p[16:]) != 4001 ||
		binary.BigEndian.Uint16(p[18:]) != 4001 {
		t.Fatalf("map payload = %x", p)
	}
	// No suggested external address: ::ffff:0.0.0.0 (RFC 6887 §11.1).
	if !bytes.Equal(p[20:36], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}) {
		t.Fatalf("suggested external = %x", p[20:36])
	}
}

var pcpCases = func() []struct {
	name    string
	in      []byte
	wantErr bool
} {
	m := pcpMap{Nonce: [12]byte{9}, Protocol: 17, InternalPort: 4001, ExternalPort: 40001,
		ExternalIP: netip.MustParseAddr("203.0.113.9")}
	ok := pcpMapResponseBytes(0, 3600, 77, m, nil)
	withOpt := pcpMapResponseBytes(0, 3600, 77, m, []byte{2, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	badOpt := pcpMapResponseBytes(0, 3600, 77, m, []byte{2, 0, 0, 40, 0, 0, 0, 0})
	announce := make([]byte, 24)
	announce[0], announce[1] = 2, 0x80
	errNoPayload := make([]byte, 24)
	errNoPayload[0], errNoPayload[1], errNoPayload[3] = 2, 0x81, 2
	req := encodePCPAnnounce(netip.MustParseAddr("10.0.0.1"))
	return []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"map success", ok, false},
		{"map with option", withOpt, false},
		{"option overruns", badOpt, true},
		{"announce", announce, false},
		{"error without payload", errNoPayload, false},
		{"request not response", req, true},
		{"truncated", ok[:30], true},
		{"not multiple of 4", append(append([]byte{}, ok...), 0), true},
		{"success without payload", append([]byte{2, 0x81, 0, 0}, make([]byte, 20)...), true},
	}
}()

func TestPCPDecode(t *testing.T) {
	for _, tc := range pcpCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodePCPResponse(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && tc.name == "map success" {
				if r.Opcode != pcpOpMap || r.Lifetime != 3600 || r.Epoch != 77 || r.Map.ExternalPort != 40001 ||
					r.Map.ExternalIP != netip.MustParseAddr("203.0.113.9") || r.Map.Protocol != 17 || r.Map.Nonce[0] != 9 {
					t.Fatalf("decoded %+v", r)
				}
			}
		})
	}
}

func FuzzPCPDecode(f *testing.F) {
	for _, tc := range pcpCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodePCPResponse(b)
		if err != nil {
			return
		}
		if len(b)%4 != 0 || len(b) < pcpHeaderLen || b[0] != pcpVersion {
			t.Fatalf("accepted invalid packet %x", b)
		}
		if r.Opcode == pcpOpMap && r.Result == 0 {
			// Re-encoding the payload must reproduce the input bytes.
			again := pcpMapResponseBytes(r.Result, r.Lifetime, r.Epoch, r.Map, nil)
			if !bytes.Equal(again[24:36], b[24:36]) || !bytes.Equal(again[40:44], b[40:44]) {
				t.Fatalf("payload round trip: %x vs %x", again[24:60], b[24:60])
			}
		}
	})
}

var routeCases = []struct {
	name    string
	in      string
	want    string
	wantErr bool
}{
	{"typical", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n", "192.168.1.1", false},
	{"lowest metric wins", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
		"wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\n" +
		"eth0\t00000000\t010B0A0A\t0003\t0\t0\t100\t00000000\n", "10.10.11.1", false},
	{"no default", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
		"eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\n", "", true},
	{"default down", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
		"eth0\t00000000\t0101A8C0\t0002\t0\t0\t100\t00000000\n", "", true},
	{"empty", "", "", true},
	{"garbage", "x\ny z\n00000000 zz", "", true},
}

func TestParseRouteTable(t *testing.T) {
	for _, tc := range routeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRouteTable([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrNoGateway) {
					t.Fatalf("err %v not ErrNoGateway", err)
				}
				return
			}
			if got.String() != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
}

func FuzzParseRouteTable(f *testing.F) {
	for _, tc := range routeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		gw, err := parseRouteTable(b)
		if err == nil && (!gw.Is4() || gw.IsUnspecified()) {
			t.Fatalf("bad gateway %s", gw)
		}
	})
}

var ssdpCases = []struct {
	name    string
	in      string
	loc     string
	wantErr bool
}{
	{"miniupnpd", "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
		"USN: uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\nEXT:\r\nSERVER: Linux UPnP/1.1 MiniUPnPd/2.3.1\r\n" +
		"LOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n", "http://192.168.1.1:5000/rootDesc.xml", false},
	{"lower case headers", "HTTP/1.1 200 OK\r\nlocation:http://192.168.178.1:49000/igddesc.xml\r\nst: upnp:rootdevice\r\n\r\n",
		"http://192.168.178.1:49000/igddesc.xml", false},
	{"bare LF", "HTTP/1.1 200 OK\nLocation: http://10.0.0.1/d.xml\n\n", "http://10.0.0.1/d.xml", false},
	{"notify not reply", "NOTIFY * HTTP/1.1\r\nLOCATION: http://10.0.0.1/d.xml\r\n\r\n", "", true},
	{"no location", "HTTP/1.1 200 OK\r\nST: x\r\n\r\n", "", true},
	{"bad scheme", "HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n", "", true},
	{"error status", "HTTP/1.1 404 Not Found\r\nLOCATION: http://10.0.0.1/d.xml\r\n\r\n", "", true},
}

func TestParseSSDPReply(t *testing.T) {
	for _, tc := range ssdpCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseSSDPReply([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && r.Location.String() != tc.loc {
				t.Fatalf("location %s want %s", r.Location, tc.loc)
			}
		})
	}
}

func FuzzParseSSDPReply(f *testing.F) {
	for _, tc := range ssdpCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseSSDPReply(b)
		if err == nil && (r.Location == nil || r.Location.Host == "") {
			t.Fatal("accepted reply without a usable location")
		}
	})
}

func TestUsableExternal(t *testing.T) {
	lab := []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")}
	cases := []struct {
		ip     string
		public []netip.Prefix
		want   bool
	}{
		{"203.0.113.7", nil, true},
		{"8.8.8.8", nil, true},
		{"", nil, false},
		{"0.0.0.0", nil, false},
		{"192.168.0.2", nil, false},
		{"10.1.2.3", nil, false},
		{"172.16.5.5", nil, false},
		{"100.64.0.1", nil, false},
		{"100.127.255.254", nil, false},
		{"100.128.0.1", nil, true},
		{"169.254.1.1", nil, false},
		{"127.0.0.1", nil, false},
		{"10.77.0.11", lab, true},
		{"10.78.0.11", lab, false},
	}
	for _, tc := range cases {
		ip, _ := netip.ParseAddr(tc.ip)
		if got := usableExternal(ip, tc.public); got != tc.want {
			t.Errorf("usableExternal(%q) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}

func TestAltPortStableAndInRange(t *testing.T) {
	seen := map[uint16]bool{}
	for i := 0; i < 50; i++ {
		p := altPort("12D3KooWnode", TCP, 4001, i)
		if p < 1024 {
			t.Fatalf("port %d < 1024", p)
		}
		if p != altPort("12D3KooWnode", TCP, 4001, i) {
			t.Fatal("not stable")
		}
		seen[p] = true
	}
	if len(seen) < 45 {
		t.Fatalf("only %d distinct ports out of 50", len(seen))
	}
	if altPort("a", TCP, 4001, 0) == altPort("b", TCP, 4001, 0) && altPort("a", TCP, 4001, 1) == altPort("b", TCP, 4001, 1) {
		t.Fatal("seed ignored")
	}
}
