package natpunch

import (
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/huin/goupnp/dcps/internetgateway2"

	"github.com/entrepot/entrepot/natpunch/natpunchtest"
)

func readDesc(t testing.TB, name string) string {
	b, err := os.ReadFile("natpunchtest/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var descCases = []struct {
	name    string
	file    string // from natpunchtest/testdata, or raw XML in xml
	xml     string
	service string
	control string // resolved control URL; "" = error expected
}{
	{name: "miniupnpd IGDv2", file: natpunchtest.DescIGDv2, service: internetgateway2.URN_WANIPConnection_2,
		control: "http://192.168.1.1:5000/ctl/IPConn"},
	{name: "miniupnpd IGDv1", file: natpunchtest.DescIGDv1, service: internetgateway2.URN_WANIPConnection_1,
		control: "http://192.168.1.1:5000/ctl/IPConn"},
	{name: "FritzBox-like URLBase same host", service: internetgateway2.URN_WANPPPConnection_1,
		control: "http://192.168.1.1:5000/igdupnp/control/WANPPPConn1"},
	{name: "URLBase on another host is ignored", service: internetgateway2.URN_WANIPConnection_1,
		xml: `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>http://10.9.9.9:80/</URLBase>` +
			`<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><serviceList><service>` +
			`<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/c</controlURL>` +
			`</service></serviceList></device></root>`,
		control: "http://192.168.1.1:5000/c"},
	{name: "latin-1 description", service: internetgateway2.URN_WANIPConnection_1,
		xml: "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><root xmlns=\"urn:schemas-upnp-org:device-1-0\">" +
			"<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>" +
			"<friendlyName>Bo\xeete</friendlyName><serviceList><service>" +
			"<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/c</controlURL>" +
			"</service></serviceList></device></root>",
		control: "http://192.168.1.1:5000/c"},
	{name: "not a description", xml: "<html><body>login</body></html>"},
	{name: "truncated", xml: `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>`},
}

func TestParseRootDevice(t *testing.T) {
	loc, _ := url.Parse("http://192.168.1.1:5000/rootDesc.xml")
	for _, tc := range descCases {
		t.Run(tc.name, func(t *testing.T) {
			x := tc.xml
			if tc.file != "" {
				x = readDesc(t, tc.file)
			}
			if tc.name == "FritzBox-like URLBase same host" {
				x = strings.ReplaceAll(readDesc(t, natpunchtest.DescFritzBoxPPP), "{{HOST}}", "192.168.1.1:5000")
			}
			root, err := parseRootDevice(strings.NewReader(x), loc)
			if tc.control == "" {
				if err == nil {
					t.Fatalf("parsed %+v", root.Device)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			srvs := root.Device.FindService(tc.service)
			if len(srvs) != 1 {
				t.Fatalf("%d %s services", len(srvs), tc.service)
			}
			if got := srvs[0].ControlURL.URL.String(); got != tc.control {
				t.Fatalf("control URL %s, want %s", got, tc.control)
			}
			if tc.name == "latin-1 description" && root.Device.FriendlyName != "Boîte" {
				t.Fatalf("friendly name %q", root.Device.FriendlyName)
			}
		})
	}
}

func FuzzParseRootDevice(f *testing.F) {
	for _, tc := range descCases {
		if tc.xml != "" {
			f.Add([]byte(tc.xml))
		}
	}
	f.Add([]byte(readDesc(f, natpunchtest.DescIGDv2)))
	loc, _ := url.Parse("http://192.168.1.1:5000/rootDesc.xml")
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseRootDevice(strings.NewReader(string(b)), loc)
		if err != nil {
			return
		}
		if root.Device.DeviceType == "" {
			t.Fatal("accepted a description without a root device")
		}
	})
}

func TestControlURLOnAnotherHostRefused(t *testing.T) {
	desc := `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>` +
		`<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><serviceList><service>` +
		`<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>` +
		`<controlURL>http://10.9.9.9:80/ctl</controlURL></service></serviceList></device></root>`
	e := newEnv(t, envOpt{desc: desc})
	if _, err := e.c.Map(ctxT(t), MappingRequest{Proto: TCP, InternalPort: 4001}); err == nil {
		t.Fatal("mapped through a control URL on another host")
	}
	if e.c.Gateway().IGD != "" {
		t.Fatalf("IGD accepted: %+v", e.c.Gateway())
	}
}

func TestIGDCandidates(t *testing.T) {
	gw := netip.MustParseAddr("192.168.1.1")
	mk := func(loc, from, st, usn string) ssdpReply {
		u, _ := url.Parse(loc)
		return ssdpReply{Location: u, From: netip.MustParseAddrPort(from), ST: st, USN: usn}
	}
	cases := []struct {
		name    string
		replies []ssdpReply
		want    []string
	}{
		{"gateway IGD:2 before IGD:1", []ssdpReply{
			mk("http://192.168.1.1:5000/a.xml", "192.168.1.1:1900", stIGD1, "b"),
			mk("http://192.168.1.1:5000/b.xml", "192.168.1.1:1900", stIGD2, "a"),
		}, []string{"http://192.168.1.1:5000/b.xml", "http://192.168.1.1:5000/a.xml"}},
		{"other LAN host ignored", []ssdpReply{
			mk("http://192.168.1.50:49000/d.xml", "192.168.1.50:1900", stIGD1, "x"),
		}, nil},
		{"gateway advertising a stale address is rewritten", []ssdpReply{
			mk("http://10.0.0.1:5000/d.xml", "192.168.1.1:41952", stIGD1, "x"),
		}, []string{"http://192.168.1.1:5000/d.xml"}},
		{"location naming the gateway from another source", []ssdpReply{
			mk("http://192.168.1.1/d.xml", "192.168.1.7:1900", stIGD1, "x"),
		}, []string{"http://192.168.1.1/d.xml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range igdCandidates(tc.replies, gw) {
				got = append(got, r.Location.String())
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
}
