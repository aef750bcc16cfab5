package natpunch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// SSDP search targets. An IGD:2 device also answers a search for IGD:1.
const (
	stIGD1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	stIGD2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
)

// ssdpMulticast is the SSDP multicast group and port.
var ssdpMulticast = netip.MustParseAddrPort("239.255.255.250:1900")

var errSSDPMalformed = errors.New("malformed SSDP reply")

type ssdpReply struct {
	Location *url.URL
	ST       string
	USN      string
	Server   string
	From     netip.AddrPort
}

func encodeMSearch(host, st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: " + host + "\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: 1\r\n" +
		"ST: " + st + "\r\n" +
		"USER-AGENT: linux UPnP/1.1 entrepot-natpunch/1\r\n\r\n")
}

// parseSSDPReply parses a unicast M-SEARCH response (UPnP Device
// Architecture 1.1 §1.3.3). Header names are case-insensitive.
func parseSSDPReply(b []byte) (ssdpReply, error) {
	var r ssdpReply
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), 8192)
	if !sc.Scan() {
		return r, fmt.Errorf("parse SSDP reply: empty: %w", errSSDPMalformed)
	}
	status := strings.Fields(sc.Text())
	if len(status) < 2 || !strings.HasPrefix(strings.ToUpper(status[0]), "HTTP/") || status[1] != "200" {
		return r, fmt.Errorf("parse SSDP reply: status line %.40q: %w", sc.Text(), errSSDPMalformed)
	}
	var loc string
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line == "\r" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToUpper(strings.TrimSpace(name)) {
		case "LOCATION":
			loc = value
		case "ST":
			r.ST = value
		case "USN":
			r.USN = value
		case "SERVER":
			r.Server = value
		}
	}
	if loc == "" {
		return r, fmt.Errorf("parse SSDP reply: no LOCATION: %w", errSSDPMalformed)
	}
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return r, fmt.Errorf("parse SSDP reply: LOCATION %.80q: %w", loc, errSSDPMalformed)
	}
	r.Location = u
	return r, nil
}

// ssdpSearch sends one M-SEARCH per search target to every target address
// from one socket and collects replies until ctx ends or, once a reply has
// arrived, for grace more. It returns the replies de-duplicated by location.
func ssdpSearch(ctx context.Context, local netip.Addr, targets []netip.AddrPort, grace time.Duration, onReply func()) ([]ssdpReply, error) {
	laddr := &net.UDPAddr{}
	if local.IsValid() && !local.IsUnspecified() {
		laddr.IP = local.AsSlice()
	}
	conn, err := net.ListenUDP("udp4", laddr)
	if err != nil {
		return nil, fmt.Errorf("open SSDP socket: %w", err)
	}
	defer conn.Close()
	// Cancelling ctx ends the wait at once (another protocol answered).
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	sent := 0
	var sendErr error
	for _, t := range targets {
		for _, st := range []string{stIGD1, stIGD2} {
			if _, err := conn.WriteToUDPAddrPort(encodeMSearch(ssdpMulticast.String(), st), t); err != nil {
				sendErr = err
				continue
			}
			sent++
		}
	}
	if sent == 0 {
		return nil, fmt.Errorf("send SSDP M-SEARCH: %w", sendErr)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Second)
	}
	var (
		replies []ssdpReply
		seen    = map[string]bool{}
		buf     = make([]byte, 2048)
	)
	for {
		if err := ctx.Err(); err != nil {
			break
		}
		_ = conn.SetReadDeadline(deadline)
		if ctx.Err() != nil {
			break // cancelled between the check above and the deadline
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break // deadline or socket error: return what we have
		}
		r, err := parseSSDPReply(buf[:n])
		if err != nil {
			continue
		}
		r.From = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if seen[r.Location.String()] {
			continue
		}
		seen[r.Location.String()] = true
		replies = append(replies, r)
		if len(replies) == 1 {
			if onReply != nil {
				onReply()
			}
			if d := time.Now().Add(grace); d.Before(deadline) {
				deadline = d
			}
		}
		if len(replies) >= 10 {
			break
		}
	}
	return replies, nil
}
