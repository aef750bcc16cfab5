package natpunch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// parseRouteTable returns the IPv4 default gateway found in the contents of
// /proc/net/route, preferring the lowest metric. It returns ErrNoGateway when
// there is none.
func parseRouteTable(data []byte) (netip.Addr, error) {
	var (
		best       netip.Addr
		bestMetric = -1
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		if first { // header line
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&0x1 == 0 || flags&0x2 == 0 { // RTF_UP, RTF_GATEWAY
			continue
		}
		raw, err := hex.DecodeString(f[2])
		if err != nil || len(raw) != 4 {
			continue
		}
		var ip [4]byte
		binary.LittleEndian.PutUint32(ip[:], binary.BigEndian.Uint32(raw))
		gw := netip.AddrFrom4(ip)
		if gw.IsUnspecified() {
			continue
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = gw, metric
		}
	}
	if !best.IsValid() {
		return netip.Addr{}, ErrNoGateway
	}
	return best, nil
}

// defaultGateway reads the route file (normally /proc/net/route).
func defaultGateway(routeFile string) (netip.Addr, error) {
	data, err := os.ReadFile(routeFile)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("read route table: %w: %w", ErrNoGateway, err)
	}
	return parseRouteTable(data)
}

// localAddrFor returns the source address the kernel picks to reach dst.
// It sends nothing: connecting a UDP socket only selects the route.
func localAddrFor(dst netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to gateway %s: %w", dst, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
