package natpunch

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// UPnP error codes (UPnP IGD WANIPConnection:2 §2.4, Device Architecture).
const (
	upnpInvalidArgs        = 402
	upnpActionFailed       = 501
	upnpNotAuthorized      = 606
	upnpNoSuchEntry        = 714
	upnpWildCardExtPort    = 716
	upnpConflict           = 718
	upnpOnlyPermanentLease = 725
)

// igdConn is the subset of the goupnp WAN connection clients natpunch uses;
// WANIPConnection1, WANIPConnection2 and WANPPPConnection1 all satisfy it.
type igdConn interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16,
		intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	GetSpecificPortMappingEntryCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) (
		intPort uint16, intClient string, enabled bool, desc string, lease uint32, err error)
}

// igdAddAny is implemented by WANIPConnection2 only.
type igdAddAny interface {
	AddAnyPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16,
		intClient string, enabled bool, desc string, lease uint32) (uint16, error)
}

var (
	_ igdConn   = (*internetgateway2.WANIPConnection1)(nil)
	_ igdConn   = (*internetgateway2.WANIPConnection2)(nil)
	_ igdConn   = (*internetgateway2.WANPPPConnection1)(nil)
	_ igdAddAny = (*internetgateway2.WANIPConnection2)(nil)
)

// upnpMapper maps ports through one WAN connection service of an IGD.
type upnpMapper struct {
	conn     igdConn
	service  string // service type URN
	location *url.URL
	friendly string
	server   string
	timeout  time.Duration
	altTries int

	mu            sync.Mutex
	permanentOnly bool
	ext           netip.Addr
}

func (u *upnpMapper) method() Method { return MethodUPnP }

func (u *upnpMapper) identity() string {
	short := strings.TrimPrefix(u.service, "urn:schemas-upnp-org:service:")
	return fmt.Sprintf("UPnP %s %q at %s", short, u.friendly, u.location)
}

// upnpCode returns the UPnP error code in err, or 0.
func upnpCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		if f.Detail.UPnPError.Errorcode != 0 {
			return f.Detail.UPnPError.Errorcode
		}
		return -1
	}
	return 0
}

// upnpErr converts a goupnp error: SOAP faults become RouterError, anything
// else (connection refused, timeout, HTTP error, bad XML) is a transport
// failure that calls for rediscovery.
func upnpErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return fmt.Errorf("%s: %w", what, &RouterError{Method: MethodUPnP, Code: upnpCode(err),
			Text: strings.TrimSpace(f.Detail.UPnPError.ErrorDescription + " " + f.FaultString)})
	}
	return unreachable(what, err)
}

func (u *upnpMapper) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, u.timeout)
}

func (u *upnpMapper) check(ctx context.Context) (netip.Addr, bool, error) {
	ctx, cancel := u.call(ctx)
	defer cancel()
	s, err := u.conn.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, false, upnpErr("UPnP GetExternalIPAddress", err)
	}
	ip, _ := netip.ParseAddr(strings.TrimSpace(s)) // "" (miniupnpd behind NAT) gives the zero Addr
	u.mu.Lock()
	u.ext = ip
	u.mu.Unlock()
	return ip, false, nil
}

func (u *upnpMapper) addOne(ctx context.Context, s mapSpec, ext uint16, lease uint32) error {
	ctx, cancel := u.call(ctx)
	defer cancel()
	return u.conn.AddPortMappingCtx(ctx, "", ext, string(s.Proto), s.InternalPort, s.InternalIP.String(),
		true, s.Description, lease)
}

func (u *upnpMapper) add(ctx context.Context, s mapSpec) (netip.AddrPort, time.Duration, error) {
	u.mu.Lock()
	permanent := u.permanentOnly
	u.mu.Unlock()
	lease := uint32(s.Lease / time.Second)
	if permanent {
		lease = 0
	}
	ports := make([]uint16, 0, u.altTries+1)
	if s.ExternalPort >= 1024 || (s.AllowLow && s.ExternalPort != 0) {
		ports = append(ports, s.ExternalPort)
	}
	for i := 0; len(ports) < u.altTries+1 && i < 4*u.altTries+4; i++ {
		if p := altPort(s.Seed, s.Proto, s.InternalPort, i); p != s.ExternalPort {
			ports = append(ports, p)
		}
	}
	var lastErr error
	for i := 0; i < len(ports); i++ {
		ext := ports[i]
		err := u.addOne(ctx, s, ext, lease)
		code := upnpCode(err)
		if err != nil && lease != 0 && (code == upnpOnlyPermanentLease || code == upnpInvalidArgs) {
			// Some IGDv1 routers accept only permanent leases; keep the
			// renewal schedule anyway (nat.md §6).
			lease = 0
			if code == upnpOnlyPermanentLease {
				u.mu.Lock()
				u.permanentOnly = true
				u.mu.Unlock()
			}
			err = u.addOne(ctx, s, ext, lease)
			code = upnpCode(err)
		}
		if err == nil {
			return u.result(ext), time.Duration(lease) * time.Second, nil
		}
		lastErr = upnpErr(fmt.Sprintf("UPnP AddPortMapping %s %d->%d", s.Proto, ext, s.InternalPort), err)
		switch code {
		case 0:
			return netip.AddrPort{}, 0, lastErr // transport failure
		case upnpConflict:
			// Another LAN host holds it: let an IGDv2 pick a free port.
			if any, ok := u.conn.(igdAddAny); ok {
				cctx, cancel := u.call(ctx)
				got, err := any.AddAnyPortMappingCtx(cctx, "", ext, string(s.Proto), s.InternalPort,
					s.InternalIP.String(), true, s.Description, lease)
				cancel()
				if err == nil && got != 0 {
					return u.result(got), time.Duration(lease) * time.Second, nil
				}
				if err != nil {
					lastErr = upnpErr("UPnP AddAnyPortMapping", err)
					if upnpCode(err) == 0 {
						return netip.AddrPort{}, 0, lastErr
					}
				}
			}
			continue
		case upnpNotAuthorized, upnpWildCardExtPort:
			if ext < 1024 || code == upnpWildCardExtPort {
				continue // try a port in the allowed range
			}
			return netip.AddrPort{}, 0, lastErr
		default:
			return netip.AddrPort{}, 0, lastErr
		}
	}
	if lastErr == nil {
		lastErr = ErrBadRequest
	}
	return netip.AddrPort{}, 0, fmt.Errorf("%w: %w", ErrConflict, lastErr)
}

func (u *upnpMapper) result(ext uint16) netip.AddrPort {
	u.mu.Lock()
	defer u.mu.Unlock()
	return netip.AddrPortFrom(u.ext, ext)
}

func (u *upnpMapper) remove(ctx context.Context, s mapSpec, external uint16) error {
	ctx, cancel := u.call(ctx)
	defer cancel()
	err := u.conn.DeletePortMappingCtx(ctx, "", external, string(s.Proto))
	if upnpCode(err) == upnpNoSuchEntry {
		return nil
	}
	return upnpErr(fmt.Sprintf("UPnP DeletePortMapping %s %d", s.Proto, external), err)
}

func (u *upnpMapper) verify(ctx context.Context, s mapSpec, external uint16) (bool, error) {
	ctx, cancel := u.call(ctx)
	defer cancel()
	port, client, enabled, _, _, err := u.conn.GetSpecificPortMappingEntryCtx(ctx, "", external, string(s.Proto))
	if err != nil {
		if c := upnpCode(err); c == upnpNoSuchEntry || c == upnpInvalidArgs {
			return false, nil
		}
		return false, upnpErr("UPnP GetSpecificPortMappingEntry", err)
	}
	ip, _ := netip.ParseAddr(strings.TrimSpace(client))
	return enabled && port == s.InternalPort && ip == s.InternalIP, nil
}

// igdCandidates orders SSDP replies for the gateway gw: locations on the
// gateway first, IGD:2 before IGD:1, then by USN for stability. A reply sent
// by the gateway whose location names another host is rewritten to the
// gateway (some routers advertise a stale or internal address); replies from
// other hosts are dropped, so natpunch never maps on a LAN host that is not
// its gateway.
func igdCandidates(replies []ssdpReply, gw netip.Addr) []ssdpReply {
	var out []ssdpReply
	for _, r := range replies {
		host, err := netip.ParseAddr(r.Location.Hostname())
		switch {
		case err == nil && host.Unmap() == gw:
		case r.From.Addr() == gw:
			u := *r.Location
			if p := u.Port(); p != "" {
				u.Host = gw.String() + ":" + p
			} else {
				u.Host = gw.String()
			}
			r.Location = &u
		default:
			continue
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		vi, vj := strings.Contains(out[i].ST, ":2"), strings.Contains(out[j].ST, ":2")
		if vi != vj {
			return vi
		}
		return out[i].USN < out[j].USN
	})
	return out
}

// upnpFromReplies loads the description of each candidate IGD (at most
// three) and returns its WAN connection services, best first:
// WANIPConnection:2, WANIPConnection:1, WANPPPConnection:1.
func upnpFromReplies(ctx context.Context, hc *http.Client, replies []ssdpReply, timeout time.Duration, altTries int) ([]*upnpMapper, error) {
	var (
		out     []*upnpMapper
		lastErr error
	)
	for i, r := range replies {
		if i == 3 {
			break
		}
		root, err := fetchRootDevice(ctx, hc, r.Location, timeout)
		if err != nil {
			lastErr = err
			continue
		}
		mk := func(conn igdConn, sc *goupnp.ServiceClient, urn string) {
			if sc.SOAPClient.EndpointURL.Host != r.Location.Host {
				// Never send SOAP to a host other than the gateway.
				lastErr = fmt.Errorf("IGD %s: control URL %s is on another host", r.Location, &sc.SOAPClient.EndpointURL)
				return
			}
			sc.SOAPClient.HTTPClient = http.Client{Transport: hc.Transport, Timeout: timeout}
			out = append(out, &upnpMapper{conn: conn, service: urn, location: r.Location,
				friendly: root.Device.FriendlyName, server: r.Server, timeout: timeout, altTries: altTries})
		}
		if cs, err := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, r.Location); err == nil {
			for _, c := range cs {
				mk(c, &c.ServiceClient, internetgateway2.URN_WANIPConnection_2)
			}
		}
		if cs, err := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, r.Location); err == nil {
			for _, c := range cs {
				mk(c, &c.ServiceClient, internetgateway2.URN_WANIPConnection_1)
			}
		}
		if cs, err := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, r.Location); err == nil {
			for _, c := range cs {
				mk(c, &c.ServiceClient, internetgateway2.URN_WANPPPConnection_1)
			}
		}
		if len(out) == 0 {
			lastErr = fmt.Errorf("IGD %q at %s: no WAN connection service", root.Device.FriendlyName, r.Location)
		}
	}
	if len(out) == 0 {
		if lastErr == nil {
			lastErr = ErrNoService
		}
		return nil, lastErr
	}
	return out, nil
}

// maxDescription bounds a device description (real ones are a few KiB).
const maxDescription = 1 << 20

// fetchRootDevice loads and parses a root device description with the
// client's own HTTP client (no proxy from the environment, bounded size),
// instead of goupnp.DeviceByURLCtx and its global http.DefaultClient. A
// URLBase naming another host than the location is ignored.
func fetchRootDevice(ctx context.Context, hc *http.Client, loc *url.URL, timeout time.Duration) (*goupnp.RootDevice, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("load IGD description %s: %w", loc, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("load IGD description %s: %w", loc, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("load IGD description %s: HTTP %s", loc, resp.Status)
	}
	root, err := parseRootDevice(io.LimitReader(resp.Body, maxDescription), loc)
	if err != nil {
		return nil, fmt.Errorf("load IGD description %s: %w", loc, err)
	}
	return root, nil
}

// parseRootDevice decodes a UPnP device description and resolves its
// URLs against loc (or its URLBase when that names the same host).
func parseRootDevice(r io.Reader, loc *url.URL) (*goupnp.RootDevice, error) {
	root := new(goupnp.RootDevice)
	d := xml.NewDecoder(r)
	d.DefaultSpace = goupnp.DeviceXMLNamespace
	d.CharsetReader = charsetReader
	if err := d.Decode(root); err != nil {
		return nil, fmt.Errorf("parse device description: %w", err)
	}
	if root.Device.DeviceType == "" {
		return nil, errors.New("parse device description: no root device")
	}
	base := *loc
	if root.URLBaseStr != "" {
		if u, err := url.Parse(strings.TrimSpace(root.URLBaseStr)); err == nil && u.Host == loc.Host &&
			(u.Scheme == "http" || u.Scheme == "https") {
			base = *u
		}
	}
	root.SetURLBase(&base)
	return root, nil
}

// charsetReader accepts the ISO-8859-1 descriptions some routers send
// (bytes map one to one onto the first 256 code points).
func charsetReader(charset string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii":
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		return strings.NewReader(string(rs)), nil
	}
	return nil, fmt.Errorf("unsupported charset %q", charset)
}
