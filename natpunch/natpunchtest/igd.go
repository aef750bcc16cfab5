package natpunchtest

import (
	"bytes"
	"embed"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

//go:embed testdata/*.xml
var descFS embed.FS

// Device descriptions shaped like real routers (written from the UPnP IGD
// specifications, not captured): miniupnpd in IGDv2 mode (WANIPConnection:2
// only), miniupnpd with force_igd_desc_v1 (WANIPConnection:1 only), and a
// FritzBox-like DSL box with WANPPPConnection:1, an absolute URLBase and an
// unrelated vendor service.
const (
	DescIGDv2       = "miniupnpd-igdv2.xml"
	DescIGDv1       = "miniupnpd-igdv1.xml"
	DescFritzBoxPPP = "fritzbox-ppp.xml"
)

// UPnP error codes the fake returns.
const (
	ErrInvalidArgs        = 402
	ErrActionFailed       = 501
	ErrNotAuthorized      = 606
	ErrNoSuchEntry        = 714
	ErrWildCardExtPort    = 716
	ErrConflict           = 718
	ErrOnlyPermanentLease = 725
)

var errorText = map[int]string{
	401: "Invalid Action", 402: "Invalid Args", 501: "Action Failed", 606: "Action not authorized",
	714: "NoSuchEntryInArray", 716: "WildCardNotPermittedInExtPort", 718: "ConflictInMappingEntry",
	725: "OnlyPermanentLeasesSupported",
}

// IGDMapping is a port mapping held by the fake IGD.
type IGDMapping struct {
	Proto        string
	ExternalPort uint16
	InternalPort uint16
	Client       string
	Description  string
	Lease        uint32
	Enabled      bool
}

type mapKey struct {
	proto string
	port  uint16
}

type fault struct {
	code  int
	count int // remaining; <0 = forever
}

// IGD is a fake UPnP Internet Gateway Device on 127.0.0.1.
type IGD struct {
	desc      string
	serverHdr string

	ssdp *net.UDPConn
	wg   sync.WaitGroup

	mu            sync.Mutex
	http          *http.Server
	httpLn        net.Listener
	services      map[string]string // control path -> service type
	mappings      map[mapKey]IGDMapping
	externalIP    string
	faults        map[string]*fault // by action name
	permanentOnly bool
	allowLow      bool
	calls         map[string]int
	writes        int
	ssdpQueries   int
	ssdpSilent    bool
	ignoreDeletes bool
	closed        bool
}

// NewIGD starts a fake IGD serving the named description (DescIGDv2,
// DescIGDv1, DescFritzBoxPPP) or, if it does not name one, the XML given.
// Its external IP is 203.0.113.7 until SetExternalIP.
func NewIGD(desc string) (*IGD, error) {
	if b, err := descFS.ReadFile("testdata/" + desc); err == nil {
		desc = string(b)
	}
	g := &IGD{
		desc:       desc,
		serverHdr:  "Linux/6.1 UPnP/1.1 MiniUPnPd/2.3.1",
		mappings:   map[mapKey]IGDMapping{},
		externalIP: "203.0.113.7",
		faults:     map[string]*fault{},
		calls:      map[string]int{},
	}
	if err := g.parseServices(); err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("listen SSDP: %w", err)
	}
	g.ssdp = c
	if err := g.startHTTP(); err != nil {
		c.Close()
		return nil, err
	}
	g.wg.Add(1)
	go serveUDP(&g.wg, g.ssdp, 2048, g.answerSSDP)
	return g, nil
}

var ctlRe = regexp.MustCompile(`(?s)<serviceType>([^<]+)</serviceType>.*?<controlURL>([^<]+)</controlURL>`)

func (g *IGD) parseServices() error {
	g.services = map[string]string{}
	for _, m := range ctlRe.FindAllStringSubmatch(g.desc, -1) {
		g.services[strings.TrimSpace(m[2])] = strings.TrimSpace(m[1])
	}
	if len(g.services) == 0 {
		return errors.New("fake IGD: description has no services")
	}
	return nil
}

func (g *IGD) startHTTP() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen HTTP: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(g.serveHTTP)}
	g.mu.Lock()
	g.http, g.httpLn = srv, ln
	g.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// SSDPAddr is where the fake answers M-SEARCH (unicast).
func (g *IGD) SSDPAddr() netip.AddrPort {
	return g.ssdp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Location is the URL of the root description.
func (g *IGD) Location() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return "http://" + g.httpLn.Addr().String() + "/rootDesc.xml"
}

// Close stops the fake.
func (g *IGD) Close() {
	g.mu.Lock()
	g.closed = true
	srv := g.http
	g.mu.Unlock()
	_ = srv.Close()
	_ = g.ssdp.Close()
	g.wg.Wait()
}

// Restart simulates a router reboot: the HTTP server moves to a new port
// (the old one refuses connections) and every mapping is lost.
func (g *IGD) Restart() error {
	g.mu.Lock()
	old := g.http
	g.mappings = map[mapKey]IGDMapping{}
	g.mu.Unlock()
	_ = old.Close()
	return g.startHTTP()
}

// SetExternalIP sets what GetExternalIPAddress returns ("" like miniupnpd
// behind another NAT).
func (g *IGD) SetExternalIP(ip string) {
	withLock(&g.mu, func() { g.externalIP = ip })
}

// SetDoubleNAT makes the fake behave like miniupnpd with a private WAN
// address: empty external IP and 501 on AddPortMapping.
func (g *IGD) SetDoubleNAT() {
	g.SetExternalIP("")
	g.SetFault("AddPortMapping", ErrActionFailed, -1)
	g.SetFault("AddAnyPortMapping", ErrActionFailed, -1)
}

// SetFault makes action fail with a UPnP error code count times (count < 0:
// until cleared; code 0 clears).
func (g *IGD) SetFault(action string, code, count int) {
	withLock(&g.mu, func() {
		if code == 0 || count == 0 {
			delete(g.faults, action)
			return
		}
		g.faults[action] = &fault{code: code, count: count}
	})
}

// SetPermanentOnly makes Add return 725 for any lease other than 0.
func (g *IGD) SetPermanentOnly(v bool) {
	withLock(&g.mu, func() { g.permanentOnly = v })
}

// SetSSDPSilent makes the SSDP responder ignore searches.
func (g *IGD) SetSSDPSilent(v bool) {
	withLock(&g.mu, func() { g.ssdpSilent = v })
}

// Reserve installs a mapping held by another LAN host.
func (g *IGD) Reserve(proto string, external uint16, client string) {
	withLock(&g.mu, func() {
		g.mappings[mapKey{strings.ToUpper(proto), external}] = IGDMapping{Proto: strings.ToUpper(proto),
			ExternalPort: external, InternalPort: external, Client: client, Description: "other host", Enabled: true}
	})
}

// ClearMappings drops every mapping (a router that forgets them) without
// moving the HTTP port.
func (g *IGD) ClearMappings() {
	withLock(&g.mu, func() { g.mappings = map[mapKey]IGDMapping{} })
}

// Mappings returns the mappings, sorted by protocol and external port.
func (g *IGD) Mappings() []IGDMapping {
	g.mu.Lock()
	defer g.mu.Unlock()
	return sortedValues(g.mappings, func(a, b IGDMapping) bool {
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		return a.ExternalPort < b.ExternalPort
	})
}

// Calls returns how many times action was called.
func (g *IGD) Calls(action string) int { return locked(&g.mu, func() int { return g.calls[action] }) }

// Writes returns the number of Add, AddAny and Delete calls.
func (g *IGD) Writes() int { return locked(&g.mu, func() int { return g.writes }) }

// SSDPQueries returns the number of M-SEARCH packets received.
func (g *IGD) SSDPQueries() int { return locked(&g.mu, func() int { return g.ssdpQueries }) }

// answerSSDP is the reply to an SSDP datagram: a search response for an
// M-SEARCH of ssdp:all or an InternetGatewayDevice, nil otherwise or while
// silent.
func (g *IGD) answerSSDP(b []byte) []byte {
	req := string(b)
	if !strings.HasPrefix(req, "M-SEARCH") {
		return nil
	}
	st := ""
	for _, line := range strings.Split(req, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "ST") {
			st = strings.TrimSpace(v)
		}
	}
	g.mu.Lock()
	g.ssdpQueries++
	silent := g.ssdpSilent
	g.mu.Unlock()
	if silent || !(st == "ssdp:all" || strings.Contains(st, "InternetGatewayDevice")) {
		return nil
	}
	return []byte("HTTP/1.1 200 OK\r\n" +
		"CACHE-CONTROL: max-age=120\r\n" +
		"ST: " + st + "\r\n" +
		"USN: uuid:fake-igd::" + st + "\r\n" +
		"EXT:\r\n" +
		"SERVER: " + g.serverHdr + "\r\n" +
		"LOCATION: " + g.Location() + "\r\n" +
		"OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n" +
		"BOOTID.UPNP.ORG: 1\r\n\r\n")
}

func (g *IGD) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		if r.URL.Path != "/rootDesc.xml" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		_, _ = io.WriteString(w, strings.ReplaceAll(g.desc, "{{HOST}}", r.Host))
		return
	}
	g.mu.Lock()
	svc, ok := g.services[r.URL.Path]
	g.mu.Unlock()
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	ns, action, _ := strings.Cut(strings.Trim(r.Header.Get("SOAPACTION"), `"`), "#")
	if ns != svc {
		writeFault(w, 401)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		writeFault(w, 402)
		return
	}
	args, err := soapArgs(body, action)
	if err != nil {
		writeFault(w, 402)
		return
	}
	out, code := g.handle(svc, action, args)
	if code != 0 {
		writeFault(w, code)
		return
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>`)
	fmt.Fprintf(&b, `<u:%sResponse xmlns:u="%s">`, action, svc)
	for _, kv := range out {
		fmt.Fprintf(&b, "<%s>", kv[0])
		_ = xml.EscapeText(&b, []byte(kv[1]))
		fmt.Fprintf(&b, "</%s>", kv[0])
	}
	fmt.Fprintf(&b, `</u:%sResponse></s:Body></s:Envelope>`, action)
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	_, _ = w.Write(b.Bytes())
}

func writeFault(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\r\n"+
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>`+
		`<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>`+
		`<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError>`+
		`</detail></s:Fault></s:Body></s:Envelope>`, code, errorText[code])
}

// soapArgs returns the child elements of the action element.
func soapArgs(body []byte, action string) (map[string]string, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	args := map[string]string{}
	depth := -1
	var cur string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth < 0 && t.Name.Local == action {
				depth = 0
				continue
			}
			if depth >= 0 {
				depth++
				if depth == 1 {
					cur = t.Name.Local
					args[cur] = ""
				}
			}
		case xml.CharData:
			if depth == 1 {
				args[cur] += string(t)
			}
		case xml.EndElement:
			if depth >= 0 {
				depth--
			}
		}
	}
	if depth == -1 && len(args) == 0 && !bytes.Contains(body, []byte(action)) {
		return nil, errors.New("no action element")
	}
	return args, nil
}

func (g *IGD) handle(svc, action string, a map[string]string) ([][2]string, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls[action]++
	if f := g.faults[action]; f != nil {
		if f.count > 0 {
			f.count--
			if f.count == 0 {
				delete(g.faults, action)
			}
		}
		if action != "GetExternalIPAddress" && action != "GetSpecificPortMappingEntry" {
			g.writes++
		}
		return nil, f.code
	}
	port := func(k string) (uint16, bool) {
		v, err := strconv.ParseUint(strings.TrimSpace(a[k]), 10, 16)
		return uint16(v), err == nil
	}
	proto := a["NewProtocol"]
	switch action {
	case "GetExternalIPAddress":
		return [][2]string{{"NewExternalIPAddress", g.externalIP}}, 0
	case "GetStatusInfo":
		return [][2]string{{"NewConnectionStatus", "Connected"}, {"NewLastConnectionError", "ERROR_NONE"}, {"NewUptime", "1000"}}, 0
	case "AddPortMapping", "AddAnyPortMapping":
		g.writes++
		if action == "AddAnyPortMapping" && !strings.HasSuffix(svc, "WANIPConnection:2") {
			return nil, 401
		}
		ext, ok1 := port("NewExternalPort")
		in, ok2 := port("NewInternalPort")
		lease, err := strconv.ParseUint(strings.TrimSpace(a["NewLeaseDuration"]), 10, 32)
		if !ok1 || !ok2 || err != nil || (proto != "TCP" && proto != "UDP") || a["NewInternalClient"] == "" {
			return nil, ErrInvalidArgs
		}
		if ext == 0 {
			return nil, ErrWildCardExtPort
		}
		if lease != 0 && g.permanentOnly {
			return nil, ErrOnlyPermanentLease
		}
		if lease > 604800 || (lease == 0 && strings.HasSuffix(svc, "WANIPConnection:2")) {
			lease = 604800 // miniupnpd: 0 means the maximum on IGDv2
		}
		m := IGDMapping{Proto: proto, InternalPort: in, Client: a["NewInternalClient"],
			Description: a["NewPortMappingDescription"], Lease: uint32(lease), Enabled: a["NewEnabled"] != "0"}
		free := func(p uint16) bool {
			old, ok := g.mappings[mapKey{proto, p}]
			return !ok || old.Client == m.Client
		}
		if action == "AddAnyPortMapping" {
			for i := 0; i < 65536 && (!free(ext) || (ext < 1024 && !g.allowLow)); i++ {
				ext++
				if ext == 0 {
					ext = 1024
				}
			}
		}
		if ext < 1024 && !g.allowLow {
			return nil, ErrNotAuthorized
		}
		if !free(ext) {
			return nil, ErrConflict
		}
		m.ExternalPort = ext
		g.mappings[mapKey{proto, ext}] = m
		if action == "AddAnyPortMapping" {
			return [][2]string{{"NewReservedPort", strconv.Itoa(int(ext))}}, 0
		}
		return nil, 0
	case "DeletePortMapping":
		g.writes++
		ext, ok := port("NewExternalPort")
		if !ok {
			return nil, ErrInvalidArgs
		}
		if !g.ignoreDeletes {
			delete(g.mappings, mapKey{proto, ext}) // miniupnpd: success even if absent
		}
		return nil, 0
	case "GetSpecificPortMappingEntry":
		ext, ok := port("NewExternalPort")
		if !ok {
			return nil, ErrInvalidArgs
		}
		m, found := g.mappings[mapKey{proto, ext}]
		if !found {
			return nil, ErrNoSuchEntry
		}
		en := "0"
		if m.Enabled {
			en = "1"
		}
		return [][2]string{{"NewInternalPort", strconv.Itoa(int(m.InternalPort))}, {"NewInternalClient", m.Client},
			{"NewEnabled", en}, {"NewPortMappingDescription", m.Description},
			{"NewLeaseDuration", strconv.Itoa(int(m.Lease))}}, 0
	}
	return nil, 401
}

// SetIgnoreDeletes makes DeletePortMapping answer success without
// deleting anything (a buggy router: a delete is no proof).
func (g *IGD) SetIgnoreDeletes(v bool) {
	withLock(&g.mu, func() { g.ignoreDeletes = v })
}
